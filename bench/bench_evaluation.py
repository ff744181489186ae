"""Bootstrap evaluation at scale, against computing the metrics once with scikit-learn.

Usage: python bench/bench_evaluation.py [--rows 1000000] [--resamples 1000] [--model MODEL.rtm]

Predicts a generated holdout of ROWS rows (``retrain datagen``, ids disjoint
from the training data) with the candidate model (default
bazel-bin/models/candidate/model.rtm), then times, in one run:

* retrain: every metric (AUC, accuracy, log loss, Brier, ECE) with a seeded
  percentile interval over RESAMPLES bootstrap resamples
  (``retrain.metrics.estimate_metrics``: resamples are count vectors, batches
  of them are matrices, no Python loop over rows);
* scikit-learn: the same five metrics once (roc_auc_score, accuracy_score,
  log_loss, brier_score_loss, and ECE in numpy), the cost of one resample
  done the obvious way.

Reports seconds, the ratio, and seconds per resample; writes
bench/results/evaluation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from retrain.datagen import GeneratorSpec, write_dataset
from retrain.features import label_vector
from retrain.metrics import ECE_BINS, estimate_metrics
from retrain.serialize import read_model

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache/retrain/bench"


def sklearn_once(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    bins = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    ece = sum(abs(y[bins == k].sum() - p[bins == k].sum()) for k in range(ECE_BINS)) / y.size
    return {
        "auc": roc_auc_score(y, p),
        "accuracy": accuracy_score(y, p > 0.5),
        "log_loss": log_loss(y, p),
        "brier": brier_score_loss(y, p),
        "ece": float(ece),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--model", type=Path, default=ROOT / "bazel-bin/models/candidate/model.rtm")
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "evaluation.json"
    )
    args = ap.parse_args()
    data = CACHE / f"holdout-{args.rows}"
    if not data.exists():
        write_dataset(GeneratorSpec(rows=args.rows, seed=99, id_offset=10_000_000), data, files=4)
    table = pq.read_table(data)
    model = read_model(str(args.model))
    y = label_vector(table, model.label).astype(np.int8)
    t0 = time.perf_counter()
    p = model.predict_proba(table)
    predict_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    once = sklearn_once(y, p)
    sklearn_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimates = estimate_metrics(y, p, resamples=args.resamples, seed=20261126, confidence=0.95)
    bootstrap_s = time.perf_counter() - t0
    for name, value in once.items():
        assert abs(estimates[name].value - value) < 1e-9, (name, estimates[name].value, value)

    results = {
        "rows": args.rows,
        "resamples": args.resamples,
        "predict_s": predict_s,
        "sklearn_once_s": sklearn_s,
        "bootstrap_s": bootstrap_s,
        "ratio": bootstrap_s / sklearn_s,
        "per_resample_ms": bootstrap_s / args.resamples * 1000,
        "estimates": {k: v.to_dict() for k, v in estimates.items()},
    }
    print("| measurement | seconds | ratio |\n|---|---:|---:|")
    print(f"| scikit-learn, the five metrics once ({args.rows:,} rows) | {sklearn_s:.2f} | 1 |")
    print(
        f"| retrain, five metrics x {args.resamples} bootstrap resamples, with intervals | {bootstrap_s:.1f} | {bootstrap_s / sklearn_s:.0f} |"
    )
    print(
        f"\n{bootstrap_s / args.resamples * 1000:.1f} ms per resample for all five metrics; (predicting the holdout took {predict_s:.1f} s)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
