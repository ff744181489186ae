"""Registry latency before and after a change, in one run: rollback and audit, side by side.

Usage: python bench/bench_registry_compare.py MODEL_A MODEL_B --key PRIVATE.pem
           [--baseline REV] [--entries 10000] [--rounds 2]

Checks out ``--baseline`` (default: 6c07302, the last commit before signed
policies and the verified model store) in a temporary git worktree and runs
this tree's ``bench/bench_registry.py`` (which works with either API) once
with the baseline's ``retrain`` first on the import path, then with this
tree's, alternating for ``--rounds`` rounds on the same machine, with the
same two models, key and log size. Each side is the best (lowest) of its rounds. Prints
both sides and the ratio after/before; writes
bench/results/registry_compare.json.

Issue 11's goal: rollback and audit no more than 10% slower than before.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = (
    ("rollback_ms_median", "rollback, library call, median of 100", "ms"),
    ("rollback_ms_p99", "rollback, library call, p99", "ms"),
    ("rollback_cli_ms_median", "`retrain rollback` command, median of 10", "ms"),
    ("audit_s", "audit, library", "s"),
    ("audit_cli_s", "`retrain audit` command", "s"),
)


def run_side(tree: Path, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """One run of ``tree``'s bench_registry.py with ``tree``'s code first on the path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_registry.py"),
            str(args.model_a.resolve()),
            str(args.model_b.resolve()),
            "--key",
            str(args.key.resolve()),
            "--entries",
            str(args.entries),
            "--out",
            str(out),
        ],
        check=True,
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    results: dict[str, float] = json.loads(out.read_text())
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_a", type=Path)
    ap.add_argument("model_b", type=Path)
    ap.add_argument("--key", type=Path, required=True)
    ap.add_argument("--baseline", default="6c07302")
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "registry_compare.json"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="retrain-bench-compare-"))
    baseline = work / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(baseline), args.baseline],
        check=True,
    )
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    try:
        for round_ in range(args.rounds):
            for side, tree in (("before", baseline), ("after", ROOT)):
                print(f"round {round_ + 1}: {side} ({tree})", file=sys.stderr)
                runs[side].append(run_side(tree, args, work / f"{side}-{round_}.json"))
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=False
        )
    best = {
        side: {key: min(r[key] for r in results) for key, _, _ in METRICS}
        for side, results in runs.items()
    }
    entries = int(runs["after"][0]["entries"])
    print(
        f"| measurement ({entries:,} entries, best of {args.rounds}) | before ({args.baseline}) "
        "| after | after / before |\n|---|---:|---:|---:|"
    )
    for key, label, unit in METRICS:
        before, after = best["before"][key], best["after"][key]
        fmt = "{:.1f}" if unit == "ms" else "{:.2f}"
        print(
            f"| {label} | {fmt.format(before)} {unit} | {fmt.format(after)} {unit} "
            f"| {after / before:.2f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"baseline": args.baseline, "rounds": args.rounds, "runs": runs, "best": best},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
