"""Billcast: personalized bill and arrears videos and microsites, merged from customer records in large batches.

The repository's folders are this package's subpackages: ``billcast.renderer``,
``billcast.microsite``, ``billcast.jobs`` and ``billcast.service``, layered in that
order (each may import only those before it). This package itself holds the top
layer: the ``billcast`` command, the WSGI entry point and the demo.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("billcast")
except PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"
