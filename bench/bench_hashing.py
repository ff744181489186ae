"""Manifest hashing throughput against sha256sum and openssl, in one run.

Usage: python bench/bench_hashing.py [--gib 1.0] [--repeat 3] [--data DIR]

Builds (once, cached under ~/.cache/retrain/bench) a ~1 GiB dataset with
`retrain datagen` in two layouts: many files (64 parts) and one file. Then,
on warm page cache so that hashing and not the disk is measured, times:

* retrain: `create_manifest` (sha256 of every file + Parquet footers) with
  1 worker and with one worker per core, and raw `sha256_files`;
* `sha256sum FILES...` (coreutils, one process);
* `openssl dgst -sha256 FILES...` (one process), and the same split across
  as many processes as cores (`xargs -P`) as the best a shell user gets.

Prints a table of MB/s and ratios to openssl, and writes JSON next to it.
Timings are the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from retrain.datagen import GeneratorSpec, write_dataset
from retrain.digest import sha256_files
from retrain.manifest import create_manifest

ROWS_PER_GIB = 63_000_000  # ~17 bytes/row in zstd Parquet for this generator


def _dataset(root: Path, gib: float, files: int) -> list[Path]:
    rows = int(ROWS_PER_GIB * gib)
    target = root / f"rows{rows}-files{files}"
    if not target.exists():
        print(f"generating {rows} rows in {files} files into {target} ...", file=sys.stderr)
        write_dataset(GeneratorSpec(rows=rows, seed=7), target, files=files)
    return sorted(target.glob("*.parquet"))


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def measure(paths: list[Path], repeat: int) -> dict[str, float]:
    size = sum(p.stat().st_size for p in paths)
    strs = [str(p) for p in paths]
    cores = os.cpu_count() or 1
    _run(["cat", *strs])  # warm the page cache
    root = paths[0].parent
    timings = {
        "retrain manifest create (1 worker)": _best(
            lambda: create_manifest(root, name="bench", workers=1), repeat
        ),
        f"retrain manifest create ({cores} workers)": _best(
            lambda: create_manifest(root, name="bench", workers=cores), repeat
        ),
        "retrain sha256_files (1 worker)": _best(lambda: sha256_files(paths, workers=1), repeat),
        f"retrain sha256_files ({cores} workers)": _best(
            lambda: sha256_files(paths, workers=cores), repeat
        ),
        "sha256sum": _best(lambda: _run(["sha256sum", *strs]), repeat),
        "openssl dgst -sha256": _best(lambda: _run(["openssl", "dgst", "-sha256", *strs]), repeat),
    }
    if len(paths) > 1:
        per = max(1, len(paths) // cores)
        timings[f"openssl dgst -sha256 (xargs -P{cores})"] = _best(
            lambda: subprocess.run(
                ["xargs", "-0", f"-P{cores}", f"-n{per}", "openssl", "dgst", "-sha256"],
                input="\0".join(strs).encode(),
                check=True,
                stdout=subprocess.DEVNULL,
            ),
            repeat,
        )
    return {name: size / t / 1e6 for name, t in timings.items()} | {
        "_bytes": size,
        "_files": len(paths),
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--gib", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--data", type=Path, default=Path.home() / ".cache/retrain/bench")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hashing.json")
    args = p.parse_args()
    for tool in ("sha256sum", "openssl"):
        if shutil.which(tool) is None:
            print(f"{tool} not found", file=sys.stderr)
            return 2
    results = {}
    for label, files in (("many files (64)", 64), ("one file", 1)):
        paths = _dataset(args.data, args.gib, files)
        results[label] = measure(paths, args.repeat)
    print(
        f"\nSHA-256 throughput, warm page cache, best of {args.repeat} (MB/s; ratio to single openssl)\n"
    )
    for label, row in results.items():
        ref = row["openssl dgst -sha256"]
        print(f"{label}: {row['_files']} files, {row['_bytes'] / 1e6:.0f} MB")
        print("| tool | MB/s | x openssl |\n|---|---:|---:|")
        for name, mbs in row.items():
            if not name.startswith("_"):
                print(f"| {name} | {mbs:,.0f} | {mbs / ref:.2f} |")
        print()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
