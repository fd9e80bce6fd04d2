"""The command line: `assay ...`."""
