"""`retrain rebuild`: a promoted model rebuilt bit-for-bit from its attestations.

The scenario is a scratch git repository (a copy of the working tree, its
registry emptied): commit 1 builds ``//models:candidate`` (signed with the
session key), the model is promoted to production and the registry
committed; a later commit changes the training code (``retrain/train.py``)
and regenerates the holdout with another seed (new data, new manifest). The
rebuild must still recreate the old model exactly, from its commit and its
recorded datasets, in a fresh output base with no cache. A model built at
the later commit is evaluated against the one in production (the registry's
champion), and rebuilds bit-for-bit too.

Two real rebuilds serve several tests each: one in-process
(``retrain rebuild --all --json``, data from a content-addressed store of
the test's own), one as a subprocess run from another directory under a
perturbed environment (``retrain rebuild --all``, data from the repository).
The refusals stop before Bazel runs, so they are quick:

| rebuild of                                   | refused with                                               | exit |
|----------------------------------------------|------------------------------------------------------------|------|
| a model whose data blob in the store changed | could not recreate dataset default (store): … <blob sha256> | 1    |
| a commit the repository does not hold        | could not recreate source: commit <sha> is not in …        | 1    |
| a commit beyond a shallow clone's depth      | could not recreate source: commit <sha> is not in …        | 1    |
| a model built from a dirty tree              | source: the tree was not clean when the model was built …  | 1    |

Three more run a fake ``bazel`` whose builds fail, so they are quick too: a
failed build still shuts its Bazel server down; a build output directory is
verified against the data manifests of its own commit, not the repository's
current ones; ``--all`` on a registry with no model names the registry.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from retrain.attest.trust import load_policy
from retrain.cli import main
from retrain.manifest import load_manifest
from retrain.rebuild import RebuildReport, rebuild
from retrain.store import ContentStore
from tests.bazel_harness import BazelWorkspace, base_env, copy_workspace, sha256_of

pytestmark = [pytest.mark.bazel, pytest.mark.slow]

SUBJECTS = ("gates.txt", "metrics.json", "model.rtm", "report.html", "train_report.json")
NOT_CLEAN = "the tree was not clean when the model was built"


# ---------------------------------------------------------------------------
# helpers


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout.strip()


def _init_repo(root: Path) -> None:
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "retrain tests")
    _git(root, "config", "user.email", "tests@retrain.invalid")
    _git(root, "config", "commit.gpgsign", "false")


def _commit(root: Path, message: str) -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "--no-verify", "-m", message)
    return _git(root, "rev-parse", "HEAD")


def _worktrees(repo: Path) -> list[str]:
    return _git(repo, "worktree", "list", "--porcelain").split("\n\n")


def _rebuild_dirs(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.glob("retrain-rebuild-*"))


def _copy_output(source: Path, dest: Path) -> Path:
    """A plain, writable copy of a Bazel output directory (files only)."""
    dest.mkdir(parents=True)
    for f in sorted(source.iterdir()):
        if f.is_file():
            shutil.copyfile(f, dest / f.name)
            (dest / f.name).chmod(stat.S_IRUSR | stat.S_IWUSR)
    return dest


def _cli(*args: str, env: dict[str, str], tmpdir: Path | None = None) -> tuple[int, str, str]:
    """``retrain ARGS`` in-process, with ``env`` set and mkdtemp pointed at ``tmpdir``."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
        for key, value in env.items():
            mp.setenv(key, value)
        if tmpdir is not None:
            mp.setattr(tempfile, "tempdir", str(tmpdir))
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _fake_bazel(path: Path) -> tuple[Path, Path]:
    """A `bazel` whose every build fails; it logs each invocation's arguments."""
    log = path.with_suffix(".log")
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case " $* " in *" build "*) echo "ERROR: simulated build failure" >&2; exit 1;; esac\n'
        "exit 0\n"
    )
    path.chmod(0o755)
    return path, log


# ---------------------------------------------------------------------------
# the scratch repository and its history


@dataclass(frozen=True)
class History:
    root: Path  # the scratch git repository
    workspace: BazelWorkspace  # its Bazel, with an output base of its own
    build_env: dict[str, str]
    registry: Path
    policy_path: Path
    model_dir: Path  # the promoted model, in the registry
    model_sha: str
    built_at: str  # the commit the model was built at
    head: str  # the commit that changed code and data since
    first_build: Path  # a copy of the build output directory at built_at
    base: Path

    def args(self) -> list[str]:
        return [
            "--repo",
            str(self.root),
            "--registry",
            str(self.registry),
            "--policy",
            str(self.policy_path),
        ]

    def rebuild(self, model_dir: Path, store: Path, **kw: Any) -> RebuildReport:
        return rebuild(
            model_dir,
            repo=kw.pop("repo", self.root),
            policy=load_policy(self.policy_path),
            policy_where=str(self.policy_path),
            store=ContentStore(str(store)),
            **kw,
        )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, test_policy_path: Path) -> Iterator[History]:
    base = tmp_path_factory.mktemp("rebuild")
    root = copy_workspace(base / "repo")
    # The scratch starts with an empty registry: the committed one holds the
    # project's model, signed by a release key the test policy does not trust.
    # Its policy is the test policy: the build reads the registry (the
    # champion is the model in production) and checks it against that policy.
    shutil.rmtree(root / "attestations" / "registry", ignore_errors=True)
    shutil.copyfile(test_policy_path, root / "attestations" / "policy.json")
    _init_repo(root)
    _commit(root, "the scratch repository")
    build_env = {**base_env(), "RETRAIN_STORE": str(base / "build-store")}
    ws = BazelWorkspace(root, base / "output-base")
    try:
        ws.must_build("//models:candidate", env=build_env)
        info = ws.run("info", "bazel-bin", env=build_env)
        assert info.ok, info.stderr
        out = Path(info.stdout.strip()) / "models" / "candidate"
        built_at = _git(root, "rev-parse", "HEAD")
        first_build = _copy_output(out, base / "build-at-first-commit")
        registry = root / "attestations" / "registry"
        # Promoted all the way: later builds are evaluated against it.
        for stage in ("shadow", "canary", "production"):
            code, _, err = _cli(
                "promote",
                str(out),
                "--to",
                stage,
                "--reason",
                "the model CI must rebuild",
                "--repo",
                str(root),
                "--registry",
                str(registry),
                "--policy",
                str(test_policy_path),
                env={"RETRAIN_STORE": build_env["RETRAIN_STORE"]},
            )
            assert code == 0, err
        _commit(root, "promote the candidate to production")
        # Later: the training code changes (so does the model's code digest)
        # and the holdout is regenerated with another seed.
        with (root / "retrain" / "train.py").open("a") as f:
            f.write("\n# a later change to the training code\n")
        shutil.rmtree(root / "data" / "holdout")
        holdout = str(root / "data" / "holdout")
        for argv in (
            ["datagen", holdout, "--rows", "10000", "--seed", "777", "--id-offset", "1000000"],
            [
                "manifest",
                "create",
                holdout,
                "--name",
                "holdout",
                "-o",
                str(root / "data_manifests" / "holdout.json"),
            ],
        ):
            code, _, err = _cli(*argv, env={})
            assert code == 0, err
        head = _commit(root, "change the training code and the holdout")
        (model_dir,) = sorted((registry / "models").iterdir())
        yield History(
            root=root,
            workspace=ws,
            build_env=build_env,
            registry=registry,
            policy_path=test_policy_path,
            model_dir=model_dir,
            model_sha=model_dir.name,
            built_at=built_at,
            head=head,
            first_build=first_build,
            base=base,
        )
    finally:
        ws.shutdown()


@dataclass(frozen=True)
class CliRebuild:
    code: int
    stdout: str
    stderr: str
    tmpdir: Path  # where its temporary directories went
    worktrees_after: list[str]


@pytest.fixture(scope="module")
def json_rebuild(history: History) -> CliRebuild:
    """`retrain rebuild --all --json` in-process, the training data from a store by digest."""
    store = ContentStore(str(history.base / "data-store"))
    manifest = load_manifest(history.model_dir / "data_manifests" / "default.json")
    store.put_dataset(manifest, history.root / "data" / "default")
    tmpdir = history.base / "json-rebuild-tmp"
    tmpdir.mkdir()
    code, out, err = _cli(
        "rebuild",
        "--all",
        "--json",
        *history.args(),
        env={"RETRAIN_STORE": store.location},
        tmpdir=tmpdir,
    )
    return CliRebuild(code, out, err, tmpdir, _worktrees(history.root))


@pytest.fixture(scope="module")
def perturbed_rebuild(history: History) -> CliRebuild:
    """`retrain rebuild --all` as CI runs it, from another directory, under a perturbed environment."""
    elsewhere = history.base / "elsewhere"
    tmpdir = history.base / "perturbed-tmp"
    elsewhere.mkdir()
    tmpdir.mkdir()
    env = base_env()
    env.update(
        {
            "PYTHONHASHSEED": "4242",
            "TZ": "America/St_Johns",
            "LANG": "de_DE.UTF-8",
            "LC_ALL": "de_DE.UTF-8",
            "OMP_NUM_THREADS": "2",
            "OPENBLAS_NUM_THREADS": "2",
            "MKL_NUM_THREADS": "2",
            "SOURCE_DATE_EPOCH": "1700000000",
            "RETRAIN_STORE": str(history.base / "empty-store"),
            "TMPDIR": str(tmpdir),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "rebuild", "--all", *history.args()],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        preexec_fn=lambda: os.umask(0o077),
        check=False,
    )
    return CliRebuild(proc.returncode, proc.stdout, proc.stderr, tmpdir, _worktrees(history.root))


def _json_report(json_rebuild: CliRebuild) -> dict[str, Any]:
    assert json_rebuild.code == 0, json_rebuild.stderr + json_rebuild.stdout
    (report,) = json.loads(json_rebuild.stdout)
    return report  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# 1. bit-identical, really retrained


def test_rebuild_recreates_every_output_of_an_old_model_bit_for_bit(
    history: History, json_rebuild: CliRebuild
) -> None:
    # Since the model was built, the code and the data changed.
    provenance = json.loads((history.model_dir / "provenance.json").read_text())
    deps = {
        d["name"]: d for d in provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
    }
    assert deps["source"]["digest"]["gitCommit"] == history.built_at != history.head
    assert (
        sha256_of(history.root / "retrain" / "train.py")
        != deps["retrain/train.py"]["digest"]["sha256"]
    )
    assert (
        sha256_of(history.root / "data_manifests" / "holdout.json")
        != deps["dataset/holdout"]["annotations"]["manifestSha256"]
    )

    report = _json_report(json_rebuild)
    assert report["identical"] is True
    assert report["commit"] == history.built_at
    assert report["target"] == "//models:candidate"
    assert report["problems"] == []
    assert report["toolchain_changes"] == []
    recorded = {name: sha256_of(history.model_dir / name) for name in SUBJECTS}
    assert {o["name"]: o["rebuilt"] for o in report["outputs"]} == recorded
    assert all(o["identical"] for o in report["outputs"])


def test_rebuild_really_retrains_in_a_fresh_output_base(json_rebuild: CliRebuild) -> None:
    report = _json_report(json_rebuild)
    executed = report["executed_actions"]
    assert "RetrainTrain" in executed, executed
    # No cache of any kind: the dataset checks, evaluation and provenance ran too.
    assert len(executed) > 5, executed


def test_rebuild_leaves_no_worktree_or_temporary_directory_behind(
    history: History, json_rebuild: CliRebuild, perturbed_rebuild: CliRebuild
) -> None:
    for run in (json_rebuild, perturbed_rebuild):
        assert len(run.worktrees_after) == 1, run.worktrees_after
        assert _rebuild_dirs(run.tmpdir) == []
    assert len(_worktrees(history.root)) == 1


# ---------------------------------------------------------------------------
# 2. what could not be recreated is named


def test_rebuild_fails_naming_a_data_blob_altered_in_the_store(
    history: History, tmp_path: Path
) -> None:
    store = ContentStore(str(tmp_path / "store"))
    manifest = load_manifest(history.model_dir / "data_manifests" / "default.json")
    store.put_dataset(manifest, history.root / "data" / "default")
    altered = manifest.entries[1]
    blob = store.local_path(altered.sha256)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()

    code, out, err = _cli(
        "rebuild",
        history.model_sha[:12],
        *history.args(),
        env={"RETRAIN_STORE": store.location},
        tmpdir=tmpdir,
    )

    assert code == 1, out + err
    lines = [ln for ln in err.splitlines() if "could not recreate" in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith(
        "retrain: rebuild: could not recreate dataset default (store): store blob is corrupted"
    )
    assert f"expected {altered.sha256}" in lines[0]
    assert "bit-identical" not in out
    # It stopped before building, and cleaned up after itself.
    assert len(_worktrees(history.root)) == 1
    assert _rebuild_dirs(tmpdir) == []


def test_rebuild_keep_leaves_the_worktree_for_debugging(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContentStore(str(tmp_path / "store"))
    manifest = load_manifest(history.model_dir / "data_manifests" / "default.json")
    store.put_dataset(manifest, history.root / "data" / "default")
    blob = store.local_path(manifest.entries[0].sha256)
    blob.write_bytes(blob.read_bytes()[:-1])  # a quick failure after the checkout
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))

    report = history.rebuild(history.model_dir, tmp_path / "store", keep=True)
    try:
        assert report.exit_code == 1
        (kept,) = _rebuild_dirs(tmpdir)
        worktree = tmpdir / kept / "src"
        assert (worktree / "models" / "BUILD.bazel").is_file()
        assert _git(worktree, "rev-parse", "HEAD") == history.built_at
        assert len(_worktrees(history.root)) == 2
    finally:
        for name in _rebuild_dirs(tmpdir):
            _git(history.root, "worktree", "remove", "--force", str(tmpdir / name / "src"))
        _git(history.root, "worktree", "prune")
    assert len(_worktrees(history.root)) == 1


def test_rebuild_fails_naming_a_commit_the_repository_does_not_hold(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _init_repo(other)
    (other / "README").write_text("an unrelated repository\n")
    _commit(other, "unrelated")

    code = main(
        [
            "rebuild",
            history.model_sha[:12],
            "--repo",
            str(other),
            "--registry",
            str(history.registry),
            "--policy",
            str(history.policy_path),
        ]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert (
        f"retrain: rebuild: could not recreate source: commit {history.built_at} "
        f"is not in the repository {other}" in err
    )
    assert len(_worktrees(other)) == 1


def test_rebuild_from_a_shallow_clone_fails_naming_the_missing_commit(
    history: History, tmp_path: Path
) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{history.root}", str(shallow)],
        check=True,
        capture_output=True,
    )

    report = history.rebuild(history.model_dir, tmp_path / "store", repo=shallow)

    assert report.exit_code == 1
    assert [p.line() for p in report.problems] == [
        f"source: commit {history.built_at} is not in the repository {shallow}: "
        f"expected {history.built_at}, found no such commit"
    ]


# ---------------------------------------------------------------------------
# 3. whatever the caller's environment


def test_rebuild_is_bit_identical_under_a_perturbed_caller_environment(
    history: History, perturbed_rebuild: CliRebuild
) -> None:
    run = perturbed_rebuild
    assert run.code == 0, run.stderr + run.stdout
    assert (
        f"bit-identical: {history.model_sha[:12]} (//models:candidate @ {history.built_at[:12]})"
        in run.stdout
    )
    assert "training executed" in run.stdout
    for name in SUBJECTS:
        assert f"  {name:<20} sha256 {sha256_of(history.model_dir / name)}" in run.stdout
    assert "toolchain changed" not in run.stdout + run.stderr


# ---------------------------------------------------------------------------
# 4. a dirty tree is no recipe


def test_rebuild_refuses_a_model_built_from_a_dirty_tree(history: History, tmp_path: Path) -> None:
    readme = history.root / "README.md"
    original = readme.read_bytes()
    readme.write_bytes(original + b"\nAn edit nobody committed.\n")
    try:
        history.workspace.must_build("//models:candidate", env=history.build_env)
    finally:
        readme.write_bytes(original)
    info = history.workspace.run("info", "bazel-bin", env=history.build_env)
    out = Path(info.stdout.strip()) / "models" / "candidate"
    provenance = json.loads((out / "provenance.json").read_text())
    source = provenance["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    assert source["annotations"]["gitTreeState"] == "dirty"
    assert source["digest"]["gitCommit"] == history.head

    report = history.rebuild(out, tmp_path / "store")

    assert report.exit_code == 1
    assert [p.line() for p in report.problems] == [
        f"source: {NOT_CLEAN}: the commit does not describe its sources: "
        "expected clean, found dirty"
    ]
    assert report.outputs == []
    assert len(_worktrees(history.root)) == 1


# ---------------------------------------------------------------------------
# 5. --all, for CI


def test_rebuild_all_prints_a_summary_and_exits_0(perturbed_rebuild: CliRebuild) -> None:
    run = perturbed_rebuild
    assert run.code == 0, run.stderr + run.stdout
    summary = [ln for ln in run.stdout.splitlines() if ln.startswith("bit-identical: ")]
    assert len(summary) == 1, run.stdout
    assert "5 of 5 outputs" in summary[0]
    assert "actions run, training executed" in summary[0]
    assert "NOT bit-identical" not in run.stderr


def test_rebuild_all_json_is_a_list_of_reports(history: History, json_rebuild: CliRebuild) -> None:
    reports = json.loads(json_rebuild.stdout)
    assert isinstance(reports, list) and len(reports) == 1
    (item,) = reports
    assert item["identical"] is True
    assert item["model"] == str(history.model_dir)
    assert sorted(o["name"] for o in item["outputs"]) == sorted(SUBJECTS)
    assert set(item) >= {"commit", "target", "outputs", "problems", "executed_actions", "seconds"}
    assert json_rebuild.code == 0


# ---------------------------------------------------------------------------
# failure paths (a fake bazel keeps them quick)


def test_a_failed_rebuild_shuts_its_bazel_server_down(history: History, tmp_path: Path) -> None:
    bazel, log = _fake_bazel(tmp_path / "bazel")

    report = history.rebuild(history.model_dir, tmp_path / "store", bazel=str(bazel))

    assert [p.input for p in report.problems] == ["build"]
    assert any(" shutdown" in ln for ln in log.read_text().splitlines()), log.read_text()


def test_rebuild_of_an_old_build_directory_verifies_it_against_its_own_commit(
    history: History, tmp_path: Path
) -> None:
    bazel, _ = _fake_bazel(tmp_path / "bazel")

    report = history.rebuild(history.first_build, tmp_path / "store", bazel=str(bazel))

    # Everything is recreated; only the (fake) build fails.
    assert [p.input for p in report.problems] == ["build"], [p.line() for p in report.problems]


def test_rebuild_all_on_an_empty_registry_names_the_registry(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "registry"

    code = main(
        ["rebuild", "--all", "--registry", str(empty), "--policy", str(history.policy_path)]
    )

    assert code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"retrain: error: {empty / 'models'}: the registry holds no model to rebuild: "
        "expected at least one promoted model, found none"
    ]


# ---------------------------------------------------------------------------
# 6. a model evaluated against the model in production


def test_a_model_evaluated_against_the_production_model_rebuilds_bit_for_bit(
    history: History, tmp_path: Path
) -> None:
    # Built at the later commit, its champion is the model promoted before:
    # the registry at that commit says so, and the rebuild recreates it from
    # the worktree, checkpoint and stored chain verified in the build.
    history.workspace.must_build("//models:candidate", env=history.build_env)
    info = history.workspace.run("info", "bazel-bin", env=history.build_env)
    out = Path(info.stdout.strip()) / "models" / "candidate"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["champion"]["sha256"] == history.model_sha
    provenance = json.loads((out / "provenance.json").read_text())
    deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {
        "name": "champion",
        "digest": {"sha256": history.model_sha},
        "annotations": {"role": "champion"},
    } in deps
    assert deps[0]["digest"]["gitCommit"] == history.head
    later = _copy_output(out, tmp_path / "later")

    report = history.rebuild(later, tmp_path / "store")

    assert report.identical, [p.line() for p in report.problems] or report.to_dict()["outputs"]
    assert "RetrainRegistryChampion" in report.executed
    assert "RetrainTrain" in report.executed
    assert {o.name for o in report.outputs} == set(SUBJECTS)
