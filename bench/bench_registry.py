"""Registry latency: rollback (median, p99) and audit of a 10,000-entry log.

Usage: python bench/bench_registry.py MODEL_A MODEL_B --key PRIVATE.pem [--entries 10000]

MODEL_A and MODEL_B are two signed model directories (e.g. two builds of
//models:candidate with different recipes) signed by PRIVATE.pem. The
script writes a policy trusting that key (signed by it as its root), promotes both through shadow,
canary and production with the real `Registry.promote`, then grows the log to
ENTRIES with real signed rollback entries written through the registry's own
append path (model verification skipped while growing, to build the log in
minutes, not hours). Then it measures, on that log:

* `Registry.rollback()`: the library call (lock, read and check the signed
  checkpoint, verify the target's whole chain, sign, write entry and
  checkpoint with fsync), 100 times: median and p99;
* `retrain rollback` as a command (Python start-up included), 10 times;
* `Registry.audit()` over every entry and both models, and `retrain audit`.

Goals from issue 5: rollback under 100 ms; audit of 10,000 entries under 2 s.
Writes bench/results/registry.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import retrain
from retrain.attest.keys import load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.promotion import STAGES, PromotionPredicate
from retrain.registry import Registry

try:  # signed policies (issue 11); bench_registry_compare.py also runs this on older code
    from retrain.attest.trust import load_policy, write_policy_file

    SIGNED_POLICY = True
except ImportError:
    SIGNED_POLICY = False

# The tree whose retrain is imported (bench_registry_compare.py puts an older
# one first on PYTHONPATH): its commands run from there, so `-m retrain.cli`
# finds the same code.
ROOT = Path(retrain.__file__).resolve().parents[1]


def grow(registry: Registry, entries: int, signer: object) -> None:
    """Append real signed rollback entries, alternating production between A and B."""
    while True:
        checkpoint = registry.read_checkpoint()
        if checkpoint.size >= entries:
            return
        current = checkpoint.stages["production"]
        assert current is not None
        target = _other(registry)
        predicate = PromotionPredicate(
            position=checkpoint.size + 1,
            previous_entry=checkpoint.head,
            action="rollback",
            stage="production",
            traffic=100,
            model_sha256=target,
            previous_model=current.model_sha256,
            approvers=(signer.public_key.keyid,),  # type: ignore[attr-defined]
            time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            reason="benchmark",
            **({"policy": registry.policy.ref} if SIGNED_POLICY else {}),
        )
        registry._append(checkpoint, predicate, [signer])


def _other(registry: Registry) -> str:
    """The production model before the current one."""
    checkpoint = registry.read_checkpoint()
    current = checkpoint.stages["production"]
    assert current is not None
    return next(h for h in reversed(checkpoint.production_history) if h != current.model_sha256)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_a", type=Path)
    ap.add_argument("model_b", type=Path)
    ap.add_argument("--key", type=Path, required=True)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "registry.json")
    args = ap.parse_args()
    signer = load_signer(args.key)
    work = Path(tempfile.mkdtemp(prefix="retrain-bench-registry-"))
    try:
        policy_path = work / "policy.json"
        keys = [("bench", signer.public_key.keyval["public"])]
        expires = datetime(2100, 1, 1, tzinfo=UTC)
        if SIGNED_POLICY:
            # The models may come from a working tree: dirty builds everywhere.
            built = TrustPolicy.for_keys(keys, expires=expires, allow_dirty=STAGES)
            write_policy_file(policy_path, built, signers=[signer])
            policy = load_policy(policy_path)
        else:
            from retrain._internal.fsio import atomic_write_json

            policy = TrustPolicy.for_keys(keys, expires=expires)
            atomic_write_json(policy_path, policy.to_dict())
        registry = Registry(work / "registry", policy, policy_where=str(policy_path))
        for model in (args.model_a, args.model_b):
            for stage, traffic in (("shadow", 0), ("canary", 10), ("production", 100)):
                registry.promote(model, stage, signers=[signer], traffic=traffic, repo_root=ROOT)
        t0 = time.perf_counter()
        grow(registry, args.entries, signer)
        grow_s = time.perf_counter() - t0

        latencies = []
        for _ in range(100):
            # Named: production alternates between the two models, so the
            # other one is always the one rolled back from (no default target).
            target = _other(registry)
            t0 = time.perf_counter()
            registry.rollback(signers=[signer], to=target)
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        env = dict(os.environ, RETRAIN_SIGNING_KEY=str(args.key))
        command = [sys.executable, "-m", "retrain.cli"]
        cli_ms = []
        for _ in range(10):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [
                    *command,
                    "rollback",
                    "--to",
                    _other(registry),
                    "--registry",
                    str(registry.root),
                    "--policy",
                    str(policy_path),
                ],
                check=False,
                capture_output=True,
                env=env,
                cwd=ROOT,
            )
            if proc.returncode:
                raise SystemExit(f"retrain rollback failed: {proc.stderr.strip()}")
            cli_ms.append((time.perf_counter() - t0) * 1000)
        size = registry.read_checkpoint().size
        t0 = time.perf_counter()
        report = registry.audit()
        audit_s = time.perf_counter() - t0
        assert report.ok, report.first_broken
        t0 = time.perf_counter()
        subprocess.run(
            [*command, "audit", "--registry", str(registry.root), "--policy", str(policy_path)],
            check=True,
            capture_output=True,
            env=env,
            cwd=ROOT,
        )
        audit_cli_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "entries": size,
        "grow_s": grow_s,
        "rollback_ms_median": statistics.median(latencies),
        "rollback_ms_p99": latencies[int(0.99 * (len(latencies) - 1))],
        "rollback_cli_ms_median": statistics.median(cli_ms),
        "audit_s": audit_s,
        "audit_cli_s": audit_cli_s,
    }
    print("| measurement | value | goal |\n|---|---:|---:|")
    print(
        f"| rollback, library call, median of 100 | {results['rollback_ms_median']:.1f} ms | < 100 ms |"
    )
    print(f"| rollback, library call, p99 | {results['rollback_ms_p99']:.1f} ms | < 100 ms |")
    print(
        f"| `retrain rollback` command, median of 10 | {results['rollback_cli_ms_median']:.0f} ms | well under 1 s |"
    )
    print(f"| audit of {size:,} entries and 2 models, library | {audit_s:.2f} s | < 2 s |")
    print(f"| `retrain audit` command | {audit_cli_s:.2f} s | |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
