"""The package version, here (not in ``hwnas``) so the layers below the CLI can report it."""

__version__ = "0.1.0"
