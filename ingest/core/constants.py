"""Physical constants the pipeline and the simulator share."""
from __future__ import annotations

# Tangential velocity (km/s) of a proper motion of 1 mas/yr at 1 kpc (1 au/yr).  astropy's
# units give 4.740470463533348; this value agrees to 1e-9 km/s and is the one the simulated
# catalogues were made with, so they stay bit-identical (tests/test_files.py checks it
# against astropy).
KMS_PER_MASYR_KPC = 4.740470463
