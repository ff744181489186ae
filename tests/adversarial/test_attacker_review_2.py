"""Second attacker review: the registry's one-scan layout, strict JSON's fast path, text times.

Reviewed: ``git diff cc09dc9..HEAD -- retrain/`` (layout judged from readdir's
d_type, ``log/`` judged only under the lock, ``Layout.positions``; the shared
strict JSON decoder and its surrogate fast path; entry times compared as
text and the successor's ``notBefore`` as a strict bound; audit's chunked
scan; promote dropping output checks when the outputs were not staged).
Fixtures and CLI helpers are the first review's (``test_attacker_review``).

Its one finding (a leftover whose paths pass PATH_MAX was noted as removable,
then every write failed to remove it) was a strict xfail until removal and
the layout's tree check went through directory descriptors; every other test
is a behaviour that was attacked and held.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import retrain.registry.layout as layout_module
from retrain._internal.fsio import StrictJSONError, loads_strict
from retrain.attest.keys import load_signer
from retrain.attest.policy import format_time, parse_time
from retrain.attest.promotion import PolicyRef, _time
from retrain.attest.trust import load_policy
from retrain.errors import InputError, PolicyError
from retrain.registry import PromotionRefused, Registry
from retrain.registry.layout import inspect_layout
from retrain.registry.log import Log
from retrain.registry.rules import policy_order_errors, time_order_errors
from tests.adversarial import test_attacker_review as first
from tests.adversarial.promotion_support import (
    Repo,
    model_files,
    promotable_chain,
    tree,
    write_model,
)
from tests.adversarial.test_attacker_review import (
    Keys,
    audit_break,
    command,
    error_lines,
    interrupted,
    ok,
    promote,
    rollback,
    sha_of,
)

# The first review's fixtures, shared (module-scoped ones are rebuilt for this module).
keys, rel, repo, policy, models = first.keys, first.rel, first.repo, first.policy, first.models
model, populated, registry, one_entry = (
    first.model,
    first.populated,
    first.registry,
    first.one_entry,
)

LEFTOVER = ".0123456789ab.abcdefgh"  # a store's temporary model directory
PLANTED = "the registry holds what retrain did not write: "


def library(root: Path, policy_path: Path) -> Registry:
    return Registry(root, load_policy(policy_path), policy_where=str(policy_path))


def nest(root: Path, levels: int, name: str = "a", file_name: str | None = None) -> Path:
    """``root/name/name/…`` ``levels`` deep (a file ``file_name`` at the bottom), by dir_fd."""
    root.mkdir(parents=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            deeper = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        if file_name is not None:
            os.close(os.open(file_name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    return root


def plant(path: Path, kind: str, target: Path | None = None) -> None:
    """A FIFO, a directory, a symlink (to ``target``) or a regular file at ``path``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        assert target is not None
        path.symlink_to(target)
    else:
        path.write_text("{}")


def problem_line(path: Path, kind: str) -> str:
    if kind == "symlink":
        return f"{path}: a symlink in the registry"
    return f"{path}: in the registry, but retrain writes no such file"


# ===========================================================================
# 1. The layout, judged by name and d_type, one readdir per directory


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
@pytest.mark.parametrize("operation", ["promote", "rollback"])
def test_odd_kind_at_the_position_the_next_write_reads_refuses_it_unchanged(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    registry: Path,
    policy: Path,
    keys: Keys,
    models: dict[str, Path],
    rel: Any,
    repo: Repo,
    kind: str,
    operation: str,
) -> None:
    """log/00000007.json (beyond the checkpoint of 6) a FIFO, a directory, or a symlink to a
    genuine uncommitted entry 7 kept outside: never read as the pending entry, never discarded."""
    interrupted(registry, models["c"], policy, rel, repo)
    pending = registry / "log" / "00000007.json"
    outside = tmp_path / "outside.json"
    shutil.move(pending, outside)
    plant(pending, kind, outside)
    before = tree(registry)
    if operation == "promote":
        outcome = promote(capsys, models["c"], "shadow", registry, policy, keys.rel, repo.root)
    else:
        outcome = rollback(capsys, registry, policy, keys.rel)
    assert error_lines(outcome)[0] == PLANTED + problem_line(pending, kind)
    assert tree(registry) == before
    assert outside.is_file()


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_an_entry_name_in_the_model_store_is_planted(
    capsys: pytest.CaptureFixture[str],
    one_entry: Path,
    policy: Path,
    keys: Keys,
    model: Path,
    repo: Repo,
    kind: str,
) -> None:
    path = one_entry / "models" / "00000002.json"
    plant(path, kind)
    before = tree(one_entry)
    line = audit_break(command(capsys, "audit", one_entry, policy))
    assert line == problem_line(path, kind)
    outcome = promote(capsys, model, "canary", one_entry, policy, keys.rel, repo.root)
    assert error_lines(outcome)[0] == PLANTED + problem_line(path, kind)
    assert tree(one_entry) == before


class _NoDType:
    """A DirEntry as readdir returns it where d_type is DT_UNKNOWN: every kind from (l)stat."""

    def __init__(self, entry: os.DirEntry[str]) -> None:
        self.name, self.path = entry.name, entry.path

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return os.stat(self.path) if follow_symlinks else os.lstat(self.path)

    def _is(self, test: Callable[[int], bool], follow_symlinks: bool) -> bool:
        try:
            return test(self.stat(follow_symlinks=follow_symlinks).st_mode)
        except FileNotFoundError:
            return False

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(stat.S_ISREG, follow_symlinks)

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._is(stat.S_ISDIR, follow_symlinks)

    def is_symlink(self) -> bool:
        return self._is(stat.S_ISLNK, False)


def test_layout_is_the_same_where_readdir_gives_no_d_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kind at every name the layout judges: the same problems and leftovers when each
    entry's kind comes from a stat (DT_UNKNOWN) as when it comes from d_type."""
    root = tmp_path / "reg"
    (root / "log").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "checkpoint.json").write_text("{}")
    target_file, target_dir = tmp_path / "t.json", tmp_path / "tdir"
    target_file.write_text("{}")
    target_dir.mkdir()
    log, store = root / "log", root / "models"
    plants = {
        log / "00000001.json": "file",
        log / "00000002.json": "symlink",  # to a regular file
        log / "00000003.json": "directory",
        log / "00000004.json": "fifo",
        log / ".00000005.json.abcdefgh.tmp": "file",  # a leftover
        log / ".00000006.json.abcdefgh.tmp": "symlink",
        log / ".00000007.json.abcdefgh.tmp": "fifo",
        store / ("a" * 64): "directory",
        store / ("b" * 64): "symlink",  # to a directory
        store / ("c" * 64): "file",
        store / LEFTOVER: "directory",  # a leftover
        store / ".0123456789ab.abcdefgi": "symlink",
        store / ".0123456789ab.abcdefgj": "fifo",
        root / ".lock": "fifo",
        root / ".checkpoint.json.abcdefgh.tmp": "symlink",
    }
    for path, kind in plants.items():
        plant(path, kind, target_dir if path.parent == store else target_file)
    with_d_type = inspect_layout(root)
    real_scandir = os.scandir

    class Scan:
        def __init__(self, path: Any) -> None:
            self._it = real_scandir(path)

        def __enter__(self) -> Scan:
            return self

        def __exit__(self, *exc: object) -> None:
            self._it.close()

        def __iter__(self) -> Iterator[_NoDType]:
            return (_NoDType(e) for e in self._it)

    monkeypatch.setattr(layout_module.os, "scandir", Scan)
    try:
        without = inspect_layout(root)
    finally:
        monkeypatch.undo()
    assert without.problems == with_d_type.problems
    assert without.leftover_files == with_d_type.leftover_files
    assert without.leftover_dirs == with_d_type.leftover_dirs
    assert sorted(without.entry_names) == sorted(with_d_type.entry_names) == ["00000001.json"]
    assert without.leftover_files == [log / ".00000005.json.abcdefgh.tmp"]
    assert without.leftover_dirs == [store / LEFTOVER]
    # Everything else (all but entry 1, model a…a and the two leftovers) is one problem each.
    assert len(without.problems) == len(plants) - 4


@pytest.mark.parametrize("operation", ["promote", "rollback"])
@pytest.mark.parametrize(
    "planted", ["log/00000007.json fifo", "log/00000007.json symlink", "log/notes.json file"]
)
def test_planted_in_log_between_the_early_check_and_the_lock_is_refused(
    tmp_path: Path,
    registry: Path,
    policy: Path,
    rel: Any,
    models: dict[str, Path],
    repo: Repo,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
    planted: str,
) -> None:
    """The early check leaves log/ out: what is planted there just before the lock is taken
    is judged under it, and refuses the write before anything changes."""
    name, kind = planted.split()
    path = registry / name
    outside = tmp_path / "outside.json"
    shutil.copy(registry / "log" / "00000006.json", outside)
    original = Registry._locked

    def planting(self: Registry) -> Any:
        plant(path, kind, outside)
        return original(self)

    monkeypatch.setattr(Registry, "_locked", planting)
    reg = library(registry, policy)
    before = {k: v for k, v in tree(registry).items() if not k.startswith(name)}
    with pytest.raises(PromotionRefused) as refused:
        if operation == "promote":
            reg.promote(models["c"], "shadow", signers=[rel], repo_root=repo.root)
        else:
            reg.rollback(signers=[rel])
    assert refused.value.reasons[0] == PLANTED + problem_line(path, kind)
    after = {k: v for k, v in tree(registry).items() if not k.startswith(name)}
    assert after == before


def test_refusal_for_a_planted_log_name_writes_nothing_but_the_lock(
    capsys: pytest.CaptureFixture[str],
    one_entry: Path,
    policy: Path,
    keys: Keys,
    model: Path,
    repo: Repo,
) -> None:
    """Found under the lock now (log/ is not in the early check): a registry without .lock
    (gitignored, so a fresh clone's) gets one; nothing else changes."""
    (one_entry / ".lock").unlink()
    (one_entry / "log" / "README").write_text("x")
    before = tree(one_entry)
    outcome = promote(capsys, model, "canary", one_entry, policy, keys.rel, repo.root)
    assert error_lines(outcome)[0].startswith(PLANTED + f"{one_entry / 'log' / 'README'}")
    after = tree(one_entry)
    after.pop(".lock", None)
    assert after == before


# ===========================================================================
# 2. Leftovers: what a write deletes


def test_leftover_holding_symlinks_is_removed_without_following_them(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    one_entry: Path,
    policy: Path,
    keys: Keys,
    model: Path,
    repo: Repo,
) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_text("keep me")
    (outside / "sub" / "f").write_text("keep me too")
    leftover = one_entry / "models" / LEFTOVER
    (leftover / "d").mkdir(parents=True)
    (leftover / "to-dir").symlink_to(outside)
    (leftover / "to-file").symlink_to(outside / "secret")
    (leftover / "d" / "to-sub").symlink_to(outside / "sub")
    os.chmod(leftover / "d", 0o555)
    outside_before = tree(outside)
    ok(promote(capsys, model, "canary", one_entry, policy, keys.rel, repo.root))
    assert not os.path.lexists(leftover)
    assert tree(outside) == outside_before


@pytest.mark.parametrize("levels", [15, 16])
def test_leftover_depth_limit_is_the_store_walks_limit(
    capsys: pytest.CaptureFixture[str],
    one_entry: Path,
    policy: Path,
    keys: Keys,
    model: Path,
    repo: Repo,
    levels: int,
) -> None:
    """The layout's depth check and remove_tree's walk agree at the boundary: what the layout
    passes as a leftover the write removes; one level more is planted."""
    leftover = nest(one_entry / "models" / LEFTOVER, levels)
    outcome = promote(capsys, model, "canary", one_entry, policy, keys.rel, repo.root)
    if levels == 15:
        ok(outcome)
        assert not os.path.lexists(leftover)
    else:
        assert error_lines(outcome)[0] == (
            PLANTED + f"{leftover}: nested deeper than a write's temporary model (at most 16 "
            "levels): retrain wrote no such directory"
        )


def test_leftover_with_paths_over_path_max_is_not_passed_as_removable(
    capsys: pytest.CaptureFixture[str],
    one_entry: Path,
    policy: Path,
    keys: Keys,
    model: Path,
    repo: Repo,
) -> None:
    leftover = nest(one_entry / "models" / LEFTOVER, 15, "n" * 255, "f" * 255)
    before = (one_entry / "checkpoint.json").read_bytes()
    try:
        audit = command(capsys, "audit", one_entry, policy)
        written = promote(capsys, model, "canary", one_entry, policy, keys.rel, repo.root)
    finally:
        if os.path.lexists(leftover):
            shutil.rmtree(leftover)  # fd-based: no path over PATH_MAX
    if written.exit_code != 0:
        assert (one_entry / "checkpoint.json").read_bytes() == before
    # Either the audit reports the planted tree, or it is a leftover the write removed.
    assert audit.exit_code == 1 or written.exit_code == 0, (audit.stdout, written.stderr)


# ===========================================================================
# 3. Strict JSON: one decoder, the surrogate check only where an escape could hide one

LONE = [
    pytest.param('"\\ud800"', id="lowercase escape"),
    pytest.param('"\\uD800"', id="uppercase escape"),
    pytest.param('"\\uDbFf"', id="mixed case high"),
    pytest.param('"\\uDC00"', id="low surrogate"),
    pytest.param('{"\\udfff": 1}', id="in a key"),
    pytest.param('"\\\\\\ud800"', id="after an escaped backslash"),
    pytest.param('"\\ud800\\u0041"', id="high then not a low"),
    pytest.param('"\\udc00\\ud800"', id="low then high"),
    pytest.param('["é", "\\ud800"]', id="non-ASCII text"),
    pytest.param('"\\ud800"'.encode("utf-16-le"), id="UTF-16-LE bytes, escaped"),
    pytest.param('"\\ud800"'.encode("utf-16-be"), id="UTF-16-BE bytes, escaped"),
    pytest.param('"\\ud800"'.encode("utf-32"), id="UTF-32 bytes with BOM, escaped"),
    pytest.param(b'"\xed\xa0\x80"', id="UTF-8 bytes of a surrogate"),
    pytest.param(b'"\x00\x00\xd8"\x00', id="UTF-16-LE raw lone code unit"),
    pytest.param(b'\xef\xbb\xbf"\\ud800"', id="UTF-8 BOM bytes, escaped"),
]


@pytest.mark.parametrize("text", LONE)
def test_loads_strict_refuses_every_lone_surrogate(text: str | bytes) -> None:
    with pytest.raises(StrictJSONError):
        loads_strict(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"\\\\ud800"', "\\ud800"),  # an escaped backslash: text, not a surrogate
        ('"\\ud83d\\ude00"', "\U0001f600"),  # a pair
        ('"\\uD7FF\\uE000"', "\ud7ff\ue000"),  # either side of the surrogates
        ('"\\u0064800"', "d800"),
        ('{"a": "\\ud83d\\ude00é"}', {"a": "\U0001f600é"}),
    ],
)
def test_loads_strict_accepts_what_only_looks_like_a_surrogate(text: str, value: object) -> None:
    assert loads_strict(text) == value
    assert loads_strict(text.encode("utf-16")) == value


def test_loads_strict_keeps_json_loads_rules_for_boms_duplicates_and_constants() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_strict('\ufeff{"a": 1}')
    assert loads_strict(b'\xef\xbb\xbf{"a": 1}') == json.loads(b'\xef\xbb\xbf{"a": 1}')
    for text in ('{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}', "[NaN]", "-Infinity"):
        with pytest.raises(StrictJSONError):
            loads_strict(text)
    with pytest.raises(json.JSONDecodeError):
        loads_strict('{"a": 1} {"b": 2}')


def test_the_shared_decoder_is_safe_across_threads() -> None:
    """The one decoder from eight threads at once: every answer is that of its own text."""
    texts = [json.dumps({f"k{i}": i, "n": [i] * 20}) for i in range(200)]
    dupes = ['{"a": 1, "a": 2}', '"\\ud800"']
    failures: list[str] = []

    def work(seed: int) -> None:
        for i in range(2000):
            j = (seed * 7919 + i) % len(texts)
            if i % 5 == 0:
                try:
                    loads_strict(dupes[i % 2])
                    failures.append("accepted a duplicate or a surrogate")
                except StrictJSONError:
                    pass
            elif loads_strict(texts[j]) != json.loads(texts[j]):
                failures.append(texts[j])

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# ===========================================================================
# 4. Entry times compared as text


@pytest.mark.parametrize(
    "text",
    [
        "2026-1-05T00:00:00Z",
        "2026-01-5T00:00:00Z",
        "999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "12026-01-05T00:00:00Z",
        "+2026-01-05T00:00:00Z",
        " 2026-01-05T00:00:00Z",
        "2026-01-05T00:00:00Z\n",
        "2026-01-05t00:00:00z",
        "2026-01-05 00:00:00Z",
        "2026-01-05T00:00:00.5Z",
        "2026-01-05T00:00:00+00:00",
        "2026-01-05T24:00:00Z",
        "2026-01-05T23:59:60Z",
        "2026-02-29T00:00:00Z",
        "２０２６-01-05T00:00:00Z",  # fullwidth digits  # noqa: RUF001
        "٢٠٢٦-01-05T00:00:00Z",  # Arabic-Indic digits
        "2026-01-05T00:00:00Z\u200b",
    ],
)
def test_entry_and_policy_times_are_fixed_width_ascii_or_refused(text: str) -> None:
    with pytest.raises(InputError):
        _time(text, "entry", "time")
    with pytest.raises(PolicyError):
        parse_time(text, where="policy", ctx="notBefore")


def test_fixed_width_text_order_is_time_order() -> None:
    rng = random.Random(11)
    low, high = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    span = int((high - low).total_seconds())
    instants = [low + timedelta(seconds=rng.randrange(span)) for _ in range(3000)]
    instants += [datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1000, 1, 1, tzinfo=UTC)]
    texts = [format_time(i) for i in instants]
    for text, instant in zip(texts, instants, strict=True):
        assert _time(text, "entry", "time") == text
        assert parse_time(text, where=None, ctx="t") == instant
    assert sorted(texts) == [format_time(i) for i in sorted(instants)]

    def entry(time: str) -> Any:
        return SimpleNamespace(position=2, time=time)

    assert time_order_errors("0999-12-31T23:59:59Z", entry("1000-01-01T00:00:00Z")) == []
    assert time_order_errors("1000-01-01T00:00:00Z", entry("0999-12-31T23:59:59Z"))
    assert time_order_errors("2026-01-05T10:00:00Z", entry("2026-01-05T09:59:59Z"))
    assert time_order_errors("2026-01-05T10:00:00Z", entry("2026-01-05T10:00:00Z")) == []


@pytest.mark.parametrize(
    ("not_before", "time", "replaced"),
    [
        (datetime(2026, 1, 5, 12, tzinfo=UTC), "2026-01-05T12:00:00Z", False),  # same second
        (datetime(2026, 1, 5, 12, tzinfo=UTC), "2026-01-05T12:00:01Z", True),
        (datetime(2026, 1, 5, 12, tzinfo=UTC), "2026-01-05T11:59:59Z", False),
        (datetime(2026, 1, 5, 12, 0, 0, 500000, tzinfo=UTC), "2026-01-05T12:00:00Z", False),
        (datetime(2026, 1, 5, 12, 0, 0, 500000, tzinfo=UTC), "2026-01-05T12:00:01Z", True),
        (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), "1000-01-01T00:00:00Z", True),
        (datetime(1000, 1, 1, tzinfo=UTC), "0999-12-31T23:59:59Z", False),
    ],
)
def test_a_successor_replaces_a_version_for_entries_stamped_after_its_not_before(
    not_before: datetime, time: str, replaced: bool
) -> None:
    ref = PolicyRef(1, "sha256:" + "0" * 64)
    successor = SimpleNamespace(not_before=not_before)
    current: Any = SimpleNamespace(at_version=lambda v: successor if v == 2 else None)
    p: Any = SimpleNamespace(policy=ref, position=2, time=time)
    assert bool(policy_order_errors(ref, p, current)) is replaced


# ===========================================================================
# 5. Audit: the log scanned in chunks across worker processes


def test_chunked_scan_yields_every_position_once_in_order(
    registry: Path, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4000 positions on two workers (chunks of 1000): entries 1-6 verified, the rest missing,
    every one reported once, in order."""
    log = Log(registry, load_policy(policy), str(policy))
    positions = list(range(1, 4001))
    monkeypatch.setattr("retrain.registry.log.os.cpu_count", lambda: 2)
    results = list(log.scan(positions))
    monkeypatch.undo()
    assert [r[0] for r in results[:6] if not isinstance(r, str)] == [1, 2, 3, 4, 5, 6]
    rest = results[6:]
    assert len(rest) == 3994 and all(isinstance(r, str) for r in rest)
    assert all(
        f"{n:08d}.json" in r and "is missing" in r for n, r in zip(positions[6:], rest, strict=True)
    )


# ===========================================================================
# 6. Promote: output checks dropped when the outputs were not staged


@pytest.fixture
def evil_build(tmp_path: Path, keys: Keys, rel: Any, repo: Repo) -> Path:
    """Other model bytes; dataset, holdout, evaluation signed by rel, the build by evil."""
    files = model_files(b"the attacker's model")
    chain = promotable_chain(repo, files)
    model_dir = write_model(tmp_path / "evil", chain, [rel], files=files)
    evil = load_signer(keys.evil.private)
    write_model(model_dir, chain, [evil], files=files, links=["build"])
    return model_dir


@pytest.mark.parametrize("case", ["build signed by evil", "all signed by evil", "model swapped"])
def test_dropped_output_checks_never_let_a_model_in(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    one_entry: Path,
    policy: Path,
    keys: Keys,
    model: Path,
    evil_build: Path,
    repo: Repo,
    case: str,
) -> None:
    if case == "build signed by evil":
        model_dir = evil_build
    elif case == "all signed by evil":
        files = model_files(b"the attacker's model")
        evil = load_signer(keys.evil.private)
        model_dir = write_model(
            tmp_path / "all-evil", promotable_chain(repo, files), [evil], files=files
        )
    else:
        model_dir = tmp_path / "swapped"
        shutil.copytree(model, model_dir)
        (model_dir / "model.rtm").write_bytes(b"other bytes")
    before = tree(one_entry)
    for stage in ("shadow", "canary"):
        lines = error_lines(
            promote(capsys, model_dir, stage, one_entry, policy, keys.rel, repo.root)
        )
        checks = " ".join(lines)
        if case == "model swapped":
            assert "[build] subject-digest" in checks  # staged: its failure is kept
        else:
            assert "signature-threshold" in checks
            assert "subject-digest" not in checks and "model-bundle" not in checks
    assert tree(one_entry) == before
    assert not (one_entry / "models" / sha_of(model_dir)).exists()
