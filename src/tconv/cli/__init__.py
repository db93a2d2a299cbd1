"""The ``tconv`` command line: one module per command, the app in :mod:`tconv.cli.app`."""
from .app import app, main

__all__ = ["app", "main"]
