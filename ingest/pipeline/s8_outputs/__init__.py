"""Stage 8: the published tables and their files: FITS with metadata, manifest, figures, paper tables."""
