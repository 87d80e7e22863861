"""Open clusters x LAMOST: the Python side of the open-cluster VO service.

``ingest.pipeline``     the ingest pipeline, one sub-package or module per stage,
                        numbered in data-flow order (s1_inputs ... s8_outputs)
``ingest.publication``  the private PostgreSQL + DaCHS instance and the publish step
``ingest.simulation``   simulated input catalogues with known truth
``ingest.validation``   checks of the pipeline against published real-data values
``ingest.cli``          the ``ocvo`` command line (and the demo chain)
``ingest.core``         what all of them share: vocabulary, config, schema, errors, files
"""
__version__ = "0.1.0"
