"""Rebuild time against the original build time, in one run.

Usage: python bench/bench_rebuild.py [MODEL] [--repeat 2]

MODEL is a promoted model (a sha256 prefix in attestations/registry, or a
model directory); default: the only model in the registry. For each repeat:

* original: `bazel build` of the model's recorded target at its recorded
  commit, in a fresh output base with no disk cache (what the build cost
  when it was made, on this machine, from scratch);
* rebuild: `retrain rebuild MODEL` (chain verification, worktree at the
  commit, source and data checks, the same fresh, cache-less build, the
  comparison of every output).

Both start from a fresh output base, so both install the locked Python
environment; the ratio is the price of verifying on top of building.
Writes bench/results/rebuild.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from retrain.attest.trust import load_policy
from retrain.rebuild import RecordedBuild, _load_provenance, rebuild

ROOT = Path(__file__).resolve().parents[1]


def original_build(commit: str, target: str) -> float:
    work = Path(tempfile.mkdtemp(prefix="retrain-bench-original-"))
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(work / "src"), commit],
            check=True,
            capture_output=True,
        )
        startup = ["bazel", f"--output_base={work / 'ob'}", "--nohome_rc"]
        t0 = time.perf_counter()
        subprocess.run(
            [*startup, "build", "--symlink_prefix=/", "--disk_cache=", target],
            cwd=work / "src",
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - t0
        subprocess.run([*startup, "shutdown"], cwd=work / "src", capture_output=True, check=False)
        return elapsed
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "src")],
            capture_output=True,
            check=False,
        )
        subprocess.run(["chmod", "-R", "u+w", str(work)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rebuild.json")
    args = ap.parse_args()
    models = ROOT / "attestations/registry/models"
    model = (
        Path(args.model)
        if args.model and Path(args.model).is_dir()
        else next(
            p
            for p in sorted(models.iterdir())
            if p.is_dir() and (args.model is None or p.name.startswith(args.model))
        )
    )
    recorded = RecordedBuild.from_provenance(_load_provenance(model), where=str(model))
    policy = load_policy(ROOT / "attestations/policy.json")
    originals, rebuilds = [], []
    for _ in range(args.repeat):
        originals.append(original_build(str(recorded.commit), recorded.target))
        report = rebuild(model, repo=ROOT, policy=policy)
        assert report.identical, [p.line() for p in report.problems] or report.outputs
        assert "RetrainTrain" in report.executed
        rebuilds.append(report.seconds)
    results = {
        "model": model.name,
        "target": recorded.target,
        "commit": recorded.commit,
        "original_build_s": originals,
        "rebuild_s": rebuilds,
        "ratio_best": min(rebuilds) / min(originals),
    }
    print(f"| measurement | seconds (best of {args.repeat}) | ratio |\n|---|---:|---:|")
    print(
        f"| original: fresh output base, no cache, `bazel build {recorded.target}` | {min(originals):.1f} | 1.00 |"
    )
    print(
        f"| `retrain rebuild {model.name[:12]}` (verify, worktree, build, compare) | {min(rebuilds):.1f} | {results['ratio_best']:.2f} |"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
