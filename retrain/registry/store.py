"""The model store: each promoted model's verified files, content-addressed by the model's sha256.

Promotion never trusts the model directory it is given. It copies the files
a chain may name, once each, into a private staging directory (``snapshot``):
regular files only, opened without following symlinks and without blocking
on a FIFO, hashed while copied. The chain is verified on that copy, so what
was verified is what is stored; then only the files the verified links name
(``named_files``) are copied into the store, hashed again and compared with
the digests the chain names. Dataset manifests come from the repository by
the verified dataset links' paths, under the same path rules as ``verify``,
never through a symlink. Stored files are read-only (0444, never wider than
the source), directories 0555.

``unsafe_entries`` and ``store_problems`` are the audit's side: a stored
model directory must hold no symlink and exactly the files its verified
links name.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain._internal.fsio import file_kind
from retrain.attest.policy import TrustPolicy
from retrain.attest.sign import BUILD_SUBJECTS, LINK_FILES, MODEL_BUNDLE
from retrain.attest.verify import VerificationReport
from retrain.errors import CheckFailed, InputError, RetrainError
from retrain.paths import validate_relative_path
from retrain.registry.layout import DIR_OPEN_FLAGS, tree_problem
from retrain.registry.layout import MAX_TREE_DEPTH as MAX_DEPTH

__all__ = [
    "PROVENANCE_FILE",
    "ModelStore",
    "Snapshot",
    "link_names",
    "links_signed",
    "named_files",
    "named_manifests",
    "output_names",
    "remove_tree",
    "snapshot",
    "stage_manifests",
    "store_problems",
    "unsafe_entries",
]

PROVENANCE_FILE = "provenance.json"  # the build link's payload, unsigned, as the build wrote it
_CHUNK = 1 << 20
_FILE_MODE = 0o444
_DIR_MODE = 0o555
_REPO = ".repo"  # where staged manifests sit in the staging directory, apart from model files


@dataclass(frozen=True)
class StagedFile:
    sha256: str
    mode: int  # the source's permission bits: the store never widens them


@dataclass(frozen=True)
class Snapshot:
    """A model directory's candidate files, copied once into ``dir``."""

    source: Path
    dir: Path
    files: Mapping[str, StagedFile]

    def mode(self, name: str) -> int:
        return self.files[name].mode


def _open_no_follow(name: str, dir_fd: int, *, where: str) -> tuple[int, os.stat_result]:
    """An open descriptor of a regular file ``name`` in ``dir_fd``; never a symlink or FIFO."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"{name} is a symlink: promotion copies only regular files",
                where=where,
                expected="a regular file",
                found="a symlink",
            ) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(
            f"{name} is not a regular file: promotion copies only regular files",
            where=where,
            expected="a regular file",
            found=file_kind(st.st_mode),
        )
    return fd, st


def _copy_hashing(src_fd: int, dest: Path) -> str:
    """Copy an open file to a new file ``dest`` (0600), returning the sha256 of what was copied."""
    digest = hashlib.sha256()
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        while chunk := os.read(src_fd, _CHUNK):
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
        os.fsync(out)
    finally:
        os.close(out)
    return digest.hexdigest()


def link_names(steps: Mapping[str, Any]) -> tuple[str, ...]:
    """The link files a chain under a policy with these steps has, and the model's bundle."""
    return (*(LINK_FILES[s] for s in steps), MODEL_BUNDLE)


def output_names() -> tuple[str, ...]:
    """The build's outputs a verified build link may name, and the build statement's copy."""
    return (*BUILD_SUBJECTS, PROVENANCE_FILE)


def links_signed(staged_dir: Path, policy: TrustPolicy) -> bool:
    """Every link the policy requires is there and signed by enough of its step's keys."""
    from retrain.attest.envelope import read_link_envelope
    from retrain.attest.verify import verify_signature_threshold

    for link, rule in policy.steps.items():
        try:
            envelope = read_link_envelope(staged_dir / LINK_FILES[link])
            verify_signature_threshold(link, envelope, rule, policy)
        except RetrainError:
            return False
    return True


def snapshot(
    model_dir: Path, staging: Path, names: tuple[str, ...], *, into: Snapshot | None = None
) -> Snapshot:
    """Copy each of ``names`` present in ``model_dir`` into ``staging``, once, hashing as it goes.

    Nothing else in the directory is opened: an extra file (or a symlink to
    a secret) is never read. A name that is present but not a regular file
    is refused (``InputError``). ``into`` adds to an earlier snapshot.
    """
    try:
        dir_fd = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(
            "cannot open the model directory", where=str(model_dir), found=exc.strerror
        ) from None
    files = dict(into.files) if into is not None else {}
    try:
        for name in names:
            try:
                fd, st = _open_no_follow(name, dir_fd, where=str(model_dir / name))
            except FileNotFoundError:
                continue  # the verification says what is missing
            try:
                sha = _copy_hashing(fd, staging / name)
            finally:
                os.close(fd)
            files[name] = StagedFile(sha, stat.S_IMODE(st.st_mode))
    finally:
        os.close(dir_fd)
    return Snapshot(source=model_dir, dir=staging, files=files)


def stage_manifests(
    staged: Snapshot, manifests: Mapping[str, str], named: Mapping[str, str], repo_root: Path
) -> Snapshot:
    """Copy each verified manifest from ``repo_root`` into the staging copy, checking its digest.

    Reached only through real directories (``_open_beneath``), hashed while
    copied and compared with the digest its verified dataset link names. A
    manifest whose path would land on a model file is refused.
    """
    files = dict(staged.files)
    reserved = {*named, *LINK_FILES.values(), *BUILD_SUBJECTS, MODEL_BUNDLE, PROVENANCE_FILE, _REPO}
    for uri, expected in sorted(manifests.items()):
        if uri.split("/")[0] in reserved:
            raise InputError(
                f"manifest path {uri!r} collides with a file of the model",
                where=str(repo_root / uri),
                expected="a path beside the model's files, e.g. data_manifests/NAME.json",
            )
        fd, st = _open_beneath(repo_root, uri)
        dest = staged.dir / _REPO / uri
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            found = _copy_hashing(fd, dest)
        finally:
            os.close(fd)
        if found != expected:
            raise CheckFailed(
                f"manifest {uri} changed after it was verified",
                where=str(repo_root / uri),
                expected=f"sha256 {expected} (verified)",
                found=f"sha256 {found}",
            )
        files[f"{_REPO}/{uri}"] = StagedFile(found, stat.S_IMODE(st.st_mode))
    return Snapshot(source=staged.source, dir=staged.dir, files=files)


def named_files(report: VerificationReport, model_dir: Path) -> dict[str, str]:
    """The files of ``model_dir`` the verified chain names, with the sha256 each must have.

    Each verified link's own file; the build's subjects; ``model.sig`` when
    the bundle verified; ``provenance.json`` when it is exactly the verified
    build statement. Dataset manifests are ``named_manifests``.
    """
    from retrain.attest.envelope import read_link_envelope

    named: dict[str, str] = {}
    bundle_ok = any(
        c.link == "build" and c.check == "model-bundle" and c.ok and not c.skipped
        for c in report.checks
    )
    for link in report.links:
        if not link.trusted or link.statement is None:
            continue
        path = model_dir / LINK_FILES[link.link]
        named[LINK_FILES[link.link]] = _sha256_path(path)
        if link.link == "build":
            for subject in link.statement.subjects:
                if subject.sha256 is not None:
                    named[subject.name] = subject.sha256
            payload = read_link_envelope(path).payload
            provenance = model_dir / PROVENANCE_FILE
            if (
                provenance.is_file()
                and _sha256_path(provenance) == hashlib.sha256(payload).hexdigest()
            ):
                named[PROVENANCE_FILE] = hashlib.sha256(payload).hexdigest()
            if bundle_ok:
                named[MODEL_BUNDLE] = _sha256_path(model_dir / MODEL_BUNDLE)
    return named


def named_manifests(report: VerificationReport) -> dict[str, str]:
    """Repository-relative manifest path -> sha256, from the verified dataset links."""
    return {
        link.predicate.manifest_uri: link.predicate.manifest_sha256
        for link in report.links
        if link.trusted and link.link in ("dataset", "holdout") and link.predicate is not None
    }


def _sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open_beneath(root: Path, relative: str) -> tuple[int, os.stat_result]:
    """Open ``root/relative`` without following a symlink anywhere below ``root``."""
    validate_relative_path(relative, where=str(root / relative))
    parts = relative.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InputError(
                        f"{relative}: {part} is not a directory (a symlink?): manifests are "
                        "copied only through real directories",
                        where=str(root / relative),
                    ) from None
                raise
            os.close(fd)
            fd = nxt
        return _open_no_follow(parts[-1], fd, where=str(root / relative))
    finally:
        os.close(fd)


class ModelStore:
    """``registry/models/<sha256>/``: one directory per promoted model."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def add(
        self,
        sha256: str,
        staged: Snapshot,
        named: Mapping[str, str],
        manifests: Mapping[str, str],
    ) -> None:
        """Store the named files and manifests of ``staged`` as model ``sha256``.

        Everything comes from the private staging copy (``snapshot`` and
        ``stage_manifests``); each file is hashed again as it is copied and
        compared with the digest the verified chain names. Written to a
        hidden temporary directory, fsynced, then renamed: a crash leaves no
        half-stored model.
        """
        target = self.path(sha256)
        if target.is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}.", dir=self.root))
        try:
            for name, expected in sorted(named.items()):
                fd, _ = _open_beneath(staged.dir, name)
                self._copy_checked(
                    fd, tmp / name, expected, staged.mode(name), staged.source / name
                )
            for uri, expected in sorted(manifests.items()):
                fd, _ = _open_beneath(staged.dir / _REPO, uri)
                (tmp / uri).parent.mkdir(parents=True, exist_ok=True)
                self._copy_checked(
                    fd, tmp / uri, expected, staged.mode(f"{_REPO}/{uri}"), Path(uri)
                )
            for path in sorted(tmp.rglob("*"), key=lambda p: -len(p.parts)):
                if path.is_dir():
                    path.chmod(_DIR_MODE)
                _fsync(path)
            tmp.chmod(_DIR_MODE)
            _fsync(tmp)
            os.replace(tmp, target)
            _fsync(self.root)
        except BaseException:
            remove_tree(tmp)
            raise

    @staticmethod
    def _copy_checked(fd: int, dest: Path, expected: str, mode: int, source: Path) -> None:
        try:
            found = _copy_hashing(fd, dest)
        finally:
            os.close(fd)
        if found != expected:
            raise CheckFailed(
                f"{source.name} changed while it was promoted",
                where=str(source),
                expected=f"sha256 {expected} (verified)",
                found=f"sha256 {found}",
            )
        dest.chmod(_FILE_MODE & mode)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Everything under ``root`` (lstat, never following a link), without recursion.

    Deeper than ``MAX_DEPTH`` is refused (``InputError``): nothing retrain
    writes is, and a hostile tree must not exhaust the stack. So is a tree
    that cannot be read (a name too long for its path, no permission).
    """
    stack = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise InputError(
                "cannot read a directory of the model store",
                where=str(directory),
                found=exc.strerror,
            ) from None
        for name in names:
            path = directory / name
            try:
                st = os.lstat(path)
            except OSError as exc:
                raise InputError(
                    "cannot read the model store", where=str(path), found=exc.strerror
                ) from None
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                if depth + 1 >= MAX_DEPTH:
                    raise InputError(
                        "nested too deep for a stored model",
                        where=str(path),
                        expected=f"at most {MAX_DEPTH} levels",
                    )
                stack.append((path, depth + 1))


def remove_tree(path: Path) -> None:
    """Remove a (possibly read-only) directory tree we wrote, never following a symlink.

    Through directory descriptors, so no path grows with the depth (names of
    255 characters, 16 levels deep, are past PATH_MAX), and only a tree
    ``tree_problem`` passes: at most ``MAX_DEPTH`` levels, so the recursion
    is bounded.
    """
    problem = tree_problem(path)
    if problem is not None:
        raise InputError(f"cannot remove {path.name}: {problem}", where=str(path))
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _remove_at(parent, path.name)
    finally:
        os.close(parent)


def _remove_at(parent: int, name: str) -> None:
    fd = os.open(name, DIR_OPEN_FLAGS, dir_fd=parent)
    try:
        os.fchmod(fd, 0o700)
        with os.scandir(fd) as it:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for child, is_dir in children:
            if is_dir:
                _remove_at(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)


def unsafe_entries(stored: Path) -> list[str]:
    """Symlinks and files that are not regular anywhere in a stored model directory."""
    problems = []
    try:
        for path, st in _walk(stored):
            if stat.S_ISLNK(st.st_mode):
                problems.append(f"{path}: a symlink in the model store")
            elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                problems.append(f"{path}: {file_kind(st.st_mode)} in the model store")
    except InputError as exc:
        problems.append(exc.diagnostics())
    return problems


def store_problems(
    stored: Path, named: Mapping[str, str], manifests: Mapping[str, str]
) -> list[str]:
    """Files and directories of a stored model that no verified link names."""
    expected = set(named) | set(manifests)
    problems = []
    for path, st in _walk(stored):
        rel = path.relative_to(stored).as_posix()
        if stat.S_ISDIR(st.st_mode):
            if not any(e.startswith(rel + "/") for e in expected):
                problems.append(f"{path}: a directory no verified link names")
        elif rel not in expected:
            problems.append(f"{path}: a file no verified link names")
    return problems
