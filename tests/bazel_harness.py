"""Running real Bazel builds from tests: output bases, environments, results.

Each ``BazelWorkspace`` is one workspace directory with one output base of
its own, so tests choose what they share: the session shares one output base
for the repository itself and one for a scratch copy that tests mutate, and
the determinism tests start fresh ones on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CANDIDATE_FILES = (
    "model.rtm",
    "train_report.json",
    "metrics.json",
    "gates.txt",
    "report.html",
    "provenance.json",
)
SIGNED_LINKS = (
    "dataset.intoto.jsonl",
    "holdout.intoto.jsonl",
    "provenance.intoto.jsonl",
    "evaluation.intoto.jsonl",
)
_COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "bazel-*",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "test-artifacts",
    "user.bazelrc",
    "*.egg-info",
)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def base_env() -> dict[str, str]:
    """The caller environment tests start from: this process's, minus Bazel noise."""
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("BAZEL", "TEST_", "PYTEST_")):
            env.pop(key)
    return env


@dataclass
class BuildResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class BazelWorkspace:
    def __init__(self, root: Path, output_base: Path) -> None:
        self.root = root
        self.output_base = output_base

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        umask: int | None = None,
        timeout: int = 1800,
    ) -> BuildResult:
        cmd = [
            "bazel",
            f"--output_base={self.output_base}",
            "--nohome_rc",
            "--max_idle_secs=600",
            *args,
        ]
        preexec = (lambda: os.umask(umask)) if umask is not None else None
        proc = subprocess.run(
            cmd,
            cwd=cwd or self.root,
            env=env or base_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=preexec,
            check=False,
        )
        return BuildResult(proc.returncode, proc.stdout, proc.stderr)

    def build(self, *targets: str, **kw: object) -> BuildResult:
        # --symlink_prefix=/: no bazel-* convenience links, so a test never
        # repoints the developer's bazel-bin at a temporary output base.
        return self.run("build", "--color=no", "--curses=no", "--symlink_prefix=/", *targets, **kw)  # type: ignore[arg-type]

    def must_build(self, *targets: str, **kw: object) -> BuildResult:
        result = self.build(*targets, **kw)
        assert result.ok, f"bazel build {' '.join(targets)} failed:\n{result.stderr[-6000:]}"
        return result

    def bazel_bin(self) -> Path:
        # bazel-bin is a symlink in the workspace, but the output base is ours:
        # resolve it through `bazel info` rather than trusting the symlink.
        result = self.run("info", "bazel-bin")
        assert result.ok, result.stderr
        return Path(result.stdout.strip())

    def outputs(
        self, package_dir: str = "models/candidate", names: tuple[str, ...] = CANDIDATE_FILES
    ) -> dict[str, str]:
        out = self.bazel_bin() / package_dir
        return {name: sha256_of(out / name) for name in names}

    def signed_payloads(self, package_dir: str = "models/candidate") -> dict[str, str]:
        """sha256 of the payload each signed link carries (signatures themselves vary)."""
        out = self.bazel_bin() / package_dir
        digests = {}
        for name in SIGNED_LINKS:
            envelope = json.loads((out / name).read_text().splitlines()[0])
            digests[name] = hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest()
        return digests

    def executed_spawns(self, *targets: str, **kw: object) -> list[dict[str, object]]:
        """Build and return the spawns Bazel really executed (not cache hits)."""
        log = self.output_base.parent / f"exec-{os.getpid()}-{len(targets)}.json"
        if log.exists():
            log.unlink()
        self.must_build(*targets, f"--execution_log_json_file={log}", **kw)
        text = log.read_text() if log.exists() else ""
        decoder = json.JSONDecoder()
        spawns, pos = [], 0
        text = text.strip()
        while pos < len(text):
            obj, end = decoder.raw_decode(text, pos)
            spawns.append(obj)
            pos = end
            while pos < len(text) and text[pos].isspace():
                pos += 1
        return [s for s in spawns if not s.get("remoteCacheHit")]

    def shutdown(self) -> None:
        self.run("shutdown", timeout=120)


def copy_workspace(dest: Path) -> Path:
    """A scratch copy of the repository's working tree, without VCS or build state."""
    shutil.copytree(REPO_ROOT, dest, ignore=_COPY_IGNORE, symlinks=True)
    return dest


def write_champion_package(pkg: Path, model_dir: Path, policy: Path) -> str:
    """A package ``pkg`` holding a copy of ``model_dir`` as a ``champion_model``
    verified against ``policy``; returns its label, ``//<pkg name>``."""
    pkg.mkdir()
    for f in model_dir.iterdir():
        shutil.copyfile(f, pkg / f.name)
    shutil.copyfile(policy, pkg / "policy.test.json")
    (pkg / "BUILD.bazel").write_text(
        'load("//rules:defs.bzl", "champion_model")\n\n'
        "champion_model(\n"
        f'    name = "{pkg.name}",\n'
        '    srcs = glob(["*"], exclude = ["BUILD.bazel", "policy.test.json"]),\n'
        '    policy = "policy.test.json",\n'
        '    visibility = ["//visibility:public"],\n'
        ")\n"
    )
    return f"//{pkg.name}"
