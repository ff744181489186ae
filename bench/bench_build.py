"""Build-side benchmarks: no-op build time, and the 1M-row build's overhead.

Usage: python bench/bench_build.py [--repeat 5]

1. No-op `bazel build //models:candidate` (everything up to date): median
   of --repeat runs, next to `bazel info` in the same server (the floor of
   any Bazel command).
2. `//models:candidate_1m` (same recipe, 1M rows from the content-addressed
   store): a full rebuild after `bazel clean` (external repositories stay
   fetched) against bench/bare_train.py doing the same training and
   evaluation with no manifest, sandbox or provenance. The bare script runs
   twice: with one thread, as the build does, and with the library defaults.

Uses its own output base (~/.cache/retrain/bench/output-base), so the user's
is left alone. Writes bench/results/build.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache/retrain/bench"


def bazel(*args: str, check: bool = True) -> float:
    cmd = ["bazel", f"--output_base={CACHE / 'output-base'}", "--nohome_rc", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if check and proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return elapsed


def retrain(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "retrain.cli", *args], cwd=ROOT, check=True)


def ensure_1m_dataset() -> Path:
    data = CACHE / "default_1m"
    manifest = ROOT / "data_manifests/default_1m.json"
    origin = json.loads(manifest.read_text())["origin"]
    if not data.exists():
        retrain(
            "datagen",
            str(data),
            "--rows",
            str(origin["rows"]),
            "--seed",
            str(origin["seed"]),
            "--files",
            "8",
        )
    retrain("store", "put", str(manifest), str(data))
    return data


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "build.json")
    args = p.parse_args()
    results: dict[str, object] = {}

    # 1. no-op build
    bazel("build", "//models:candidate")
    noop = [bazel("build", "//models:candidate") for _ in range(args.repeat)]
    floor = [bazel("info", "release") for _ in range(args.repeat)]
    results["noop_candidate_s"] = statistics.median(noop)
    results["noop_runs_s"] = noop
    results["bazel_info_s"] = statistics.median(floor)

    # 2. 1M rows: bazel full rebuild vs bare script
    data = ensure_1m_dataset()
    bazel("build", "//models:candidate_1m")  # fetch the store dataset repository once
    bazel("clean")
    build_1m = bazel("build", "//models:candidate_1m")
    recipe = str(ROOT / "models/candidate.recipe.json")
    env1 = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = str(CACHE / "bare.pkl")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "bench/bare_train.py"), recipe, str(data), out],
        check=True,
        env=env1,
        stdout=subprocess.DEVNULL,
    )
    bare_1thread = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "bench/bare_train.py"), recipe, str(data), out],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    bare_default = time.perf_counter() - t0
    results |= {
        "build_1m_s": build_1m,
        "bare_1m_1thread_s": bare_1thread,
        "bare_1m_default_threads_s": bare_default,
        "overhead_vs_1thread": build_1m / bare_1thread,
        "overhead_vs_default_threads": build_1m / bare_default,
        "cpus": os.cpu_count(),
    }
    print("| measurement | seconds | ratio |\n|---|---:|---:|")
    print(
        f"| no-op `bazel build //models:candidate` (median of {args.repeat}) | {results['noop_candidate_s']:.2f} | |"
    )
    print(f"| `bazel info release` (Bazel's floor per command) | {results['bazel_info_s']:.2f} | |")
    print(f"| `bazel build //models:candidate_1m` after `bazel clean` | {build_1m:.1f} | 1.00 |")
    print(f"| bare script, 1 thread | {bare_1thread:.1f} | {build_1m / bare_1thread:.2f}x |")
    print(f"| bare script, default threads | {bare_default:.1f} | {build_1m / bare_default:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    bazel("shutdown", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
