"""Lay out a dataset from the content-addressed store: used by retrain_store_dataset.

``python -S -m retrain._internal.materialize MANIFEST DEST [--store LOCATION]``
"""

from __future__ import annotations

import argparse
import sys

from retrain.errors import RetrainError
from retrain.manifest import load_manifest
from retrain.store import ContentStore


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="retrain-materialize")
    p.add_argument("manifest")
    p.add_argument("dest")
    p.add_argument("--store", default=None)
    args = p.parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
        store = ContentStore(args.store) if args.store else ContentStore.default()
        store.materialize(manifest, args.dest)
    except RetrainError as exc:
        print(f"retrain: error: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
