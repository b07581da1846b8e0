"""The mixed op lives with the supernets in ``search_spaces.supernet`` (spaces build their own)."""

from search_spaces.supernet import MixedOp

__all__ = ["MixedOp"]
