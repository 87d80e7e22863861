"""The ingest pipeline: input catalogues -> the published tables and their manifest.

The stages, in data-flow order (``run.run_ingest`` runs them; SPEC section 3 step numbers):

s1_inputs     read and check the catalogues, map columns, keep the members (step 1)
s2_crossmatch members x spectra by Gaia id or position (step 2)
s3_quality    spectrum and stellar-parameter quality (steps 3, 6)
s4_combine    per-star combination of repeat spectra, RV zero points (steps 4, 8)
s5_estimate   Monte Carlo cluster RVs and abundances (steps 5, 7)
s6_galactic   Galactic positions and orbits (step 9)
s7_products   gradients, literature comparison, binary clusters (steps 10-12)
s8_outputs    the published tables, FITS writing, manifest, figures, paper tables
"""
