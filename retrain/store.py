"""The content-addressed store where dataset files live, keyed by sha256.

A blob's address is its digest: ``<root>/sha256/<first two hex>/<hex>``.
Blobs are immutable and verified on the way in and on the way out, so a
corrupted or swapped blob is caught wherever it is read. The default store is
a local directory (``RETRAIN_STORE``, else ``$XDG_CACHE_HOME/retrain/store``);
any filesystem pyarrow can open (``s3://``, ``gs://``, ``hdfs://``, a
``file://`` URI) works as a backend through ``pyarrow.fs``.

``put_dataset`` copies a dataset's files in; ``materialize`` lays a dataset
out in a directory from its manifest, by digest, ready for a build.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from retrain.digest import sha256_file
from retrain.errors import DigestMismatch, StoreError
from retrain.manifest import DataManifest

__all__ = ["ContentStore", "default_store_location"]

_CHUNK = 1 << 20


def default_store_location() -> str:
    explicit = os.environ.get("RETRAIN_STORE")
    if explicit:
        return explicit
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "retrain", "store")


@dataclass(frozen=True)
class ContentStore:
    """A store rooted at a local path or a pyarrow filesystem URI."""

    location: str

    @classmethod
    def default(cls) -> ContentStore:
        return cls(default_store_location())

    @property
    def is_local(self) -> bool:
        return "://" not in self.location or self.location.startswith("file://")

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        if "://" not in self.location:
            return pafs.LocalFileSystem(), os.path.abspath(self.location)
        try:
            return pafs.FileSystem.from_uri(self.location)  # type: ignore[no-any-return]
        except Exception as exc:  # pyarrow raises several types here
            raise StoreError(
                "cannot open store", where=self.location, hint=str(exc).splitlines()[0]
            ) from None

    def blob_key(self, sha256: str) -> str:
        return f"sha256/{sha256[:2]}/{sha256}"

    def local_path(self, sha256: str) -> Path:
        """Where a blob lives on this machine (local stores only)."""
        fs, root = self._fs()
        if not isinstance(fs, pafs.LocalFileSystem):
            raise StoreError("store is not local", where=self.location)
        return Path(root) / self.blob_key(sha256)

    def has(self, sha256: str) -> bool:
        fs, root = self._fs()
        return bool(fs.get_file_info(f"{root}/{self.blob_key(sha256)}").type == pafs.FileType.File)

    def put_file(self, path: str | os.PathLike[str], sha256: str | None = None) -> str:
        """Copy a file in under its digest; returns the digest. Idempotent."""
        digest = sha256 or sha256_file(path).sha256
        if self.has(digest):
            return digest
        fs, root = self._fs()
        key = f"{root}/{self.blob_key(digest)}"
        fs.create_dir(key.rsplit("/", 1)[0], recursive=True)
        tmp = f"{key}.tmp-{os.getpid()}"
        h = hashlib.sha256()
        try:
            with open(path, "rb") as src, fs.open_output_stream(tmp) as dst:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
            if h.hexdigest() != digest:
                raise DigestMismatch(
                    "file changed while it was stored",
                    where=str(path),
                    expected=digest,
                    found=h.hexdigest(),
                )
            fs.move(tmp, key)
        except BaseException:
            if fs.get_file_info(tmp).type == pafs.FileType.File:
                fs.delete_file(tmp)
            raise
        return digest

    def put_dataset(self, manifest: DataManifest, root: str | os.PathLike[str]) -> int:
        """Store every file of a verified dataset directory; returns how many were new."""
        new = 0
        for entry in manifest.entries:
            if not self.has(entry.sha256):
                self.put_file(Path(root) / entry.path, entry.sha256)
                new += 1
        return new

    def fetch_blob(self, sha256: str, dest: str | os.PathLike[str], *, link: bool = True) -> None:
        """Place a verified copy (or, for local stores, a symlink) of a blob at ``dest``."""
        if not self.has(sha256):
            raise StoreError(
                "blob not in store",
                where=self.location,
                expected=f"sha256 {sha256}",
                found="nothing",
                hint="run 'retrain store put' where the data lives",
            )
        fs, root = self._fs()
        key = f"{root}/{self.blob_key(sha256)}"
        dest_path = Path(dest)
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        if link and isinstance(fs, pafs.LocalFileSystem):
            found = sha256_file(key).sha256
            if found != sha256:
                raise DigestMismatch(
                    "store blob is corrupted", where=key, expected=sha256, found=found
                )
            if dest_path.is_symlink() or dest_path.exists():
                dest_path.unlink()
            os.symlink(key, dest_path)
            return
        fd, tmp = tempfile.mkstemp(dir=dest_path.parent, prefix=f".{dest_path.name}.")
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, fs.open_input_stream(key) as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != sha256:
                raise DigestMismatch(
                    "store blob is corrupted", where=key, expected=sha256, found=h.hexdigest()
                )
            os.replace(tmp, dest_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def materialize(
        self, manifest: DataManifest, dest: str | os.PathLike[str], *, link: bool = True
    ) -> None:
        """Lay out every file of ``manifest`` under ``dest`` from the store, verified."""
        missing = [e for e in manifest.entries if not self.has(e.sha256)]
        if missing:
            raise StoreError(
                f"{len(missing)} of {len(manifest.entries)} files of dataset {manifest.name!r} are not in the store",
                where=self.location,
                expected=f"{missing[0].path} (sha256 {missing[0].sha256})",
                found="no blob",
                hint="run 'retrain store put DIR' where the data lives",
            )
        for entry in manifest.entries:
            self.fetch_blob(entry.sha256, Path(dest) / entry.path, link=link)

    def remove(self, sha256: str) -> None:
        fs, root = self._fs()
        fs.delete_file(f"{root}/{self.blob_key(sha256)}")
