"""assay: evidence for choosing LLM providers."""

__version__ = "0.1.0"
