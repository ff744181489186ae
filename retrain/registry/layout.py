"""What a registry directory may hold, by name and kind; nothing else, and no symlink.

A registry is written only by retrain: ``checkpoint.json``, ``log/NNNNNNNN.json``,
``models/<sha256>/`` and ``.lock``, and, while a write is in progress or after
a writer was killed, temporary names of exactly the patterns the writers use
(``atomic_write_bytes``'s ``.<name>.<random>.tmp``, the store's
``.<sha256[:12]>.<random>`` directories). Anything else, or any of these that
is a symlink or the wrong kind of file, is planted: writes refuse to work in
such a registry and ``audit`` reports it. Only the temporary names are
leftovers a write may delete.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from retrain._internal.fsio import file_kind

__all__ = [
    "DIR_OPEN_FLAGS",
    "ENTRY_NAME",
    "MAX_TREE_DEPTH",
    "Layout",
    "inspect_layout",
    "tree_problem",
]

ENTRY_NAME = re.compile(r"[0-9]{8}\.json")
SHA256_NAME = re.compile(r"[0-9a-f]{64}")
# tempfile's random part: eight characters of [a-z0-9_].
_RANDOM = r"[a-z0-9_]{8}"
TMP_CHECKPOINT = re.compile(rf"\.checkpoint\.json\.{_RANDOM}\.tmp")
TMP_ENTRY = re.compile(rf"\.[0-9]{{8}}\.json\.{_RANDOM}\.tmp")
TMP_MODEL_DIR = re.compile(rf"\.[0-9a-f]{{12}}\.{_RANDOM}")
# How deep a tree a stored (or staged) model may be: two levels are used
# (data_manifests/NAME.json); deeper is refused before it is walked.
MAX_TREE_DEPTH = 16


@dataclass
class Layout:
    """What ``inspect_layout`` found: planted things (each a line) and a write's leftovers."""

    problems: list[str] = field(default_factory=list)
    leftover_files: list[Path] = field(default_factory=list)
    leftover_dirs: list[Path] = field(default_factory=list)
    entry_names: list[str] = field(default_factory=list)

    def positions(self, *, after: int = 0) -> list[int]:
        """The log's entry positions beyond ``after``, in order."""
        # Names are zero-padded to one width: compared as text, in order.
        floor = f"{after:08d}.json"
        return sorted(int(name[:8]) for name in self.entry_names if name > floor)


def _kind(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def _entry_mode(entry: os.DirEntry[str]) -> int | None:
    """The kind of a directory entry, from ``readdir``'s d_type where the file system gives it.

    ``DirEntry.is_*(follow_symlinks=False)`` costs no ``stat`` when d_type is
    known, so a write can judge every name of a log of many entries.
    """
    try:
        if entry.is_file(follow_symlinks=False):
            return stat.S_IFREG
        if entry.is_dir(follow_symlinks=False):
            return stat.S_IFDIR
        if entry.is_symlink():
            return stat.S_IFLNK
        return entry.stat(follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None


DIR_OPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def tree_problem(root: Path, limit: int = MAX_TREE_DEPTH) -> str | None:
    """Why a directory tree is not one a write can walk and remove, or None.

    Deeper than ``limit`` levels, or a directory in it that cannot be opened.
    Walked through directory descriptors (no path grows with depth, so names
    past PATH_MAX are no obstacle) and bounded recursion; no link followed.
    """

    def walk(parent: int | None, name: str, depth: int) -> str | None:
        try:
            fd = os.open(name, DIR_OPEN_FLAGS, dir_fd=parent)
        except OSError as exc:
            return f"a directory in it cannot be opened ({exc.strerror})"
        try:
            with os.scandir(fd) as it:
                subdirs = [e.name for e in it if e.is_dir(follow_symlinks=False)]
            for sub in subdirs:
                if depth + 1 >= limit:
                    return f"nested deeper than a write's temporary model (at most {limit} levels)"
                found = walk(fd, sub, depth + 1)
                if found is not None:
                    return found
            return None
        finally:
            os.close(fd)

    return walk(None, str(root), 0)


def inspect_layout(root: Path, *, log: bool = True) -> Layout:
    """Every name under the registry's root, ``log/`` and ``models/`` (not inside a model).

    One ``readdir`` per directory: entries are judged by name and d_type, so
    a write checks every log entry, however long the log. The log's entry
    names come with it (``Layout.entry_names``). ``log=False`` leaves ``log/``
    out: a write's early check before it takes the lock, where it judges
    everything again.
    """
    layout = Layout()
    if _kind(root) is None:
        return layout
    expected = {
        "checkpoint.json": stat.S_ISREG,
        ".lock": stat.S_ISREG,
        "log": stat.S_ISDIR,
        "models": stat.S_ISDIR,
    }
    for name, mode in sorted(_entries(root)):
        path = root / name
        if stat.S_ISLNK(mode):
            layout.problems.append(f"{path}: a symlink in the registry")
        elif name in expected:
            if not expected[name](mode):
                layout.problems.append(
                    f"{path}: {file_kind(mode)} where retrain writes another kind"
                )
        elif TMP_CHECKPOINT.fullmatch(name) and stat.S_ISREG(mode):
            layout.leftover_files.append(path)
        else:
            layout.problems.append(f"{path}: in the registry, but retrain writes no such file")
    if log:
        layout.entry_names = _inspect_dir(root / "log", layout, ENTRY_NAME, stat.S_IFREG, TMP_ENTRY)
    _inspect_dir(root / "models", layout, SHA256_NAME, stat.S_IFDIR, TMP_MODEL_DIR)
    return layout


def _entries(directory: Path) -> list[tuple[str, int]]:
    """(name, kind) of each entry of ``directory``; no ``Path`` each (a log has many)."""
    with os.scandir(directory) as it:
        found = [(e.name, _entry_mode(e)) for e in it]
    return [(name, mode) for name, mode in found if mode is not None]


def _inspect_dir(
    directory: Path, layout: Layout, name: re.Pattern[str], kind: int, tmp: re.Pattern[str]
) -> list[str]:
    """Judge each name in ``directory``; return the well-formed ones (entries or models).

    The many well-formed names cost one regex match each; everything else is
    judged in name order, so the first problem reported is the same each time.
    """
    mode = _kind(directory)
    if mode is None or not stat.S_ISDIR(mode):
        return []
    good: list[str] = []
    odd: list[tuple[str, int]] = []
    is_dir = kind == stat.S_IFDIR
    with os.scandir(directory) as it:
        for e in it:
            # d_type answers is_file/is_dir without a stat; neither follows a link.
            right_kind = (
                e.is_dir(follow_symlinks=False) if is_dir else e.is_file(follow_symlinks=False)
            )
            if right_kind and name.fullmatch(e.name) and e.name != "00000000.json":
                good.append(e.name)
            elif (mode := _entry_mode(e)) is not None:
                odd.append((e.name, mode))
    for entry, mode in sorted(odd):
        path = directory / entry
        if stat.S_ISLNK(mode):
            layout.problems.append(f"{path}: a symlink in the registry")
        elif name.fullmatch(entry) and stat.S_IFMT(mode) == kind:
            layout.problems.append(f"{path}: there is no entry 0")
        elif tmp.fullmatch(entry) and stat.S_IFMT(mode) == kind:
            problem = tree_problem(path) if stat.S_ISDIR(mode) else None
            if problem is not None:
                # Named like a store's temporary directory, but not one a
                # write stages: planted, and no write may delete it.
                layout.problems.append(f"{path}: {problem}: retrain wrote no such directory")
            else:
                (layout.leftover_dirs if stat.S_ISDIR(mode) else layout.leftover_files).append(path)
        else:
            layout.problems.append(f"{path}: in the registry, but retrain writes no such file")
    return good
