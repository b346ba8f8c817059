"""noxgate: a Python repository's whole CI/CD pipeline as code."""

__version__ = "0.1.0"
