"""Helpers shared by the unit tests (imported by conftest.py and test modules)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.datagen import GeneratorSpec
from retrain.manifest import DataManifest
from retrain.recipe import TrainingRecipe

REPO = Path(__file__).resolve().parents[2]
CANDIDATE_RECIPE = REPO / "models" / "candidate.recipe.json"

DATASET_SPEC = GeneratorSpec(rows=3000, seed=20261126)
DATASET_FILES = 3
TABLE_SPEC = GeneratorSpec(rows=5000, seed=11)
LINEAGE = {"dataset_digest": "sha256:" + "ab" * 32, "recipe": "candidate.recipe.json"}


@dataclass(frozen=True)
class Dataset:
    """A generated dataset directory, its manifest, and the manifest written as JSON."""

    root: Path
    manifest: DataManifest
    manifest_path: Path

    def file(self, index: int) -> Path:
        return self.root / self.manifest.entries[index].path

    def manifest_dict(self) -> dict[str, Any]:
        return json.loads(self.manifest.to_json_bytes())


def recipe_with_estimator(
    base: TrainingRecipe, estimator: str, params: dict[str, Any]
) -> TrainingRecipe:
    raw = base.to_dict()
    raw["estimator"] = {"type": estimator, "params": params}
    return TrainingRecipe.from_dict(raw, where="test recipe")
