"""The command line: ``acsl data | train | eval | reproduce`` (also ``python -m acsl``)."""

from .main import main

__all__ = ["main"]
