"""retrain: reproducible, attested builds of continuously retrained models.

The library behind the ``retrain`` command and the Bazel rules in
``//rules:defs.bzl``. Public modules list their API in ``__all__``;
``retrain._internal`` is private.
"""

__version__ = "0.1.0"
