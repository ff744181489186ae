"""Reading a dataset into Arrow, only after every file passed its manifest check."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from retrain.errors import RetrainError
from retrain.manifest import Containment, DataManifest, verify_dataset

__all__ = ["VerificationFailed", "load_verified_table"]


class VerificationFailed(RetrainError):
    """One or more dataset files did not match the manifest; carries every failure."""

    def __init__(self, failures: list[RetrainError]) -> None:
        self.failures = failures
        first = failures[0]
        self.exit_code = max(f.exit_code for f in failures)
        super().__init__(
            first.what,
            where=first.where,
            expected=first.expected,
            found=first.found,
            hint=first.hint,
        )

    def lines(self) -> list[str]:
        return [f.diagnostics() for f in self.failures]


def load_verified_table(
    manifest: DataManifest,
    located: Mapping[str, Path],
    *,
    containment: Containment,
    manifest_where: str,
) -> pa.Table:
    """Verify every file, then read them in manifest (path) order into one table."""
    failures = verify_dataset(
        manifest, located, containment=containment, manifest_where=manifest_where
    )
    if failures:
        raise VerificationFailed(failures)
    tables = [pq.read_table(located[e.path], use_threads=False) for e in manifest.entries]
    return pa.concat_tables(tables).replace_schema_metadata(None)
