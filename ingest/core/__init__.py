"""Shared by every part of the product: vocabulary, configuration, the column schema read
from rd.xml, errors, provenance and file helpers.  Nothing here imports the pipeline,
the publication side, the simulator or the CLI."""
