"""hwnas: hardware-aware neural architecture search as a service (this package is the CLI layer)."""

from hwnas_settings.version import __version__

__all__ = ["__version__"]
