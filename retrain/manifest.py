"""Data manifests: a dataset snapshot named by the hashes of its files.

A manifest (``data_manifests/NAME.json``, schema in docs/manifest.md) lists
every file of a dataset with its relative path, sha256, size and row count,
the Arrow schema every file shares and its fingerprint, and the dataset
digest over all entries. A dataset enters a build only through its manifest,
and every file is checked against it before use.

``create_manifest`` writes one for a directory of Parquet files;
``verify_dataset`` checks files against one and returns every failure found.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retrain._internal.fsio import loads_strict, read_regular_bytes
from retrain.digest import dataset_digest, sha256_files
from retrain.errors import (
    CheckFailed,
    DigestMismatch,
    InputError,
    ManifestError,
    PathEscapeError,
    RetrainError,
    SchemaMismatch,
)
from retrain.paths import validate_relative_path
from retrain.tabular import (
    SchemaField,
    describe_schema_difference,
    read_parquet_footer,
    schema_fingerprint,
)

__all__ = [
    "MANIFEST_VERSION",
    "DataManifest",
    "ManifestEntry",
    "create_manifest",
    "load_manifest",
    "manifest_from_bytes",
    "validate_relative_path",
    "verify_dataset",
    "verify_directory",
]

MANIFEST_VERSION = 1
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_TOP_KEYS = {
    "manifest_version",
    "name",
    "format",
    "schema",
    "files",
    "rows",
    "bytes",
    "dataset_digest",
    "origin",
}
_ENTRY_KEYS = {"path", "sha256", "size", "rows", "uri"}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a dataset: where it sits under the root, and its content's identity."""

    path: str
    sha256: str
    size: int
    rows: int
    uri: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "rows": self.rows,
        }
        if self.uri is not None:
            out["uri"] = self.uri
        return out

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> ManifestEntry:
        if not isinstance(raw, dict):
            raise ManifestError(
                "file entry must be an object", where=where, found=type(raw).__name__
            )
        unknown = sorted(set(raw) - _ENTRY_KEYS)
        if unknown:
            raise ManifestError(f"unknown key {unknown[0]!r} in file entry", where=where)
        for key in ("path", "sha256", "size", "rows"):
            if key not in raw:
                raise ManifestError(f"file entry lacks {key!r}", where=where)
        path = validate_relative_path(raw["path"], where=where)
        sha = raw["sha256"]
        if not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha):
            raise ManifestError(
                f"sha256 of {path!r} is not 64 lowercase hex digits", where=where, found=repr(sha)
            )
        for key in ("size", "rows"):
            if not _is_int(raw[key]) or raw[key] < 0:
                raise ManifestError(
                    f"{key} of {path!r} must be a non-negative integer",
                    where=where,
                    found=repr(raw[key]),
                )
        uri = raw.get("uri")
        if uri is not None and not isinstance(uri, str):
            raise ManifestError(f"uri of {path!r} must be a string", where=where, found=repr(uri))
        return cls(path=path, sha256=sha, size=raw["size"], rows=raw["rows"], uri=uri)


@dataclass(frozen=True)
class DataManifest:
    """A dataset snapshot: its files by hash, shared schema and dataset digest."""

    name: str
    fields: tuple[SchemaField, ...]
    entries: tuple[ManifestEntry, ...]
    origin: Mapping[str, object] | None = None
    format: str = "parquet"
    version: int = MANIFEST_VERSION
    # Derived, filled in by __post_init__; kept as fields so they print in repr.
    schema_fingerprint: str = field(default="", compare=False)
    dataset_digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=lambda e: e.path)))
        object.__setattr__(self, "schema_fingerprint", schema_fingerprint(self.fields))
        object.__setattr__(
            self,
            "dataset_digest",
            dataset_digest((e.path, e.sha256, e.size, e.rows) for e in self.entries),
        )

    @property
    def rows(self) -> int:
        return sum(e.rows for e in self.entries)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "manifest_version": self.version,
            "name": self.name,
            "format": self.format,
            "schema": {
                "fingerprint": self.schema_fingerprint,
                "fields": [f.to_dict() for f in self.fields],
            },
            "files": [e.to_dict() for e in self.entries],
            "rows": self.rows,
            "bytes": self.total_bytes,
            "dataset_digest": self.dataset_digest,
        }
        if self.origin is not None:
            out["origin"] = dict(self.origin)
        return out

    def to_json_bytes(self) -> bytes:
        from retrain._internal.fsio import pretty_json

        return pretty_json(self.to_dict())

    @classmethod
    def from_dict(cls, raw: object, *, where: str) -> DataManifest:
        if not isinstance(raw, dict):
            raise ManifestError(
                "manifest must be a JSON object", where=where, found=type(raw).__name__
            )
        if "manifest_version" not in raw:
            raise ManifestError("manifest lacks 'manifest_version'", where=where)
        version = raw["manifest_version"]
        if version != MANIFEST_VERSION or not _is_int(version):
            raise ManifestError(
                "unknown manifest version",
                where=where,
                expected=MANIFEST_VERSION,
                found=repr(version),
            )
        unknown = sorted(set(raw) - _TOP_KEYS)
        if unknown:
            raise ManifestError(f"unknown key {unknown[0]!r}", where=where)
        for key in ("name", "format", "schema", "files", "rows", "bytes", "dataset_digest"):
            if key not in raw:
                raise ManifestError(f"manifest lacks {key!r}", where=where)
        name = raw["name"]
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ManifestError(
                "dataset name must match [A-Za-z0-9][A-Za-z0-9_.-]*", where=where, found=repr(name)
            )
        if raw["format"] != "parquet":
            raise ManifestError(
                "unsupported format", where=where, expected="'parquet'", found=repr(raw["format"])
            )
        fields = _fields_from_dict(raw["schema"], where=where)
        files = raw["files"]
        if not isinstance(files, list) or not files:
            raise ManifestError("'files' must be a non-empty list", where=where)
        entries = [
            ManifestEntry.from_dict(item, where=f"{where}: files[{i}]")
            for i, item in enumerate(files)
        ]
        seen: set[str] = set()
        for entry in entries:
            if entry.path in seen:
                raise ManifestError(f"file {entry.path!r} is listed twice", where=where)
            seen.add(entry.path)
        origin = raw.get("origin")
        if origin is not None and not isinstance(origin, dict):
            raise ManifestError("'origin' must be an object", where=where)
        manifest = cls(name=name, fields=fields, entries=tuple(entries), origin=origin)
        recorded_fp = raw["schema"].get("fingerprint")
        if recorded_fp != manifest.schema_fingerprint:
            raise DigestMismatch(
                "schema fingerprint does not match the fields listed",
                where=where,
                expected=manifest.schema_fingerprint,
                found=recorded_fp,
            )
        for key, actual in (("rows", manifest.rows), ("bytes", manifest.total_bytes)):
            if raw[key] != actual:
                raise DigestMismatch(
                    f"'{key}' is not the sum over files",
                    where=where,
                    expected=actual,
                    found=raw[key],
                )
        recorded = raw["dataset_digest"]
        if not isinstance(recorded, str) or not _DIGEST_RE.fullmatch(recorded):
            raise ManifestError(
                "dataset_digest must be 'sha256:<64 hex>'", where=where, found=repr(recorded)
            )
        if recorded != manifest.dataset_digest:
            raise DigestMismatch(
                "dataset_digest does not match the file entries",
                where=where,
                expected=manifest.dataset_digest,
                found=recorded,
            )
        return manifest


def _fields_from_dict(raw: object, *, where: str) -> tuple[SchemaField, ...]:
    if not isinstance(raw, dict) or not isinstance(raw.get("fields"), list) or not raw["fields"]:
        raise ManifestError(
            "'schema' must be an object with a non-empty 'fields' list", where=where
        )
    if set(raw) != {"fields", "fingerprint"}:
        extra = sorted(set(raw) - {"fields", "fingerprint"})
        what = f"unknown key {extra[0]!r} in 'schema'" if extra else "'schema' lacks 'fingerprint'"
        raise ManifestError(what, where=where)
    if not isinstance(raw["fingerprint"], str) or not _DIGEST_RE.fullmatch(raw["fingerprint"]):
        raise ManifestError(
            "schema fingerprint must be 'sha256:<64 hex>'",
            where=where,
            found=repr(raw["fingerprint"]),
        )
    out = []
    for i, f in enumerate(raw["fields"]):
        if (
            not isinstance(f, dict)
            or set(f) != {"name", "type", "nullable"}
            or not isinstance(f["name"], str)
            or not isinstance(f["type"], str)
            or not isinstance(f["nullable"], bool)
        ):
            raise ManifestError(
                f"schema field {i} must be {{name: str, type: str, nullable: bool}}",
                where=where,
                found=json.dumps(f)[:80],
            )
        out.append(SchemaField(f["name"], f["type"], f["nullable"]))
    return tuple(out)


MAX_MANIFEST_BYTES = 256 << 20  # a manifest lists files: ~200 bytes each


def load_manifest(path: str | os.PathLike[str]) -> DataManifest:
    """Read and validate a manifest file; one clear error for any defect.

    Read only as a regular file of bounded size, without blocking on a FIFO.
    """
    where = str(path)
    try:
        data = read_regular_bytes(path, limit=MAX_MANIFEST_BYTES, what="manifest")
    except InputError as exc:
        if exc.what == "manifest not found":
            raise
        raise ManifestError(exc.what, where=where, expected=exc.expected, found=exc.found) from None
    return manifest_from_bytes(data, where=where)


def manifest_from_bytes(data: bytes, *, where: str) -> DataManifest:
    """A manifest from bytes already read (and, by a verifier, already hashed)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError("cannot read manifest", where=where, hint="not UTF-8 text") from None
    try:
        raw = loads_strict(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", where=where
        ) from None
    except (ValueError, RecursionError) as exc:  # duplicate keys, over-long numbers, nesting
        raise ManifestError("malformed JSON", where=where, found=str(exc).split(":")[0]) from None
    return DataManifest.from_dict(raw, where=where)


# ---------------------------------------------------------------------------
# Creating


def _walk_tree(root: Path) -> Iterator[tuple[Path, bool]]:
    """Every file under ``root``, and every symlinked directory (flagged True), in order.

    A symlinked directory is never entered: its files are not the dataset's
    to list, and a link can point anywhere. os.walk lists it among the
    directories and silently does not enter it, so it is picked out here,
    for the creator to refuse and the verifier to report.
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for d in dirnames:
            if (Path(dirpath) / d).is_symlink():
                yield Path(dirpath) / d, True
        for name in sorted(filenames):
            yield Path(dirpath) / name, False


def _symlinked_directory(full: Path) -> PathEscapeError:
    return PathEscapeError(
        "symlinked directory in dataset",
        where=str(full),
        expected="a real directory",
        found=f"a symlink to {os.readlink(full)}",
    )


def _walk_files(root: Path) -> Iterator[tuple[str, Path]]:
    real_root = root.resolve()
    for full, symlinked_directory in _walk_tree(root):
        if symlinked_directory:
            raise _symlinked_directory(full)
        rel = full.relative_to(root).as_posix()
        _check_inside(real_root, rel, full)
        yield rel, full


def _check_inside(real_root: Path, rel: str, full: Path) -> None:
    real = Path(os.path.realpath(full))
    if real != real_root and real_root not in real.parents:
        raise PathEscapeError(
            f"{rel!r} is a symlink that escapes the dataset root",
            where=str(full),
            expected=f"a file under {real_root}",
            found=str(real),
        )
    if not real.is_file():
        raise InputError(f"{rel!r} is not a regular file", where=str(full))


def create_manifest(
    root: str | os.PathLike[str],
    *,
    name: str,
    origin: Mapping[str, object] | None = None,
    workers: int | None = None,
) -> DataManifest:
    """Hash every file under ``root`` and describe them as one dataset."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise InputError("dataset root is not a directory", where=str(root))
    if not _NAME_RE.fullmatch(name):
        raise InputError("dataset name must match [A-Za-z0-9][A-Za-z0-9_.-]*", found=repr(name))
    files = list(_walk_files(root_path))
    if not files:
        raise InputError("dataset root holds no files", where=str(root))
    digests = sha256_files([p for _, p in files], workers=workers)
    entries = []
    fields: tuple[SchemaField, ...] | None = None
    first = ""
    for (rel, path), d in zip(files, digests, strict=True):
        footer = read_parquet_footer(path)
        if fields is None:
            fields, first = footer.fields, rel
        elif footer.fields != fields:
            # One dataset, one schema: files that disagree are not one dataset.
            expected, found = describe_schema_difference(fields, footer.fields)
            raise InputError(
                f"schema differs from {first!r}", where=str(path), expected=expected, found=found
            )
        entries.append(ManifestEntry(path=rel, sha256=d.sha256, size=d.size, rows=footer.rows))
    assert fields is not None
    return DataManifest(name=name, fields=fields, entries=tuple(entries), origin=origin)


# ---------------------------------------------------------------------------
# Verifying

Containment = Callable[[ManifestEntry, Path], None]


def verify_dataset(
    manifest: DataManifest,
    located: Mapping[str, Path],
    *,
    containment: Containment,
    manifest_where: str,
    workers: int | None = None,
) -> list[RetrainError]:
    """Check each located file against its entry; return every failure, in path order.

    ``located`` maps each manifest path to the file that claims to be it.
    ``containment`` raises ``PathEscapeError`` for a file that resolves outside
    the dataset. Checks per file, cheapest first: present, contained, size,
    sha256, then the Parquet footer's row count and schema.
    """
    failures: list[RetrainError] = []
    extra = sorted(set(located) - {e.path for e in manifest.entries})
    for rel in extra:
        failures.append(
            CheckFailed(
                f"file {rel!r} is not listed in the manifest",
                where=str(located[rel]),
                expected=f"only the {len(manifest.entries)} files listed in {manifest_where}",
                found="an unlisted file",
                hint=f"recreate {manifest_where} or remove the file",
            )
        )
    to_hash: list[tuple[ManifestEntry, Path]] = []
    for entry in manifest.entries:
        path = located.get(entry.path)
        if path is None or not os.path.lexists(path):
            failures.append(
                CheckFailed(
                    "file listed in the manifest is missing",
                    where=str(path) if path is not None else entry.path,
                    expected=f"sha256 {entry.sha256} ({manifest_where})",
                    found="no file",
                )
            )
            continue
        try:
            containment(entry, path)
        except RetrainError as exc:
            failures.append(exc)
            continue
        size = os.stat(path).st_size
        if size != entry.size:
            failures.append(
                DigestMismatch(
                    "size mismatch",
                    where=str(path),
                    expected=f"{entry.size} bytes ({manifest_where})",
                    found=f"{size} bytes",
                )
            )
            continue
        to_hash.append((entry, path))
    digests = sha256_files([p for _, p in to_hash], workers=workers)
    for (entry, path), d in zip(to_hash, digests, strict=True):
        if d.sha256 != entry.sha256:
            failures.append(
                DigestMismatch(
                    "sha256 mismatch",
                    where=str(path),
                    expected=f"{entry.sha256} ({manifest_where})",
                    found=d.sha256,
                )
            )
            continue
        try:
            footer = read_parquet_footer(path)
        except RetrainError as exc:
            failures.append(exc)
            continue
        if footer.rows != entry.rows:
            failures.append(
                CheckFailed(
                    "row count mismatch",
                    where=str(path),
                    expected=f"{entry.rows} rows ({manifest_where})",
                    found=f"{footer.rows} rows",
                )
            )
        if footer.fields != manifest.fields:
            expected, found = describe_schema_difference(manifest.fields, footer.fields)
            failures.append(
                SchemaMismatch("schema mismatch", where=str(path), expected=expected, found=found)
            )
    failures.sort(key=lambda f: f.where or "")
    return failures


def _directory_containment(root: Path) -> Containment:
    real_root = root.resolve()

    def check(entry: ManifestEntry, path: Path) -> None:
        _check_inside(real_root, entry.path, path)

    return check


def verify_directory(
    manifest: DataManifest,
    root: str | os.PathLike[str],
    *,
    manifest_where: str,
    workers: int | None = None,
) -> list[RetrainError]:
    """Verify a dataset laid out under ``root`` as the manifest lists it.

    Files under ``root`` that the manifest does not list are failures too: a
    verified directory holds exactly the dataset. So is a symlinked
    directory, as ``create_manifest`` refuses one: it is not entered.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise InputError("dataset root is not a directory", where=str(root))
    located: dict[str, Path] = {e.path: root_path / e.path for e in manifest.entries}
    symlinked: list[RetrainError] = []
    for full, symlinked_directory in _walk_tree(root_path):
        if symlinked_directory:
            symlinked.append(_symlinked_directory(full))
            continue
        located.setdefault(full.relative_to(root_path).as_posix(), full)
    failures = verify_dataset(
        manifest,
        located,
        containment=_directory_containment(root_path),
        manifest_where=manifest_where,
        workers=workers,
    )
    return sorted(failures + symlinked, key=lambda f: f.where or "")


def sandbox_containment(root: str, *, manifest: str | None = None) -> Containment:
    """Containment for files handed to a Bazel action.

    Inside a sandbox every input is a symlink into the execution root, so a
    file cannot be judged by whether it is a symlink. It is judged by where
    it finally resolves. A file of the main repository must resolve to
    exactly ``<workspace>/<root>/<path>``, where the workspace directory is
    found by resolving the manifest (itself a main-repository source file
    given by its execution path). A file of an external repository (a
    dataset materialized from the store) must resolve to its own blob,
    ``.../sha256/<xx>/<sha256>``, or to ``.../<root>/<path>``. Anything else
    is a symlink that escapes.
    """
    prefix = root.strip("/")
    workspace: str | None = None
    if (
        manifest is not None
        and not manifest.startswith(("external/", "../"))
        and not os.path.isabs(manifest)
    ):
        real_manifest = os.path.realpath(manifest)
        if real_manifest.endswith("/" + manifest):
            workspace = real_manifest[: -len(manifest)]

    def check(entry: ManifestEntry, path: Path) -> None:
        real = os.path.realpath(path)
        rel = f"{prefix}/{entry.path}" if prefix else entry.path
        main_repo = not str(path).startswith(("external/", "../")) and not os.path.isabs(str(path))
        if workspace is not None and main_repo:
            contained = real == workspace + rel
        else:
            contained = real.endswith("/" + rel) or real.endswith(
                f"/sha256/{entry.sha256[:2]}/{entry.sha256}"
            )
        if contained:
            if not os.path.isfile(real):
                raise InputError(f"{entry.path!r} is not a regular file", where=str(path))
            return
        raise PathEscapeError(
            f"{entry.path!r} is a symlink that escapes the dataset root",
            where=(f"{prefix}/{entry.path}" if prefix else entry.path),
            expected=f"a file at {prefix or '.'}/{entry.path} or a store blob",
            found=real,
        )

    return check


def failures_exit_code(failures: Sequence[RetrainError]) -> int:
    """2 when any failure is unusable input, else 1; 0 when there are none."""
    if not failures:
        return 0
    return max(f.exit_code for f in failures)
