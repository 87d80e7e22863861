"""Open clusters x LAMOST: ingest stage of the open-cluster VO service.

Small modules with one job each: readers, crossmatch, quality, combine,
estimation, galactic, orbits, gradients, literature, binaries, figures,
writers; the simulator in ingest.simulate; service operations (publish,
the private DaCHS instance) in ingest.service.  The CLI is ingest.cli.
"""
__version__ = "0.1.0"
