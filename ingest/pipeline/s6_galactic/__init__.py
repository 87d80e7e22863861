"""Stage 6: Galactic positions and velocities, and orbits in the McMillan (2017) potential."""
