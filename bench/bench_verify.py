"""Chain verification throughput against a bare signature check, in one run.

Usage: python bench/bench_verify.py MODEL_DIR --public-key PUB [--models 1000]

MODEL_DIR is a signed model directory (e.g. bazel-bin/models/candidate after
`bazel build //models:candidate`) and PUB the public key that signed it (for
a default build: ~/.config/retrain/dev-key.pub). Measures, on warm caches:

* `retrain verify` (the library call `verify_model`) of the full chain:
  every check of every link, including re-hashing the dataset's files in
  the repository (the default), and without the data files (--repo omitted);
* the bare minimum any verifier does: one ECDSA P-256 signature check per
  link over the same DSSE payloads (securesystemslib ``verify_signature``),
  nothing else;
* the time to verify MODELS distinct copies of the directory, one after the
  other, as `retrain rebuild --all` or an audit over many models would.

Prints verifications per second and ratios; writes bench/results/verify.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from retrain.attest.envelope import read_envelopes
from retrain.attest.policy import TrustPolicy
from retrain.attest.sign import LINK_FILES
from retrain.attest.verify import verify_model

ROOT = Path(__file__).resolve().parents[1]


def rate(fn, seconds: float = 3.0) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir", type=Path)
    p.add_argument("--public-key", type=Path, required=True)
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "verify.json")
    args = p.parse_args()

    policy = TrustPolicy.for_keys(
        [("signer", args.public_key.read_text())], expires=datetime(2100, 1, 1, tzinfo=UTC)
    )
    key = next(iter(policy.keys.values()))
    report = verify_model(args.model_dir, policy, repo_root=ROOT)
    if not report.ok:
        print(
            "the model does not verify with this key:",
            *[f.message for f in report.failures],
            sep="\n",
            file=sys.stderr,
        )
        return 1
    envelopes = [read_envelopes(args.model_dir / name)[0] for name in LINK_FILES.values()]

    def bare() -> None:
        for envelope in envelopes:
            for signature in envelope.signatures.values():
                key.verify_signature(signature, envelope.pae())

    results = {
        "full_chain_with_data_per_s": rate(
            lambda: verify_model(args.model_dir, policy, repo_root=ROOT)
        ),
        "full_chain_without_data_per_s": rate(
            lambda: verify_model(args.model_dir, policy, repo_root=None)
        ),
        "bare_signatures_per_s": rate(bare),
    }
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for i in range(args.models):
            d = Path(tmp) / f"model-{i:05d}"
            shutil.copytree(args.model_dir, d)
            dirs.append(d)
        t0 = time.perf_counter()
        ok = sum(verify_model(d, policy, repo_root=ROOT).ok for d in dirs)
        results["models"] = args.models
        results["models_verified_ok"] = ok
        results["models_total_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for d in dirs:
            for name in LINK_FILES.values():
                envelope = read_envelopes(d / name)[0]
                for signature in envelope.signatures.values():
                    key.verify_signature(signature, envelope.pae())
        results["models_bare_total_s"] = time.perf_counter() - t0

    full, lean, bare_rate = (
        results["full_chain_with_data_per_s"],
        results["full_chain_without_data_per_s"],
        results["bare_signatures_per_s"],
    )
    print("| measurement | per second | x bare signatures |\n|---|---:|---:|")
    print(
        f"| full chain, with the dataset's files re-hashed | {full:,.1f} | {full / bare_rate:.3f} |"
    )
    print(f"| full chain, manifest only | {lean:,.1f} | {lean / bare_rate:.3f} |")
    print(f"| bare: {len(envelopes)} ECDSA P-256 signature checks | {bare_rate:,.1f} | 1.000 |")
    print(
        f"\n{args.models} models: {results['models_total_s']:.1f} s for full chains "
        f"({results['models_verified_ok']} ok), {results['models_bare_total_s']:.1f} s for bare signatures"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
