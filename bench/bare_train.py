"""What a user would run instead of the build: a bare training script.

Reads the Parquet files, holds out rows the same way, trains the same
HistGradientBoostingClassifier with the recipe's parameters, evaluates on
the holdout with scikit-learn's metrics and pickles the model. No manifest,
no hash checks, no sandbox, no provenance. The benchmark compares its time
with `bazel build` of the same recipe on the same data.

Usage: python bench/bare_train.py RECIPE DATA_DIR OUT.pkl
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from retrain.features import fit_preprocessor, label_vector
from retrain.recipe import load_recipe
from retrain.split import holdout_mask


def main(recipe_path: str, data_dir: str, out: str) -> None:
    recipe = load_recipe(recipe_path)
    table = pa.concat_tables([pq.read_table(p) for p in sorted(Path(data_dir).glob("*.parquet"))])
    mask = holdout_mask(table, recipe.split)
    train, test = table.filter(pa.array(~mask)), table.filter(pa.array(mask))
    pre = fit_preprocessor(train, recipe.features, mode="raw")
    x_train, y_train = pre.transform(train), label_vector(train, recipe.label)
    model = HistGradientBoostingClassifier(
        **dict(recipe.params), early_stopping=False, random_state=recipe.seed
    )
    model.fit(x_train, y_train)
    x_test, y_test = pre.transform(test), label_vector(test, recipe.label)
    p = model.predict_proba(x_test)[:, 1]
    metrics = {
        "auc": roc_auc_score(y_test, p),
        "accuracy": accuracy_score(y_test, p >= 0.5),
        "log_loss": log_loss(y_test, p),
        "brier": brier_score_loss(y_test, p),
    }
    with open(out, "wb") as f:
        pickle.dump(model, f)
    print(json.dumps({k: float(np.round(v, 6)) for k, v in metrics.items()}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
