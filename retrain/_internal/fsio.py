"""Files in and out: atomic writes, and reads that trust nothing about the file.

Outputs are written to a temporary name in the destination directory, flushed
to disk, then renamed over the destination; on any error the temporary file is
removed, so a failed command leaves nothing half-written. Inputs that may be
hostile (a policy, an attestation) are read only when they are regular files
of bounded size, and parsed as JSON that has one meaning (no duplicate keys).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from retrain.errors import InputError

__all__ = [
    "StrictJSONError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_kind",
    "load_json_strict",
    "loads_strict",
    "pretty_json",
    "read_regular_bytes",
]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def pretty_json(value: object) -> bytes:
    """Deterministic, human-readable JSON: sorted keys, two-space indent, final newline."""
    return (
        json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    ).encode("utf-8")


def atomic_write_json(path: str | os.PathLike[str], value: object) -> None:
    atomic_write_bytes(path, pretty_json(value))


def read_regular_bytes(path: str | os.PathLike[str], *, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or one clear error.

    Opened non-blocking, so a FIFO in its place cannot hang the reader, and
    judged by ``fstat`` on the open descriptor: what is read is what was judged.
    Symlinks are followed (a Bazel sandbox hands every input over as one).
    """
    where = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{what} not found", where=where) from None
    except OSError as exc:
        raise InputError(f"cannot open {what}", where=where, found=exc.strerror) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(
                f"{what} is not a regular file",
                where=where,
                expected="a regular file",
                found=file_kind(st.st_mode),
            )
        if st.st_size > limit:
            raise InputError(
                f"{what} is too large",
                where=where,
                expected=f"at most {limit} bytes",
                found=f"{st.st_size} bytes",
            )
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:  # it grew while being read
            raise InputError(f"{what} is too large", where=where, expected=f"at most {limit} bytes")
        return data
    finally:
        os.close(fd)


def file_kind(mode: int) -> str:
    """What a file is, in words, for an error line."""
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "an unknown kind of file"


# An escape of \uD800-\uDFFF, in either case.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class StrictJSONError(ValueError):
    """JSON that parses but has no single meaning: a key twice, a lone surrogate."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> object:
    raise StrictJSONError(f"{name} is not JSON")


# One decoder for every strict load (json.loads would build one per call).
_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def loads_strict(text: str | bytes) -> object:
    """``json.loads`` that a person reviewing the text and a program reading it see alike.

    Refuses (``StrictJSONError``, a ``ValueError``) duplicate keys (a reviewer
    sees the first, ``json`` keeps the last), NaN/Infinity, and a lone
    surrogate escape (``\\ud800``), which no UTF-8 encoder (so no canonical
    form, no signature, no terminal) can take. Malformed JSON, over-long
    numbers and over-deep nesting raise as ``json.loads`` does.
    """
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")  # as json.loads does
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    value = _STRICT_DECODER.decode(text)
    # ASCII text holds a surrogate only as an escape: without one, nothing to
    # check (the common case: retrain writes ASCII JSON). Otherwise encode it all.
    if text.isascii() and _SURROGATE_ESCAPE.search(text) is None:
        return value
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise StrictJSONError("a lone surrogate escape (like \\ud800) is not text") from None
    return value


def load_json_strict(data: bytes, *, where: str, what: str) -> object:
    """``loads_strict`` of UTF-8 bytes, every refusal one ``InputError`` line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text", where=where) from None
    try:
        return loads_strict(text)
    except StrictJSONError as exc:
        raise InputError(f"{what} is not usable JSON: {exc}", where=where) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} is malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            where=where,
        ) from None
    except (ValueError, RecursionError) as exc:  # over-long numbers, over-deep nesting
        raise InputError(
            f"{what} is malformed JSON", where=where, found=str(exc).split(":")[0]
        ) from None
