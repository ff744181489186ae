"""Training recipes: the checked-in one loads; every malformed variant is refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retrain.errors import InputError, RecipeError
from retrain.recipe import FeatureSpec, LabelSpec, TrainingRecipe, load_recipe
from tests.unit.support import CANDIDATE_RECIPE

Raw = dict[str, Any]


def _raw() -> Raw:
    raw = json.loads(CANDIDATE_RECIPE.read_text())
    # A recipe may also hold out part of its own dataset; the cases below break that part.
    raw["split"] = {
        "method": "key_hash",
        "key": "customer_id",
        "holdout_fraction": 0.2,
        "salt": 1126,
    }
    return raw


def test_candidate_recipe_loads() -> None:
    recipe = load_recipe(CANDIDATE_RECIPE)

    assert recipe.name == "credit-risk-default"
    assert recipe.estimator == "hist_gradient_boosting"
    assert recipe.label == LabelSpec("default_90d", positive=1, negative=0)
    assert recipe.split is None  # the holdout is a dataset of its own
    assert len(recipe.features) == 11
    assert FeatureSpec("region", "categorical") in recipe.features
    assert recipe.seed == 1234


def test_recipe_round_trips_through_to_dict() -> None:
    recipe = load_recipe(CANDIDATE_RECIPE)

    assert TrainingRecipe.from_dict(recipe.to_dict(), where="x") == recipe


def test_recipe_params_are_read_only() -> None:
    recipe = load_recipe(CANDIDATE_RECIPE)

    with pytest.raises(TypeError):
        recipe.params["max_iter"] = 1  # type: ignore[index]


def _set(path: str, value: object) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _append_feature(name: str, kind: str = "numeric") -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        raw["features"].append({"name": name, "kind": kind})

    return mutate


MALFORMED: dict[str, tuple[Callable[[Raw], None], str]] = {
    "unknown_top_level_key": (
        _set("learning_rate", 0.1),
        "unknown key 'learning_rate' in 'recipe'",
    ),
    "unknown_estimator_type": (_set("estimator.type", "random_forest"), "estimator.type"),
    "unknown_param": (
        _set("estimator.params.n_estimators", 100),
        "estimator.params.n_estimators is not a parameter of hist_gradient_boosting",
    ),
    "param_below_range": (_set("estimator.params.max_iter", 0), "estimator.params.max_iter"),
    "param_above_range": (
        _set("estimator.params.learning_rate", 11.0),
        "estimator.params.learning_rate",
    ),
    "float_where_int_expected": (
        _set("estimator.params.max_iter", 20.5),
        "estimator.params.max_iter",
    ),
    "bool_where_int_expected": (
        _set("estimator.params.max_iter", True),
        "estimator.params.max_iter",
    ),
    "bool_seed": (_set("seed", True), "'seed'"),
    "bool_salt": (_set("split.salt", False), "'split.salt'"),
    "duplicate_feature": (_append_feature("age"), "feature 'age' is listed twice"),
    "feature_is_label": (
        _append_feature("default_90d"),
        "feature 'default_90d' is the label column",
    ),
    "unknown_feature_kind": (_set("features.0.kind", "ordinal"), "features[0].kind"),
    "unknown_feature_key": (_set("features.0.weight", 2), "unknown key 'weight' in 'features[0]'"),
    "split_fraction_one": (_set("split.holdout_fraction", 1.0), "split.holdout_fraction"),
    "split_fraction_zero": (_set("split.holdout_fraction", 0), "split.holdout_fraction"),
    "split_fraction_string": (_set("split.holdout_fraction", "0.2"), "split.holdout_fraction"),
    "split_method": (_set("split.method", "random"), "split.method"),
    "split_key_is_feature": (_set("split.key", "age"), "split.key 'age' must not be a feature"),
    "recipe_version_2": (_set("recipe_version", 2), "unknown recipe version: expected 1, found 2"),
    "recipe_version_bool": (_set("recipe_version", True), "unknown recipe version"),
    "label_classes_equal": (
        _set("label.positive", 0),
        "label.positive and label.negative must differ",
    ),
    "missing_seed": (lambda raw: raw.pop("seed"), "'recipe' lacks 'seed'"),
    "bad_name": (_set("name", "has space"), "name must match"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_load_recipe_refuses_malformed_recipe_naming_the_key(tmp_path: Path, case: str) -> None:
    mutate, names = MALFORMED[case]
    raw = copy.deepcopy(_raw())
    mutate(raw)
    path = tmp_path / "bad.recipe.json"
    path.write_text(json.dumps(raw))

    with pytest.raises(RecipeError) as info:
        load_recipe(path)

    assert info.value.exit_code == 2
    assert str(path) in info.value.diagnostics()
    assert names in info.value.diagnostics()


def test_load_recipe_refuses_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.recipe.json"
    path.write_text('{"recipe_version": 1,,}')

    with pytest.raises(RecipeError) as info:
        load_recipe(path)

    assert info.value.diagnostics().startswith(f"{path}: malformed JSON at line 1 column 22")


def test_load_recipe_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="recipe not found"):
        load_recipe(tmp_path / "absent.json")


def test_out_of_range_param_reports_range_and_value(tmp_path: Path) -> None:
    raw = _raw()
    raw["estimator"]["params"]["max_bins"] = 256
    path = tmp_path / "bad.recipe.json"
    path.write_text(json.dumps(raw))

    with pytest.raises(RecipeError) as info:
        load_recipe(path)

    assert "estimator.params.max_bins: expected an integer in [2, 255], found 256" in (
        info.value.diagnostics()
    )
