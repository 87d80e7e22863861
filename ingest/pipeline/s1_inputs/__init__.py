"""Stage 1: read the input catalogues through column maps, check them, keep the members."""
