"""Shared fixtures for the unit tests: one generated dataset and small tables.

Generating and hashing data is the slow part of these tests, so the pristine
dataset is written once per session; every test that tampers with files gets
its own copy under its tmp_path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from retrain.datagen import generate_table, write_dataset
from retrain.manifest import create_manifest
from retrain.model import Model
from retrain.recipe import TrainingRecipe, load_recipe
from retrain.train import train_model
from tests.unit.support import (
    CANDIDATE_RECIPE,
    DATASET_FILES,
    DATASET_SPEC,
    LINEAGE,
    TABLE_SPEC,
    Dataset,
    recipe_with_estimator,
)


@pytest.fixture(scope="session")
def pristine_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """Written once per session; never modify it (use ``dataset``)."""
    base = tmp_path_factory.mktemp("pristine")
    root = base / "data"
    write_dataset(DATASET_SPEC, root, files=DATASET_FILES)
    manifest = create_manifest(root, name="unit-test-data")
    manifest_path = base / "unit-test-data.json"
    manifest_path.write_bytes(manifest.to_json_bytes())
    return Dataset(root, manifest, manifest_path)


@pytest.fixture
def dataset(pristine_dataset: Dataset, tmp_path: Path) -> Dataset:
    """A private copy of the session dataset and its manifest, free to tamper with."""
    root = tmp_path / "data"
    shutil.copytree(pristine_dataset.root, root)
    manifest_path = tmp_path / "manifest.json"
    shutil.copyfile(pristine_dataset.manifest_path, manifest_path)
    return Dataset(root, pristine_dataset.manifest, manifest_path)


@pytest.fixture(scope="session")
def small_table() -> pa.Table:
    """5000 generated rows, enough for both classes on both sides of the split."""
    return generate_table(TABLE_SPEC)


@pytest.fixture(scope="session")
def candidate_recipe() -> TrainingRecipe:
    """The repository's recipe, with a key-hash split so one table serves train and holdout."""
    import dataclasses

    from retrain.recipe import SplitSpec

    recipe = load_recipe(CANDIDATE_RECIPE)
    return dataclasses.replace(
        recipe, split=SplitSpec(key="customer_id", holdout_fraction=0.2, salt=1126)
    )


@pytest.fixture(scope="session")
def hgb_recipe(candidate_recipe: TrainingRecipe) -> TrainingRecipe:
    """The candidate recipe with few boosting iterations, to stay fast."""
    params = dict(candidate_recipe.params, max_iter=10)
    return recipe_with_estimator(candidate_recipe, "hist_gradient_boosting", params)


@pytest.fixture(scope="session")
def lr_recipe(candidate_recipe: TrainingRecipe) -> TrainingRecipe:
    return recipe_with_estimator(
        candidate_recipe, "logistic_regression", {"C": 1.0, "max_iter": 200}
    )


@pytest.fixture(scope="session")
def hgb_model(hgb_recipe: TrainingRecipe, small_table: pa.Table) -> Model:
    model, _ = train_model(hgb_recipe, small_table, lineage=LINEAGE)
    return model


@pytest.fixture(scope="session")
def lr_model(lr_recipe: TrainingRecipe, small_table: pa.Table) -> Model:
    model, _ = train_model(lr_recipe, small_table, lineage=LINEAGE)
    return model
