"""The package version, kept static so importing aisys reads no metadata file."""

__version__ = "0.1.0"
