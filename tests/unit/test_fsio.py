"""Atomic writes: readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from retrain._internal import fsio


def test_atomic_write_bytes_replaces_the_content(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    fsio.atomic_write_bytes(target, b"new")

    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_bytes_creates_missing_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.bin"

    fsio.atomic_write_bytes(target, b"x")

    assert target.read_bytes() == b"x"


def test_atomic_write_bytes_sets_the_mode_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    old = os.umask(0o077)
    try:
        fsio.atomic_write_bytes(target, b"x")
    finally:
        os.umask(old)

    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_write_bytes_keeps_old_content_and_leaves_no_temp_file_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old content")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsio.os, "fsync", failing_fsync)

    with pytest.raises(OSError, match="No space left on device"):
        fsio.atomic_write_bytes(target, b"new content")

    assert target.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_bytes_leaves_nothing_when_interrupted_before_the_first_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fsio.os, "fsync", interrupted)

    with pytest.raises(KeyboardInterrupt):
        fsio.atomic_write_bytes(tmp_path / "out.json", b"new")

    assert os.listdir(tmp_path) == []


def test_pretty_json_is_sorted_indented_and_ends_with_a_newline() -> None:
    assert fsio.pretty_json({"b": 1, "a": [1]}) == b'{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'


def test_pretty_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        fsio.pretty_json({"x": float("nan")})
