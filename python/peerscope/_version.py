"""The package version; must equal the C library's ps_version() (checked at import)."""

__version__ = "0.1.0"
