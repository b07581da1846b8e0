"""hwnas: hardware-aware neural architecture search as a service."""

__version__ = "0.1.0"
