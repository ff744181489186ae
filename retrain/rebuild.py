"""Rebuilding a model from its attestations, bit for bit: a rebuild is a verification.

``rebuild`` takes a model directory (a registry entry under
``attestations/registry/models/<sha256>/``, or a build's output directory),
verifies its chain, and reads what its signed build provenance recorded: the
target, the git commit (and that the tree was clean), every source file by
sha256, the lock, each dataset by manifest and dataset digest and where its
data lives, the toolchain. It then recreates each input exactly:

* the source tree at the recorded commit, as a temporary ``git worktree``,
  every recorded source file checked against its sha256;
* every dataset's manifest checked, and its files taken from the
  content-addressed store by digest (verified) when the store has them, or
  else checked in the worktree (data embedded in the repository);

and builds the recorded target in a fresh Bazel output base, with no disk or
remote cache, so every action really runs (the execution log shows the
training action). Every subject the provenance attests is compared with the
rebuilt file. Anything that could not be recreated (a missing commit, missing
or altered data, a changed source) is reported by name and stops the rebuild
before it builds; a changed toolchain is reported beside the comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain.attest.policy import TrustPolicy
from retrain.attest.provenance import BuildProvenance
from retrain.digest import sha256_file
from retrain.errors import InputError

__all__ = [
    "InputProblem",
    "OutputComparison",
    "RebuildReport",
    "RecordedBuild",
    "RecordedDataset",
    "rebuild",
]


@dataclass(frozen=True)
class RecordedDataset:
    name: str
    manifest_uri: str
    manifest_sha256: str
    dataset_digest: str
    location: dict[str, Any]


@dataclass(frozen=True)
class RecordedBuild:
    """What the build provenance says the build was made of."""

    target: str
    commit: str | None
    tree_state: str
    sources: dict[str, str]
    lock_name: str
    lock_sha256: str
    datasets: tuple[RecordedDataset, ...]
    toolchain: dict[str, Any]
    subjects: dict[str, str]

    @property
    def package(self) -> str:
        return self.target.removeprefix("//").split(":")[0]

    @property
    def name(self) -> str:
        return self.target.split(":")[-1]

    @classmethod
    def from_provenance(cls, p: BuildProvenance, *, where: str) -> RecordedBuild:
        target = p.external_parameters.get("target")
        if not isinstance(target, str) or not target.startswith("//") or ":" not in target:
            raise InputError("provenance records no Bazel target", where=where, found=repr(target))
        source = p.dependency("source")
        commit = source.digest.get("gitCommit") if source else None
        tree_state = (
            str((source.annotations or {}).get("gitTreeState", "unknown")) if source else "unknown"
        )
        sources: dict[str, str] = {}
        datasets = []
        lock_name, lock_sha = "", ""
        toolchain: dict[str, Any] = {}
        for dep in p.resolved_dependencies:
            notes = dict(dep.annotations or {})
            if dep.name == "source":
                continue
            if dep.name.startswith("dataset/"):
                datasets.append(
                    RecordedDataset(
                        name=dep.name.removeprefix("dataset/"),
                        manifest_uri=str(dep.uri),
                        manifest_sha256=str(notes.get("manifestSha256")),
                        dataset_digest="sha256:" + str(dep.sha256),
                        location=dict(notes.get("location") or {}),
                    )
                )
            elif dep.name.startswith("toolchain/"):
                toolchain[dep.name] = {"digest": dict(dep.digest), **notes}
            elif notes.get("role") == "lock":
                lock_name, lock_sha = dep.name, str(dep.sha256)
            elif notes.get("role") == "champion":
                # Recreated with the sources: the champion comes from the
                # registry (or a package) at the commit; metrics.json shows
                # whether it was the same one.
                continue
            else:
                sources[dep.name] = str(dep.sha256)
        return cls(
            target=target,
            commit=commit,
            tree_state=tree_state,
            sources=sources,
            lock_name=lock_name,
            lock_sha256=lock_sha,
            datasets=tuple(datasets),
            toolchain=toolchain,
            subjects={s.name: str(s.sha256) for s in p.subjects},
        )


@dataclass(frozen=True)
class InputProblem:
    """A recorded input that could not be recreated."""

    input: str
    what: str
    expected: str = ""
    found: str = ""

    def line(self) -> str:
        tail = (
            f": expected {self.expected}, found {self.found}" if self.expected or self.found else ""
        )
        return f"{self.input}: {self.what}{tail}"


@dataclass(frozen=True)
class OutputComparison:
    name: str
    recorded: str
    rebuilt: str | None

    @property
    def identical(self) -> bool:
        return self.recorded == self.rebuilt


@dataclass
class RebuildReport:
    model: str
    target: str = ""
    commit: str | None = None
    outputs: list[OutputComparison] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    toolchain_changes: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)  # how each dataset was recreated
    executed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return not self.problems and bool(self.outputs) and all(o.identical for o in self.outputs)

    @property
    def exit_code(self) -> int:
        return 0 if self.identical else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "target": self.target,
            "commit": self.commit,
            "identical": self.identical,
            "outputs": [
                {
                    "name": o.name,
                    "recorded": o.recorded,
                    "rebuilt": o.rebuilt,
                    "identical": o.identical,
                }
                for o in self.outputs
            ],
            "problems": [p.line() for p in self.problems],
            "toolchain_changes": self.toolchain_changes,
            "recreated": self.recreated,
            "executed_actions": self.executed,
            "seconds": round(self.seconds, 1),
        }


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=check
    )


def _load_provenance(model_dir: Path) -> BuildProvenance:
    from retrain.attest.envelope import read_link_envelope

    envelope = read_link_envelope(model_dir / "provenance.intoto.jsonl")
    where = str(model_dir / "provenance.intoto.jsonl")
    return BuildProvenance.from_statement(json.loads(envelope.payload), where=where)


def _check_sources(worktree: Path, recorded: RecordedBuild) -> list[InputProblem]:
    problems = []
    for path, sha in sorted(recorded.sources.items()):
        f = worktree / path
        found = sha256_file(f).sha256 if f.is_file() else "no file"
        if found != sha:
            problems.append(
                InputProblem(
                    f"source {path}", f"differs at commit {str(recorded.commit)[:12]}", sha, found
                )
            )
    if recorded.lock_name:
        lock = worktree / recorded.lock_name
        found = sha256_file(lock).sha256 if lock.is_file() else "no file"
        if found != recorded.lock_sha256:
            problems.append(
                InputProblem(f"lock {recorded.lock_name}", "differs", recorded.lock_sha256, found)
            )
    return problems


def _recreate_datasets(
    worktree: Path, recorded: RecordedBuild, store: Any
) -> tuple[list[InputProblem], list[str]]:
    """Each dataset from the store by digest when it is there, else from the worktree; all verified."""
    from retrain.errors import RetrainError
    from retrain.manifest import load_manifest, verify_directory

    problems: list[InputProblem] = []
    notes: list[str] = []
    for ds in recorded.datasets:
        label = f"dataset {ds.name}"
        manifest_path = worktree / ds.manifest_uri
        if not manifest_path.is_file():
            problems.append(
                InputProblem(label, f"manifest {ds.manifest_uri} is missing at the commit")
            )
            continue
        found = sha256_file(manifest_path).sha256
        if found != ds.manifest_sha256:
            problems.append(
                InputProblem(
                    label, f"manifest {ds.manifest_uri} differs", ds.manifest_sha256, found
                )
            )
            continue
        manifest = load_manifest(manifest_path)
        if manifest.dataset_digest != ds.dataset_digest:
            problems.append(
                InputProblem(label, "dataset digest", ds.dataset_digest, manifest.dataset_digest)
            )
            continue
        in_store = all(store.has(e.sha256) for e in manifest.entries)
        if "store" in ds.location:
            if not in_store:
                missing = next(e for e in manifest.entries if not store.has(e.sha256))
                problems.append(
                    InputProblem(
                        label,
                        f"file {missing.path} is not in the store {store.location}",
                        f"sha256 {missing.sha256}",
                        "no blob",
                    )
                )
            else:
                notes.append(
                    f"{label}: {len(manifest.entries)} files in the store by digest "
                    "(the build verifies each)"
                )
            continue
        root = worktree / str(ds.location.get("root", ""))
        if in_store:
            try:
                store.materialize(manifest, root, link=False)
                notes.append(
                    f"{label}: {len(manifest.entries)} files from the store by digest, verified"
                )
            except RetrainError as exc:
                problems.append(
                    InputProblem(
                        f"{label} (store)", exc.what, str(exc.expected or ""), str(exc.found or "")
                    )
                )
            continue
        failures = verify_directory(manifest, root, manifest_where=ds.manifest_uri)
        if failures:
            first = failures[0]
            problems.append(
                InputProblem(
                    label,
                    f"data {first.where}: {first.what} (not in the store either)",
                    str(first.expected or ""),
                    str(first.found or ""),
                )
            )
        else:
            notes.append(
                f"{label}: {len(manifest.entries)} files from the repository at the commit, verified"
            )
    return problems, notes


def _toolchain_changes(recorded: RecordedBuild, rebuilt: BuildProvenance) -> list[str]:
    changes = []
    for name, before in sorted(recorded.toolchain.items()):
        dep = rebuilt.dependency(name)
        now = {"digest": dict(dep.digest), **dict(dep.annotations or {})} if dep else {}
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                changes.append(f"{name} {key}: recorded {before.get(key)!r}, now {now.get(key)!r}")
    return changes


def _executed(log: Path) -> list[str]:
    if not log.exists():
        return []
    decoder, text, pos, out = json.JSONDecoder(), log.read_text(), 0, []
    text = text.strip()
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not obj.get("remoteCacheHit"):
            out.append(str(obj.get("mnemonic", "")))
    return out


def rebuild(
    model_dir: str | os.PathLike[str],
    *,
    repo: Path,
    policy: TrustPolicy,
    policy_where: str = "policy",
    store: Any = None,
    bazel: str = "bazel",
    keep: bool = False,
    env: dict[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RebuildReport:
    """Rebuild the model in ``model_dir`` from its provenance and compare every subject."""
    from retrain.attest.verify import verify_model
    from retrain.store import ContentStore

    started = time.monotonic()
    model_dir = Path(model_dir)
    repo = Path(repo).resolve()
    store = store or ContentStore.default()
    report = RebuildReport(model=str(model_dir))

    def chain_problems(repo_root: Path) -> list[InputProblem]:
        progress("verifying the attestation chain")
        chain = verify_model(model_dir, policy, policy_where=policy_where, repo_root=repo_root)
        return [InputProblem("attestations", f.message) for f in chain.failures]

    # A registry entry carries the data manifests it was promoted with; a
    # build output directory does not, and is checked against the manifests
    # of its own commit (below, once that is checked out), never against the
    # repository's current ones, which may have moved on since.
    own_manifests = (model_dir / "data_manifests").is_dir()
    if own_manifests:
        report.problems += chain_problems(model_dir)
        if report.problems:
            return report
    provenance = _load_provenance(model_dir)
    recorded = RecordedBuild.from_provenance(provenance, where=str(model_dir))
    report.target, report.commit = recorded.target, recorded.commit
    if not recorded.commit:
        report.problems.append(
            InputProblem("source", "the provenance records no git commit", "a commit", "none")
        )
        return report
    if recorded.tree_state != "clean":
        report.problems.append(
            InputProblem(
                "source",
                "the tree was not clean when the model was built: the commit does not describe its sources",
                "clean",
                recorded.tree_state,
            )
        )
        return report
    if _git(repo, "cat-file", "-e", f"{recorded.commit}^{{commit}}", check=False).returncode != 0:
        report.problems.append(
            InputProblem(
                "source",
                f"commit {recorded.commit} is not in the repository {repo}",
                recorded.commit,
                "no such commit",
            )
        )
        return report
    work = Path(tempfile.mkdtemp(prefix="retrain-rebuild-"))
    worktree = work / "src"
    output_base = work / "output-base"
    startup: list[str] = []  # set when the Bazel server may have started
    run_env: dict[str, str] = {}
    try:
        progress(f"checking out {recorded.commit[:12]} in a temporary worktree")
        _git(repo, "worktree", "add", "--detach", "--force", str(worktree), recorded.commit)
        if not own_manifests:
            report.problems += chain_problems(worktree)
            if report.problems:
                return report
        report.problems += _check_sources(worktree, recorded)
        problems, notes = _recreate_datasets(worktree, recorded, store)
        report.problems += problems
        report.recreated = notes
        if report.problems:
            return report
        progress(f"building {recorded.target} in a fresh output base, no caches")
        run_env = dict(env if env is not None else os.environ)
        run_env.pop("RETRAIN_SIGNING_KEY", None)  # the rebuild signs nothing anyone trusts
        run_env["XDG_CONFIG_HOME"] = str(work / "config")
        run_env["RETRAIN_STORE"] = store.location
        log = work / "execution.json"
        startup = [bazel, f"--output_base={output_base}", "--nohome_rc"]
        build = subprocess.run(
            [
                *startup,
                "build",
                "--color=no",
                "--curses=no",
                "--symlink_prefix=/",
                "--disk_cache=",
                "--noremote_accept_cached",
                "--noremote_upload_local_results",
                f"--execution_log_json_file={log}",
                recorded.target,
            ],
            cwd=worktree,
            env=run_env,
            capture_output=True,
            text=True,
        )
        if build.returncode != 0:
            tail = [
                ln
                for ln in (build.stdout + build.stderr).splitlines()
                if "ERROR" in ln or ln.startswith("retrain:")
            ]
            report.problems.append(
                InputProblem(
                    "build",
                    f"bazel build {recorded.target} failed",
                    "success",
                    (tail or ["see bazel output"])[-1][:300],
                )
            )
            return report
        info = subprocess.run(
            [*startup, "info", "bazel-bin"],
            cwd=worktree,
            env=run_env,
            capture_output=True,
            text=True,
            check=True,
        )
        out_dir = Path(info.stdout.strip()) / recorded.package / recorded.name
        for name, sha in sorted(recorded.subjects.items()):
            f = out_dir / name
            report.outputs.append(
                OutputComparison(name, sha, sha256_file(f).sha256 if f.is_file() else None)
            )
        rebuilt = BuildProvenance.from_statement(
            json.loads((out_dir / "provenance.json").read_text()), where=str(out_dir)
        )
        report.toolchain_changes = _toolchain_changes(recorded, rebuilt)
        report.executed = _executed(log)
    finally:
        if startup:
            # Whether the build passed or not: a server left idling would
            # hold the output base that is deleted next.
            subprocess.run(
                [*startup, "shutdown"], cwd=worktree, env=run_env, capture_output=True, check=False
            )
        if not keep:
            _git(repo, "worktree", "remove", "--force", str(worktree), check=False)
            _git(repo, "worktree", "prune", check=False)
            subprocess.run(["chmod", "-R", "u+w", str(work)], capture_output=True, check=False)
            shutil.rmtree(work, ignore_errors=True)
        report.seconds = time.monotonic() - started
    return report
