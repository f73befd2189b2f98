"""The ``jaxconv`` command: ``simulate``, ``sweep``, ``data``, ``fit``, ``tipping``, ``reproduce`` (one module
each; :mod:`jaxconv.cli.main` builds the parser and dispatches, :mod:`jaxconv.cli.options` holds the options they
share). The library never imports this package."""

from jaxconv.cli.main import main

__all__ = ["main"]
