"""The ``jaxconv`` command: ``simulate``, ``data``, ``fit``, ``tipping`` (one module each; :mod:`jaxconv.cli.main`
builds the parser and dispatches). The library never imports this package."""

from jaxconv.cli.main import main

__all__ = ["main"]
