"""The package version, in the one module everything may import (hatch reads it too)."""

__version__ = "0.1.0"
