"""The on-disk formats against their JSON Schemas (docs/schemas/), and the docs against the code.

Real files (the checked-in manifests, recipes and trust policy) and files the
code writes (a model header, provenance statements, attestation predicates,
trust policies and the signed files around them, DSSE envelopes, promotion
entries and registry checkpoints, each version retrain still reads) must
validate; damaged variants must not, and where the loader is the authority it
must refuse them too, each with one error line. The Python snippets in docs/*.md are executed and
compared with the library, so the documented algorithms cannot drift from the
implemented ones. Everything is built here: no test needs a prior Bazel build.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from retrain.attest.envelope import read_envelopes, serialize_envelopes
from retrain.attest.keys import KeyPairPaths, generate_key_pair, load_signer
from retrain.attest.policy import TrustPolicy
from retrain.attest.predicates import (
    DATASET_V1,
    EVALUATION_V2,
    DatasetPredicate,
    EvaluationPredicate,
)
from retrain.attest.promotion import (
    CHECKPOINT_V1,
    CHECKPOINT_V2,
    PROMOTION_V1,
    PROMOTION_V2,
    Checkpoint,
    PolicyRef,
    PromotionPredicate,
    StageState,
)
from retrain.attest.provenance import (
    BuildProvenance,
    ResourceDescriptor,
    digest_of_description,
)
from retrain.attest.sign import BUILD_SUBJECTS, LINK_FILES, sign_chain, sign_statement
from retrain.attest.statement import Statement
from retrain.attest.trust import (
    PolicyDocument,
    load_policy,
    read_policy_file,
    write_policy_file,
)
from retrain.datagen import GeneratorSpec, generate_table
from retrain.digest import canonical_json, sha256_bytes, sha256_file, tree_digest
from retrain.errors import PolicyError, PolicyUntrusted, RetrainError
from retrain.gates import load_gate_spec
from retrain.hermetic import ACTION_ENV, blas_report, expected_blas_coretype
from retrain.manifest import DataManifest, create_manifest, load_manifest
from retrain.model import Model
from retrain.quality import load_quality_spec, profile_table, run_quality_checks
from retrain.recipe import SplitSpec, TrainingRecipe, load_recipe
from retrain.registry import apply_entry
from retrain.serialize import model_to_bytes, read_model_header
from retrain.split import holdout_mask
from retrain.train import train_model
from retrain.validation import validate_candidate
from tests.policy_support import signer_of, write_policy

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SCHEMAS = DOCS / "schemas"
MANIFESTS = sorted((REPO / "data_manifests").glob("*.json"))
RECIPES = sorted((REPO / "models").glob("*.recipe.json"))
CANDIDATE_RECIPE = REPO / "models" / "candidate.recipe.json"
POLICY = REPO / "attestations" / "policy.json"

Json = dict[str, Any]
Mutation = Callable[[Json], None]


@cache
def _schema_registry() -> Registry:
    """Every schema under its $id, so that one may refer to another (a policy file to its policy)."""
    schemas = [_read_json(path) for path in sorted(SCHEMAS.glob("*.schema.json"))]
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=_schema_registry())


def _errors(schema_name: str, instance: object) -> list[str]:
    found = _validator(schema_name).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def _mutated(document: Json, mutate: Mutation) -> Json:
    changed = copy.deepcopy(document)
    mutate(changed)
    return changed


@cache
def _doc_namespace(doc: str) -> dict[str, Any]:
    """Every ```python block of a doc, executed in order in one namespace."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert blocks, f"no python block in docs/{doc}"
    namespace: dict[str, Any] = {"__name__": f"docs_{doc}"}
    for block in blocks:
        exec(compile(block, f"docs/{doc}", "exec"), namespace)
    return namespace


def _read_json(path: Path) -> Json:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# The schemas themselves


SCHEMA_NAMES = [
    "manifest.v1.schema.json",
    "recipe.v1.schema.json",
    "model-header.v1.schema.json",
    "provenance.v1.schema.json",
    "dataset-predicate.v1.schema.json",
    "evaluation-predicate.v2.schema.json",
    "metrics.v2.schema.json",
    "policy.v1.schema.json",
    "policy.v2.schema.json",
    "policy-file.v2.schema.json",
    "dsse-envelope.schema.json",
    "promotion-predicate.v1.schema.json",
    "promotion-predicate.v2.schema.json",
    "registry-checkpoint.v1.schema.json",
    "registry-checkpoint.v2.schema.json",
]


def test_every_schema_file_is_checked() -> None:
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_a_valid_draft_2020_12_schema_with_a_retrain_id(name: str) -> None:
    schema = _read_json(SCHEMAS / name)

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://retrain.dev/schemas/{name}"


# ---------------------------------------------------------------------------
# Data manifests


@pytest.fixture(scope="module")
def default_manifest() -> Json:
    return _read_json(REPO / "data_manifests" / "default.json")


def test_there_are_checked_in_manifests_and_recipes_to_validate() -> None:
    assert MANIFESTS
    assert RECIPES


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_checked_in_manifest_matches_the_manifest_schema(path: Path) -> None:
    assert _errors("manifest.v1.schema.json", _read_json(path)) == []


def test_manifest_written_by_create_manifest_matches_the_manifest_schema(tmp_path: Path) -> None:
    from retrain.datagen import read_origin, write_dataset

    root = tmp_path / "data"
    write_dataset(GeneratorSpec(rows=300, seed=7), root, files=2)
    manifest = create_manifest(root, name="small", origin=read_origin(root))

    written = json.loads(manifest.to_json_bytes())

    assert "origin" in written
    assert _errors("manifest.v1.schema.json", written) == []


def _set_file(key: str, value: object) -> Mutation:
    def mutate(m: Json) -> None:
        m["files"][0][key] = value

    return mutate


def _set(key: str, value: object) -> Mutation:
    def mutate(m: Json) -> None:
        m[key] = value

    return mutate


MANIFEST_REFUSALS: list[tuple[str, Mutation]] = [
    ("uppercase-sha256", lambda m: m["files"][0].update(sha256=m["files"][0]["sha256"].upper())),
    ("short-sha256", lambda m: m["files"][0].update(sha256=m["files"][0]["sha256"][:63])),
    (
        "sha256-with-trailing-newline",
        lambda m: m["files"][0].update(sha256=m["files"][0]["sha256"] + "\n"),
    ),
    ("unknown-top-level-key", _set("created_at", "2026-11-26T17:00:00Z")),
    ("unknown-file-entry-key", _set_file("mtime", 1764176400)),
    ("path-with-dotdot", _set_file("path", "../escape.parquet")),
    ("path-with-inner-dotdot", _set_file("path", "a/../../b.parquet")),
    ("absolute-path", _set_file("path", "/etc/passwd")),
    ("drive-letter-path", _set_file("path", "C:part.parquet")),
    ("backslash-path", _set_file("path", "sub\\part.parquet")),
    ("nul-in-path", _set_file("path", "part\u0000.parquet")),
    ("path-with-empty-segment", _set_file("path", "sub//part.parquet")),
    ("path-with-dot-segment", _set_file("path", "./part.parquet")),
    ("path-with-trailing-slash", _set_file("path", "sub/")),
    ("empty-path", _set_file("path", "")),
    ("negative-size", _set_file("size", -1)),
    ("size-as-string", _set_file("size", "201694")),
    ("rows-as-bool", _set_file("rows", True)),
    ("entry-without-rows", lambda m: m["files"][0].pop("rows")),
    ("no-files", _set("files", [])),
    ("unknown-manifest-version", _set("manifest_version", 2)),
    ("format-not-parquet", _set("format", "csv")),
    ("name-starting-with-dash", _set("name", "-default")),
    ("name-with-slash", _set("name", "a/b")),
    ("name-with-trailing-newline", _set("name", "default\n")),
    ("dataset-digest-without-prefix", lambda m: m.update(dataset_digest=m["dataset_digest"][7:])),
    ("dataset-digest-other-algorithm", lambda m: m.update(dataset_digest="md5:" + "0" * 32)),
    ("schema-field-with-extra-key", lambda m: m["schema"]["fields"][0].update(metadata="x")),
    (
        "schema-field-nullable-as-string",
        lambda m: m["schema"]["fields"][0].update(nullable="false"),
    ),
    ("schema-without-fingerprint", lambda m: m["schema"].pop("fingerprint")),
    ("missing-dataset-digest", lambda m: m.pop("dataset_digest")),
    ("origin-not-an-object", _set("origin", "retrain.datagen")),
]


@pytest.mark.parametrize(
    ("case", "mutate"), MANIFEST_REFUSALS, ids=[c for c, _ in MANIFEST_REFUSALS]
)
def test_manifest_schema_refuses_damaged_manifest(
    default_manifest: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("manifest.v1.schema.json", _mutated(default_manifest, mutate)) != []


@pytest.mark.parametrize(
    ("case", "mutate"),
    [pytest.param(case, mutate, id=case) for case, mutate in MANIFEST_REFUSALS],
)
def test_manifest_loader_refuses_what_the_schema_refuses(
    default_manifest: Json, case: str, mutate: Mutation
) -> None:
    with pytest.raises(RetrainError):
        DataManifest.from_dict(_mutated(default_manifest, mutate), where="manifest.json")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_documented_schema_fingerprint_reproduces_checked_in_manifest(path: Path) -> None:
    schema_fingerprint_of = _doc_namespace("manifest.md")["schema_fingerprint_of"]
    raw = _read_json(path)

    assert schema_fingerprint_of(raw) == raw["schema"]["fingerprint"]
    assert schema_fingerprint_of(raw) == load_manifest(path).schema_fingerprint


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_documented_dataset_digest_reproduces_checked_in_manifest(path: Path) -> None:
    dataset_digest_of = _doc_namespace("manifest.md")["dataset_digest_of"]
    raw = _read_json(path)

    assert dataset_digest_of(raw) == raw["dataset_digest"]
    assert dataset_digest_of(raw) == load_manifest(path).dataset_digest


def test_documented_dataset_digest_does_not_depend_on_file_order(default_manifest: Json) -> None:
    dataset_digest_of = _doc_namespace("manifest.md")["dataset_digest_of"]
    reordered = _mutated(default_manifest, lambda m: m["files"].reverse())

    assert dataset_digest_of(reordered) == default_manifest["dataset_digest"]


# ---------------------------------------------------------------------------
# Training recipes


# The split a recipe declares when its model has no pinned holdout (docs/recipe.md).
KEY_HASH_SPLIT = {"method": "key_hash", "key": "customer_id", "holdout_fraction": 0.2, "salt": 1126}


@pytest.fixture(scope="module")
def candidate_recipe_json() -> Json:
    """The candidate recipe with a split, so that every part of the schema is exercised."""
    raw = _read_json(CANDIDATE_RECIPE)
    raw.setdefault("split", dict(KEY_HASH_SPLIT))
    return raw


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_checked_in_recipe_matches_the_recipe_schema(path: Path) -> None:
    assert _errors("recipe.v1.schema.json", _read_json(path)) == []


def test_recipe_with_a_split_matches_the_recipe_schema_and_loads(
    candidate_recipe_json: Json,
) -> None:
    assert _errors("recipe.v1.schema.json", candidate_recipe_json) == []
    recipe = TrainingRecipe.from_dict(candidate_recipe_json, where="recipe.json")
    assert recipe.to_dict()["split"] == KEY_HASH_SPLIT


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        (
            "hist_gradient_boosting",
            {"max_iter": 10, "max_depth": 6, "max_bins": 255, "max_features": 0.5},
        ),
        ("logistic_regression", {"C": 0.5, "max_iter": 200, "tol": 1e-6}),
    ],
)
def test_normalized_recipe_of_each_estimator_matches_the_recipe_schema(
    estimator: str, params: Json
) -> None:
    recipe = dataclasses.replace(load_recipe(CANDIDATE_RECIPE), estimator=estimator, params=params)
    raw = recipe.to_dict()

    TrainingRecipe.from_dict(raw, where="normalized recipe")
    assert _errors("recipe.v1.schema.json", raw) == []


def _set_param(key: str, value: object) -> Mutation:
    def mutate(r: Json) -> None:
        r["estimator"]["params"][key] = value

    return mutate


RECIPE_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-estimator", lambda r: r["estimator"].update(type="random_forest")),
    ("parameter-of-another-estimator", _set_param("C", 1.0)),
    ("misspelled-parameter", _set_param("learning_rat", 0.1)),
    ("integer-parameter-with-fraction", _set_param("max_iter", 5.5)),
    ("parameter-as-string", _set_param("learning_rate", "0.05")),
    ("parameter-as-bool", _set_param("max_iter", True)),
    ("parameter-above-range", _set_param("max_bins", 256)),
    ("parameter-below-range", _set_param("learning_rate", 0.0)),
    ("unknown-top-level-key", lambda r: r.update(n_jobs=4)),
    ("unknown-estimator-key", lambda r: r["estimator"].update(n_jobs=4)),
    ("unknown-label-key", lambda r: r["label"].update(threshold=0.5)),
    ("unknown-feature-kind", lambda r: r["features"][0].update(kind="ordinal")),
    ("feature-without-kind", lambda r: r["features"][0].pop("kind")),
    ("empty-feature-name", lambda r: r["features"][0].update(name="")),
    ("no-features", lambda r: r.update(features=[])),
    ("unknown-split-method", lambda r: r["split"].update(method="random")),
    ("holdout-fraction-one", lambda r: r["split"].update(holdout_fraction=1.0)),
    ("holdout-fraction-zero", lambda r: r["split"].update(holdout_fraction=0)),
    ("negative-salt", lambda r: r["split"].update(salt=-1)),
    ("salt-above-64-bits", lambda r: r["split"].update(salt=2**64)),
    ("seed-above-32-bits", lambda r: r.update(seed=2**32)),
    ("missing-seed", lambda r: r.pop("seed")),
    ("unknown-recipe-version", lambda r: r.update(recipe_version=2)),
    ("name-starting-with-digit", lambda r: r.update(name="1model")),
    ("label-value-as-string", lambda r: r["label"].update(positive="1")),
]


@pytest.mark.parametrize(("case", "mutate"), RECIPE_REFUSALS, ids=[c for c, _ in RECIPE_REFUSALS])
def test_recipe_schema_refuses_invalid_recipe(
    candidate_recipe_json: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("recipe.v1.schema.json", _mutated(candidate_recipe_json, mutate)) != []


@pytest.mark.parametrize(("case", "mutate"), RECIPE_REFUSALS, ids=[c for c, _ in RECIPE_REFUSALS])
def test_recipe_loader_refuses_what_the_schema_refuses(
    candidate_recipe_json: Json, case: str, mutate: Mutation
) -> None:
    with pytest.raises(RetrainError):
        TrainingRecipe.from_dict(_mutated(candidate_recipe_json, mutate), where="recipe.json")


def test_documented_holdout_split_matches_holdout_mask() -> None:
    in_holdout = _doc_namespace("recipe.md")["in_holdout"]
    keys = [*range(-50, 2000), -(2**63), 2**63 - 1, 123_456_789_012]
    table = pa.table({"customer_id": pa.array(keys, type=pa.int64())})
    for salt, fraction in ((1126, 0.2), (0, 0.5), (2**64 - 1, 0.05)):
        split = SplitSpec(key="customer_id", holdout_fraction=fraction, salt=salt)

        expected = holdout_mask(table, split)

        assert [in_holdout(k, salt, fraction) for k in keys] == expected.tolist()


# ---------------------------------------------------------------------------
# Model file header


@pytest.fixture(scope="module")
def tiny_table() -> pa.Table:
    return generate_table(GeneratorSpec(rows=3000, seed=1))


@pytest.fixture(scope="module")
def tiny_model(tiny_table: pa.Table) -> Model:
    recipe = dataclasses.replace(load_recipe(CANDIDATE_RECIPE), params={"max_iter": 5})
    model, _ = train_model(recipe, tiny_table, lineage={})
    return model


@pytest.fixture(scope="module")
def tiny_model_bytes(tiny_model: Model) -> bytes:
    return model_to_bytes(tiny_model)


@pytest.fixture(scope="module")
def tiny_header(tiny_model_bytes: bytes) -> Json:
    header = read_model_header(tiny_model_bytes)
    del header["_data_start"]  # added by read_model_header, not part of the file
    return header


BUILD_LINEAGE = {
    "recipe": {"name": "credit-risk-default", "sha256": "72" * 32},
    "dataset": {"name": "default", "digest": "sha256:" + "ba" * 32},
    "code_digest": "sha256:" + "86" * 32,
    "lock_sha256": "11" * 32,
    "retrain_version": "0.1.0",
}


def test_model_header_matches_the_model_header_schema(tiny_header: Json) -> None:
    assert tiny_header["metadata"]["estimator"] == "hist_gradient_boosting"
    assert _errors("model-header.v1.schema.json", tiny_header) == []


def test_model_header_with_the_lineage_a_build_writes_matches_the_schema(tiny_model: Model) -> None:
    model = dataclasses.replace(tiny_model, lineage=BUILD_LINEAGE)
    header = read_model_header(model_to_bytes(model))
    del header["_data_start"]

    assert _errors("model-header.v1.schema.json", header) == []


def test_logistic_regression_model_header_matches_the_model_header_schema(
    tiny_table: pa.Table,
) -> None:
    recipe = dataclasses.replace(
        load_recipe(CANDIDATE_RECIPE), estimator="logistic_regression", params={"max_iter": 100}
    )
    model, _ = train_model(recipe, tiny_table, lineage=BUILD_LINEAGE)
    header = read_model_header(model_to_bytes(model))
    del header["_data_start"]

    assert header["metadata"]["preprocessor"]["mode"] == "standardized"
    assert _errors("model-header.v1.schema.json", header) == []


def _array(header: Json, name: str) -> Json:
    return next(a for a in header["arrays"] if a["name"] == name)


HEADER_REFUSALS: list[tuple[str, Mutation]] = [
    ("data-start-key-left-in", lambda h: h.update(_data_start=2880)),
    ("unknown-format", lambda h: h.update(format="retrain.model/v2")),
    ("unknown-top-level-key", lambda h: h.update(created="2026-11-26")),
    ("unknown-metadata-key", lambda h: h["metadata"].update(pickle="gASVAAAAAAAAAAA=")),
    ("unknown-estimator", lambda h: h["metadata"].update(estimator="random_forest")),
    ("int64-node-values", lambda h: _array(h, "node_value").update(dtype="<i8")),
    ("unsupported-dtype", lambda h: _array(h, "node_left").update(dtype="O")),
    ("missing-array", lambda h: h["arrays"].pop()),
    ("extra-array", lambda h: h["arrays"].append(dict(_array(h, "node_value"), name="node_extra"))),
    ("arrays-not-sorted-by-name", lambda h: h["arrays"].reverse()),
    ("offset-not-64-aligned", lambda h: _array(h, "node_feature").update(offset=65)),
    ("negative-offset", lambda h: _array(h, "baseline").update(offset=-64)),
    ("two-dimensional-baseline", lambda h: _array(h, "baseline").update(shape=[1, 1])),
    ("array-entry-with-extra-key", lambda h: _array(h, "baseline").update(order="F")),
    (
        "trees-with-standardized-mode",
        lambda h: h["metadata"]["preprocessor"].update(mode="standardized"),
    ),
    ("label-without-negative", lambda h: h["metadata"]["label"].pop("negative")),
    ("zero-scale", lambda h: h["metadata"]["preprocessor"]["numeric"][0].update(scale=0.0)),
    (
        "unknown-feature-kind",
        lambda h: h["metadata"]["preprocessor"]["features"][0].update(kind="text"),
    ),
    (
        "lineage-with-bad-dataset-digest",
        lambda h: h["metadata"].update(lineage={"dataset": {"name": "d", "digest": "HEAD"}}),
    ),
]


@pytest.mark.parametrize(("case", "mutate"), HEADER_REFUSALS, ids=[c for c, _ in HEADER_REFUSALS])
def test_model_header_schema_refuses_damaged_header(
    tiny_header: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("model-header.v1.schema.json", _mutated(tiny_header, mutate)) != []


def test_documented_reader_returns_the_header_and_arrays_of_a_model_file(
    tiny_model: Model, tiny_model_bytes: bytes, tiny_header: Json
) -> None:
    read_rtm = _doc_namespace("model-format.md")["read_rtm"]

    header, arrays = read_rtm(tiny_model_bytes)

    assert header == tiny_header
    assert sorted(arrays) == sorted(tiny_model.arrays)
    for name, expected in tiny_model.arrays.items():
        assert arrays[name].dtype == expected.dtype, name
        assert np.array_equal(arrays[name], expected), name


def test_documented_tree_walk_reproduces_model_predictions_bit_for_bit(
    tiny_model: Model, tiny_model_bytes: bytes, tiny_table: pa.Table
) -> None:
    namespace = _doc_namespace("model-format.md")
    _, arrays = namespace["read_rtm"](tiny_model_bytes)
    x = tiny_model.design_matrix(tiny_table.slice(0, 400))
    assert np.isnan(x).any()  # the missing-value branch is exercised

    assert np.array_equal(namespace["predict_trees"](arrays, x), tiny_model.predict_proba_matrix(x))


# ---------------------------------------------------------------------------
# Build provenance


def _build(statement: Json) -> Json:
    return statement["predicate"]["buildDefinition"]  # type: ignore[no-any-return]


def _run(statement: Json) -> Json:
    return statement["predicate"]["runDetails"]  # type: ignore[no-any-return]


def _deps(statement: Json) -> list[Json]:
    return _build(statement)["resolvedDependencies"]  # type: ignore[no-any-return]


def _dep(statement: Json, name: str) -> Json:
    return next(d for d in _deps(statement) if d["name"] == name)


def _lock(statement: Json) -> Json:
    return next(d for d in _deps(statement) if d.get("annotations", {}).get("role") == "lock")


def _env(statement: Json) -> Json:
    return _build(statement)["internalParameters"]["actionEnvironment"]  # type: ignore[no-any-return]


def _blas(statement: Json) -> list[Json]:
    return _build(statement)["internalParameters"]["blas"]  # type: ignore[no-any-return]


def _blas_rows() -> list[Json]:
    """What the training action records, without leaving this process pinned to one thread."""
    import scipy.linalg  # noqa: F401  # load every pool blas_report pins, so all are restored
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=None):
        return blas_report()


# The build's outputs besides the model: with it, what a build link names (BUILD_SUBJECTS).
BUILD_OUTPUTS = {
    "gates.txt": b"PASSED: 12 of 12 gates passed\n",
    "metrics.json": b"{}\n",
    "report.html": b"<!doctype html><title>validation report</title>\n",
    "train_report.json": json.dumps({"training": {"rows_total": 3000}}).encode(),
}


@pytest.fixture(scope="module")
def built_statement(tiny_model_bytes: bytes) -> Json:
    """A statement assembled from real inputs the way cmd_provenance assembles it."""
    manifest_path = "data_manifests/default.json"
    manifest = load_manifest(REPO / manifest_path)
    sources = sorted(
        [p.relative_to(REPO).as_posix() for p in (REPO / "retrain").rglob("*.py")]
        + [manifest_path, "models/candidate.recipe.json", "models/BUILD.bazel", "WORKSPACE"]
    )
    source_files = [(s, sha256_file(REPO / s).sha256) for s in sources]
    outputs = {"model.rtm": tiny_model_bytes, **BUILD_OUTPUTS}
    assert sorted(outputs) == sorted(BUILD_SUBJECTS)
    subjects = tuple(
        ResourceDescriptor(name=name, digest={"sha256": sha256_bytes(data)})
        for name, data in sorted(outputs.items())
    )
    site_digest = "sha256:" + "7a" * 32
    machine = platform.machine().lower()
    platform_desc = {"system": platform.system().lower(), "machine": machine, "libc": "glibc 2.36"}
    bazel = {"version": "4.2.3+ds-9 (debian bazel-bootstrap)"}
    deps = [
        ResourceDescriptor(
            name="source",
            digest={
                "sha256": tree_digest(source_files).removeprefix("sha256:"),
                "gitCommit": "ae" * 20,
            },
            annotations={"files": len(source_files), "gitTreeState": "clean"},
        ),
        *(
            ResourceDescriptor(name=path, digest={"sha256": sha})
            for path, sha in sorted(source_files)
        ),
        ResourceDescriptor(
            name="requirements/runtime.lock",
            digest={"sha256": sha256_file(REPO / "requirements/runtime.lock").sha256},
            annotations={
                "role": "lock",
                "sitePackagesDigest": site_digest,
                "distributions": ["numpy==2.4.6", "scikit-learn==1.9.1"],
            },
        ),
        ResourceDescriptor(
            name=f"dataset/{manifest.name}",
            uri=manifest_path,
            digest={"sha256": manifest.dataset_digest.removeprefix("sha256:")},
            annotations={
                "manifestSha256": sha256_file(REPO / manifest_path).sha256,
                "rows": manifest.rows,
                "files": len(manifest.entries),
                "bytes": manifest.total_bytes,
                "schemaFingerprint": manifest.schema_fingerprint,
                "location": {"root": "data/default"},
            },
        ),
        ResourceDescriptor(
            name="toolchain/python",
            digest={"sha256": sha256_file(os.path.realpath(sys.executable)).sha256},
            annotations={
                "implementation": sys.implementation.name,
                "version": platform.python_version(),
                "libpythonSha256": None,
                "stdlibDigest": "sha256:" + "f2" * 32,
            },
        ),
        ResourceDescriptor(
            name="toolchain/bazel",
            digest={"sha256": digest_of_description(bazel)},
            annotations=bazel,
        ),
        ResourceDescriptor(
            name="toolchain/platform",
            digest={"sha256": digest_of_description(platform_desc)},
            annotations=platform_desc,
        ),
    ]
    provenance = BuildProvenance(
        subjects=subjects,
        external_parameters={
            "target": "//models:candidate",
            "recipe": {
                "path": "models/candidate.recipe.json",
                "sha256": sha256_file(CANDIDATE_RECIPE).sha256,
            },
            "datasets": [manifest_path],
        },
        internal_parameters={
            "actionEnvironment": dict(
                sorted({**ACTION_ENV, "OPENBLAS_CORETYPE": expected_blas_coretype(machine)}.items())
            ),
            "blas": _blas_rows(),
            "sitePackagesDigest": site_digest,
        },
        resolved_dependencies=tuple(deps),
        builder_version={"retrain": "0.1.0", "bazel": bazel["version"]},
    )
    return provenance.to_statement()


def test_provenance_statement_matches_the_provenance_schema(built_statement: Json) -> None:
    assert _errors("provenance.v1.schema.json", built_statement) == []


def _write(path: Path, data: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path.as_posix()


@pytest.mark.parametrize(
    "status",
    [
        "STABLE_RETRAIN_GIT_COMMIT " + "ae" * 20 + "\nSTABLE_RETRAIN_GIT_TREE_STATE dirty\n"
        "STABLE_RETRAIN_BAZEL_VERSION 4.2.3\nSTABLE_RETRAIN_BAZEL_SHA256 " + "8e" * 32 + "\n",
        "STABLE_RETRAIN_GIT_COMMIT \nSTABLE_RETRAIN_GIT_TREE_STATE unknown\n"
        "STABLE_RETRAIN_BAZEL_VERSION unknown\n",
    ],
    ids=["git-checkout", "no-git-no-bazel-binary"],
)
def test_statement_written_by_the_provenance_action_matches_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_bytes: bytes, status: str
) -> None:
    from retrain._internal.actions import cmd_provenance

    monkeypatch.chdir(tmp_path)
    out = Path("bazel-out/bin/models/candidate")
    manifest_bytes = (REPO / "data_manifests/default.json").read_bytes()
    manifest = load_manifest(REPO / "data_manifests/default.json")
    verified = {
        "schema": "https://retrain.dev/dataset-verification/v1",
        "name": manifest.name,
        "manifest": {"path": "data_manifests/default.json", "sha256": sha256_bytes(manifest_bytes)},
        "dataset_digest": manifest.dataset_digest,
        "schema_fingerprint": manifest.schema_fingerprint,
        "files": len(manifest.entries),
        "rows": manifest.rows,
        "bytes": manifest.total_bytes,
        "location": {"root": "data/default"},
    }
    env = {
        "lock": {"sha256": "11" * 32},
        "distributions": [{"name": "numpy", "version": "2.4.6"}],
        "site_packages_digest": "sha256:" + "7a" * 32,
        "site_packages_files": 1,
    }
    toolchain = {
        "python": {
            "implementation": "cpython",
            "version": "3.11.7",
            "executable_sha256": "f1" * 32,
            "libpython_sha256": "6f" * 32,
            "stdlib_digest": "sha256:" + "f2" * 32,
            "stdlib_files": 1,
        },
        "platform": {"system": "linux", "machine": "x86_64", "libc": "glibc 2.36"},
        "blas_coretype": "Prescott",
    }
    blas = [
        {
            "internal_api": "openmp",
            "num_threads": 1,
            "prefix": "libgomp",
            "user_api": "openmp",
            "version": None,
        }
    ]
    sources = [
        "WORKSPACE",
        "data_manifests/default.json",
        "models/candidate.recipe.json",
        "retrain/train.py",
    ]
    _write(Path("WORKSPACE"), 'workspace(name = "retrain")\n')
    _write(Path("data_manifests/default.json"), manifest_bytes)
    _write(Path("models/candidate.recipe.json"), CANDIDATE_RECIPE.read_bytes())
    _write(Path("retrain/train.py"), "# training\n")
    args = argparse.Namespace(
        target="//models:candidate",
        subject=[
            "model.rtm=" + _write(out / "model.rtm", tiny_model_bytes),
            "train_report.json=" + _write(out / "train_report.json", json.dumps({"blas": blas})),
            "metrics.json=" + _write(out / "metrics.json", "{}\n"),
        ],
        recipe="models/candidate.recipe.json",
        train_report=(out / "train_report.json").as_posix(),
        dataset_verified=[
            _write(Path("bazel-out/bin/models/default.verified.json"), json.dumps(verified))
        ],
        source=sources,
        lock_name="requirements/runtime.lock",
        env_json=_write(Path("external/retrain_py/env.json"), json.dumps(env)),
        toolchain_json=_write(Path("external/retrain_py/toolchain.json"), json.dumps(toolchain)),
        status=[_write(Path("bazel-out/stable-status.txt"), status)],
        out=(out / "provenance.json").as_posix(),
    )

    cmd_provenance(args)
    statement = _read_json(out / "provenance.json")

    assert _errors("provenance.v1.schema.json", statement) == []
    assert "bazel-out" not in json.dumps(statement)


def test_documented_tree_digest_recomputes_the_source_entry_of_a_statement(
    built_statement: Json,
) -> None:
    tree_digest_of = _doc_namespace("provenance.md")["tree_digest_of"]
    deps = _deps(built_statement)
    files = [
        (d["name"], d["digest"]["sha256"])
        for d in deps
        if d["name"] != "source" and "annotations" not in d and "uri" not in d
    ]

    assert len(files) == deps[0]["annotations"]["files"]
    assert tree_digest_of(files) == "sha256:" + deps[0]["digest"]["sha256"]


PROVENANCE_REFUSALS: list[tuple[str, Mutation]] = [
    ("start-timestamp", lambda s: _run(s)["metadata"].update(startedOn="2026-11-26T17:42:10Z")),
    ("invocation-id", lambda s: _run(s)["metadata"].update(invocationId="b5c1")),
    ("byproducts", lambda s: _run(s).update(byproducts=[{"name": "log"}])),
    ("git-commit-not-a-hash", lambda s: _dep(s, "source")["digest"].update(gitCommit="HEAD")),
    ("unknown-tree-state", lambda s: _dep(s, "source")["annotations"].update(gitTreeState="x")),
    ("uppercase-subject-digest", lambda s: s["subject"][0]["digest"].update(sha256="AB" * 32)),
    ("subject-named-by-machine-path", lambda s: s["subject"][0].update(name="bazel-out/bin/m")),
    ("subject-without-digest", lambda s: s["subject"][0].pop("digest")),
    ("no-subjects", lambda s: s.update(subject=[])),
    ("absolute-source-path", lambda s: _deps(s)[1].update(name="/work/main/retrain/train.py")),
    ("source-file-with-annotations", lambda s: _deps(s)[1].update(annotations={"mtime": 1})),
    ("source-not-first", lambda s: _deps(s).append(_deps(s).pop(0))),
    ("inherited-environment-variable", lambda s: _env(s).update(HOME="/root")),
    ("random-hash-seed", lambda s: _env(s).update(PYTHONHASHSEED="random")),
    ("missing-coretype", lambda s: _env(s).pop("OPENBLAS_CORETYPE")),
    ("blas-with-many-threads", lambda s: _blas(s).append({"user_api": "blas", "num_threads": 8})),
    ("blas-with-library-path", lambda s: _blas(s).append({"filepath": "/usr/lib/libblas.so"})),
    ("no-lock", lambda s: _deps(s).remove(_lock(s))),
    ("no-dataset", lambda s: _deps(s).remove(_dep(s, "dataset/default"))),
    ("two-python-toolchains", lambda s: _deps(s).append(dict(_dep(s, "toolchain/python")))),
    (
        "prefixed-dataset-digest",
        lambda s: _dep(s, "dataset/default")["digest"].update(sha256="sha256:" + "ba" * 32),
    ),
    ("dataset-without-manifest-uri", lambda s: _dep(s, "dataset/default").pop("uri")),
    ("unknown-predicate-key", lambda s: s["predicate"].update(invocation={"parameters": {}})),
    ("other-build-type", lambda s: _build(s).update(buildType="https://slsa.dev/generic/v1")),
    ("other-statement-type", lambda s: s.update(_type="https://in-toto.io/Statement/v0.1")),
    ("unknown-external-parameter", lambda s: _build(s)["externalParameters"].update(user="root")),
]


@pytest.mark.parametrize(
    ("case", "mutate"), PROVENANCE_REFUSALS, ids=[c for c, _ in PROVENANCE_REFUSALS]
)
def test_provenance_schema_refuses_statement_that_breaks_the_contract(
    built_statement: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("provenance.v1.schema.json", _mutated(built_statement, mutate)) != []


# ---------------------------------------------------------------------------
# Attestations: predicates, trust policies, DSSE envelopes (docs/attestations.md)

DATASET_CHECKS = ["listed-files", "containment", "size", "sha256", "rows", "schema"]
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
GATE_SPEC = REPO / "models" / "candidate.gates.toml"


@pytest.fixture(scope="module")
def key_pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPairPaths]:
    keys = tmp_path_factory.mktemp("keys")
    return {name: generate_key_pair(keys / f"{name}.pem") for name in ("release", "ci")}


def _dataset_predicate(
    table: pa.Table, *, root: str | None, quality: Json | None = None
) -> DatasetPredicate:
    manifest_path = "data_manifests/default.json"
    manifest = load_manifest(REPO / manifest_path)
    return DatasetPredicate(
        name=manifest.name,
        dataset_digest=manifest.dataset_digest,
        manifest_uri=manifest_path,
        manifest_sha256=sha256_file(REPO / manifest_path).sha256,
        rows=manifest.rows,
        files=len(manifest.entries),
        bytes=manifest.total_bytes,
        schema_fingerprint=manifest.schema_fingerprint,
        root=root,
        checks=tuple(DATASET_CHECKS),
        quality=quality
        or {"profile": profile_table(table), "spec": None, "checks": [], "passed": True},
        verifier={"retrain": "0.1.0"},
    )


@pytest.fixture(scope="module")
def dataset_quality(tiny_table: pa.Table) -> Json:
    """The quality section with a spec whose checks all ran, one of them failing."""
    spec = load_quality_spec(REPO / "data_manifests" / "holdout.quality.toml")
    holdout = generate_table(GeneratorSpec(rows=600, seed=3, id_offset=10**6))
    verdicts = run_quality_checks(holdout, spec, reference=tiny_table, where="holdout")
    checks = [v.to_dict() for v in verdicts]
    assert {c["check"] for c in checks} >= {"rows", "schema-columns", "drift-psi", "drift-ks"}
    assert not all(c["passed"] for c in checks)  # 600 rows, fewer than [rows] min
    return {
        "profile": profile_table(holdout),
        "spec": {"path": "data_manifests/holdout.quality.toml", "sha256": "a1" * 32},
        "checks": checks,
        "passed": False,
    }


@pytest.fixture(scope="module")
def dataset_predicate(tiny_table: pa.Table, dataset_quality: Json) -> Json:
    return _dataset_predicate(tiny_table, root="data/default", quality=dataset_quality).to_dict()


def _evaluation_predicate(
    model: Model,
    model_bytes: bytes,
    training: pa.Table,
    *,
    champion: Model | None = None,
    quality_failures: tuple[str, ...] = (),
) -> Json:
    """The predicate assembled from a real validation the way cmd_evaluate assembles it."""
    from threadpoolctl import threadpool_limits

    spec = dataclasses.replace(load_gate_spec(GATE_SPEC), resamples=50, min_slice_rows=100)
    holdout = generate_table(GeneratorSpec(rows=1500, seed=2, id_offset=10**6))
    with threadpool_limits(limits=None):
        result = validate_candidate(
            model,
            load_recipe(CANDIDATE_RECIPE),
            holdout,
            spec,
            training=training,
            training_name="default",
            leakage_key=spec.leakage_key,
            champion=None if champion is None else ("c4" * 32, champion),
            quality_failures=quality_failures,
            where="holdout",
        )
    failed = [v for v in result.verdicts if v.status == "failed"]
    return EvaluationPredicate(
        model_name="model.rtm",
        model_sha256=sha256_bytes(model_bytes),
        dataset_name="holdout",
        dataset_digest=load_manifest(REPO / "data_manifests/holdout.json").dataset_digest,
        training_dataset_name="default",
        training_dataset_digest=load_manifest(REPO / "data_manifests/default.json").dataset_digest,
        metrics_file="metrics.json",
        metrics_sha256="be" * 32,
        champion_sha256=result.champion_sha256,
        gates_passed=result.passed,
        failed_gates=tuple(f"{v.name}[{v.slice}]" if v.slice else v.name for v in failed),
        results=result.to_dict(),
    ).to_dict()


@pytest.fixture(scope="module")
def evaluation_predicate(tiny_model: Model, tiny_model_bytes: bytes, tiny_table: pa.Table) -> Json:
    """A candidate with no champion whose data-quality gate failed, and so its gates."""
    return _evaluation_predicate(
        tiny_model,
        tiny_model_bytes,
        tiny_table,
        quality_failures=("holdout: rows measured 600, expected >= 5000",),
    )


@pytest.fixture(scope="module")
def signed_envelope(evaluation_predicate: Json, key_pairs: dict[str, KeyPairPaths]) -> Json:
    statement = Statement(
        subjects=(
            ResourceDescriptor(
                name="model.rtm", digest={"sha256": evaluation_predicate["model"]["sha256"]}
            ),
        ),
        predicate_type=EVALUATION_V2,
        predicate=evaluation_predicate,
    )
    signers = [load_signer(pair.private) for pair in key_pairs.values()]
    return sign_statement(statement.to_json_bytes(), signers).to_dict()  # type: ignore[no-any-return]


# Dataset predicate


@pytest.mark.parametrize(
    "root",
    ["data/default", "", None],
    ids=["in-repository", "at-the-repository-root", "from-store"],
)
def test_dataset_predicate_matches_the_dataset_predicate_schema(
    tiny_table: pa.Table, root: str | None
) -> None:
    raw = _dataset_predicate(tiny_table, root=root).to_dict()

    assert raw["location"] == ({"root": root} if root is not None else {"store": True})
    assert raw["quality"]["spec"] is None and raw["quality"]["passed"] is True
    assert _errors("dataset-predicate.v1.schema.json", raw) == []
    assert DatasetPredicate.from_dict(raw, where="predicate").to_dict() == raw


def test_dataset_predicate_with_failed_quality_checks_matches_the_schema(
    dataset_predicate: Json,
) -> None:
    assert dataset_predicate["quality"]["passed"] is False
    assert _errors("dataset-predicate.v1.schema.json", dataset_predicate) == []
    loaded = DatasetPredicate.from_dict(dataset_predicate, where="predicate")
    assert loaded.to_dict() == dataset_predicate


def test_profile_of_null_bool_and_timestamp_columns_matches_the_schema() -> None:
    table = pa.table(
        {
            "all_null": pa.array([None, None], type=pa.float64()),
            "flag": pa.array([True, None]),
            "at": pa.array([0, 1], type=pa.timestamp("us", tz="UTC")),
            "kind": pa.array(["a", None]),
        }
    )
    raw = _dataset_predicate(table, root=None).to_dict()

    assert [sorted(c) for c in raw["quality"]["profile"]["columns"]] == [
        ["infinite", "max", "mean", "min", "name", "nan", "null_rate", "nulls", "type"],
        ["name", "null_rate", "nulls", "type"],
        ["name", "null_rate", "nulls", "type"],
        ["distinct", "name", "null_rate", "nulls", "type"],
    ]
    assert _errors("dataset-predicate.v1.schema.json", raw) == []


SMALL_QUALITY_SPEC = """\
spec_version = 1
dataset = "small"

[rows]
min = 100
max = 200  # the dataset has 300 rows: this check fails

[columns.age]
type = "int64"
nullable = false
min = 18
max = 100

[columns.region]
max_missing_rate = 0.5
allowed = ["north", "south", "east", "west", "central", "coastal"]

[duplicates]
unique_key = ["customer_id"]

[label]
column = "default_90d"
min_positive_rate = 0.01

[drift]
reference = "reference"
numeric = ["age"]
categorical = ["region"]
psi_max = 1.0
"""


@pytest.mark.parametrize("quality", [False, True], ids=["no-quality-spec", "with-quality-spec"])
def test_dataset_statement_written_by_the_verification_action_matches_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quality: bool
) -> None:
    from retrain._internal.actions import cmd_verify_dataset
    from retrain.datagen import write_dataset

    monkeypatch.chdir(tmp_path)
    write_dataset(GeneratorSpec(rows=300, seed=7), Path("data/small"), files=2)
    manifest = create_manifest(Path("data/small"), name="small")
    _write(Path("data_manifests/small.json"), manifest.to_json_bytes())
    write_dataset(GeneratorSpec(rows=300, seed=8, id_offset=10**6), Path("data/reference"))
    reference = create_manifest(Path("data/reference"), name="reference")
    _write(Path("data_manifests/reference.json"), reference.to_json_bytes())
    args = argparse.Namespace(
        manifest="data_manifests/small.json",
        manifest_uri="data_manifests/small.json",
        location="repo",
        root="data/small",
        file=[f"{e.path}=data/small/{e.path}" for e in manifest.entries],
        quality=_write(Path("data_manifests/small.quality.toml"), SMALL_QUALITY_SPEC)
        if quality
        else None,
        quality_uri="data_manifests/small.quality.toml" if quality else None,
        reference_manifest="data_manifests/reference.json" if quality else None,
        reference_root="data/reference",
        reference_file=[f"{e.path}=data/reference/{e.path}" for e in reference.entries],
        out="bazel-out/bin/small.verified.json",
        out_statement="bazel-out/bin/small.statement.json",
    )

    cmd_verify_dataset(args)
    statement = _read_json(Path(args.out_statement))
    verified = _read_json(Path(args.out))

    assert statement["predicateType"] == DATASET_V1
    assert [s["name"] for s in statement["subject"]] == [
        "data_manifests/small.json",
        "dataset/small",
    ]
    assert _errors("dataset-predicate.v1.schema.json", statement["predicate"]) == []
    DatasetPredicate.from_dict(statement["predicate"], where=args.out_statement)
    assert verified["manifest"]["path"] == "data_manifests/small.json"
    checks = statement["predicate"]["quality"]["checks"]
    if quality:
        assert statement["predicate"]["quality"]["spec"] == {
            "path": "data_manifests/small.quality.toml",
            "sha256": sha256_file(args.quality).sha256,
        }
        assert [c["check"] for c in checks if not c["passed"]] == ["rows"]
        assert statement["predicate"]["quality"]["passed"] is False
    else:
        assert checks == [] and statement["predicate"]["quality"]["passed"] is True


def _set_in(*path: str, value: object) -> Mutation:
    def mutate(d: Json) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return mutate


def _drop(*path: str) -> Mutation:
    def mutate(d: Json) -> None:
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]

    return mutate


def _column(p: Json) -> Json:
    column: Json = p["quality"]["profile"]["columns"][0]
    return column


def _quality_check(p: Json) -> Json:
    check: Json = p["quality"]["checks"][0]
    return check


DATASET_PREDICATE_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-top-level-key", _set_in("attestedAt", value="2026-11-26T17:00:00Z")),
    ("missing-quality", _drop("quality")),
    ("missing-verification", _drop("verification")),
    ("unknown-dataset-key", _set_in("dataset", "mtime", value=1764176400)),
    ("dataset-without-digest", _drop("dataset", "digest")),
    ("digest-without-prefix", lambda p: p["dataset"].update(digest=p["dataset"]["digest"][7:])),
    ("digest-uppercase", lambda p: p["dataset"].update(digest="sha256:" + "AB" * 32)),
    ("digest-other-algorithm", _set_in("dataset", "digest", value="md5:" + "0" * 32)),
    ("fingerprint-without-prefix", _set_in("dataset", "schemaFingerprint", value="81" * 32)),
    ("negative-rows", _set_in("dataset", "rows", value=-1)),
    ("rows-as-string", _set_in("dataset", "rows", value="40000")),
    ("files-as-bool", _set_in("dataset", "files", value=True)),
    ("bytes-with-fraction", _set_in("dataset", "bytes", value=780030.5)),
    ("empty-dataset-name", _set_in("dataset", "name", value="")),
    ("manifest-sha256-prefixed", _set_in("manifest", "sha256", value="sha256:" + "fb" * 32)),
    ("manifest-sha256-short", _set_in("manifest", "sha256", value="fb" * 31)),
    ("manifest-without-uri", _drop("manifest", "uri")),
    ("unknown-manifest-key", _set_in("manifest", "size", value=1)),
    ("location-root-and-store", _set_in("location", value={"root": "data", "store": True})),
    ("location-empty", _set_in("location", value={})),
    ("location-unknown-kind", _set_in("location", value={"bucket": "s3://data"})),
    ("root-not-a-string", _set_in("location", value={"root": 7})),
    ("root-null", _set_in("location", value={"root": None})),
    ("absolute-root", _set_in("location", value={"root": "/data/default"})),
    ("root-with-trailing-slash", _set_in("location", value={"root": "data/default/"})),
    ("root-dot", _set_in("location", value={"root": "."})),
    ("store-false", _set_in("location", value={"store": False})),
    ("absolute-manifest-uri", _set_in("manifest", "uri", value="/etc/passwd")),
    ("manifest-uri-with-dotdot", _set_in("manifest", "uri", value="../other/default.json")),
    ("manifest-uri-with-dot", _set_in("manifest", "uri", value="./data_manifests/default.json")),
    ("manifest-uri-with-empty-part", _set_in("manifest", "uri", value="data_manifests//a.json")),
    ("manifest-uri-with-backslash", _set_in("manifest", "uri", value="data_manifests\\a.json")),
    ("manifest-uri-with-drive", _set_in("manifest", "uri", value="C:/data_manifests/a.json")),
    ("verification-failed", _set_in("verification", "result", value="failed")),
    ("checks-not-a-list", _set_in("verification", "checks", value="sha256")),
    ("check-not-a-string", _set_in("verification", "checks", value=[1])),
    ("verification-without-verifier", _drop("verification", "verifier")),
    ("verifier-not-an-object", _set_in("verification", "verifier", value="retrain 0.1.0")),
    ("unknown-verification-key", _set_in("verification", "signedBy", value="me")),
    ("quality-not-an-object", _set_in("quality", value=[])),
    ("dataset-name-with-slash", _set_in("dataset", "name", value="a/b")),
    ("check-column-a-number", lambda p: _quality_check(p).update(column=7)),
    ("check-detail-null", lambda p: _quality_check(p).update(detail=None)),
    ("check-measured-an-object", lambda p: _quality_check(p).update(measured={"a": 1})),
]

# The loader accepts these (docs/attestations.md, "Schema and loader"): retrain
# never writes them, and the schema says so.
DATASET_PREDICATE_SCHEMA_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-check", lambda p: p["verification"]["checks"].append("vibes")),
    ("repeated-check", lambda p: p["verification"]["checks"].append("sha256")),
    ("quality-without-profile", _drop("quality", "profile")),
    ("quality-without-passed", _drop("quality", "passed")),
    ("quality-with-unknown-key", _set_in("quality", "gates", value=[])),
    ("quality-as-a-bare-profile", lambda p: p.update(quality=p["quality"]["profile"])),
    ("profile-without-columns", _drop("quality", "profile", "columns")),
    ("column-with-unknown-key", lambda p: _column(p).update(p99=1.0)),
    ("column-with-min-but-no-max", lambda p: _column(p).pop("max")),
    ("null-rate-above-one", lambda p: _column(p).update(null_rate=1.5)),
    ("spec-without-sha256", _drop("quality", "spec", "sha256")),
    ("spec-path-absolute", _set_in("quality", "spec", "path", value="/etc/quality.toml")),
    ("checks-not-a-list", _set_in("quality", "checks", value={})),
    ("check-of-unknown-kind", lambda p: _quality_check(p).update(check="vibes")),
    ("check-without-passed", lambda p: _quality_check(p).pop("passed")),
    ("check-passed-as-string", lambda p: _quality_check(p).update(passed="yes")),
    ("check-with-unknown-key", lambda p: _quality_check(p).update(severity="high")),
    ("passed-as-string", _set_in("quality", "passed", value="false")),
]


@pytest.mark.parametrize(
    ("case", "mutate"),
    DATASET_PREDICATE_REFUSALS + DATASET_PREDICATE_SCHEMA_ONLY_REFUSALS,
    ids=[c for c, _ in DATASET_PREDICATE_REFUSALS + DATASET_PREDICATE_SCHEMA_ONLY_REFUSALS],
)
def test_dataset_predicate_schema_refuses_damaged_predicate(
    dataset_predicate: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("dataset-predicate.v1.schema.json", _mutated(dataset_predicate, mutate)) != []


@pytest.mark.parametrize(
    ("case", "mutate"), DATASET_PREDICATE_REFUSALS, ids=[c for c, _ in DATASET_PREDICATE_REFUSALS]
)
def test_dataset_predicate_loader_refuses_what_the_schema_refuses(
    dataset_predicate: Json, case: str, mutate: Mutation
) -> None:
    with pytest.raises(RetrainError):
        DatasetPredicate.from_dict(_mutated(dataset_predicate, mutate), where="predicate")


# Evaluation predicate


def test_evaluation_predicate_matches_the_evaluation_predicate_schema(
    evaluation_predicate: Json,
) -> None:
    results = evaluation_predicate["results"]
    assert sorted(results["metrics"]) == ["accuracy", "auc", "brier", "ece", "log_loss"]
    assert results["holdout"]["leakage"]["disjoint"] is True
    assert evaluation_predicate["gates"]["passed"] is False
    assert "data-quality" in evaluation_predicate["gates"]["failed"]
    assert _errors("evaluation-predicate.v2.schema.json", evaluation_predicate) == []
    loaded = EvaluationPredicate.from_dict(evaluation_predicate, where="predicate")
    assert loaded.to_dict() == evaluation_predicate


def test_evaluation_predicate_with_a_champion_matches_the_schema(
    tiny_model: Model, tiny_model_bytes: bytes, tiny_table: pa.Table
) -> None:
    raw = _evaluation_predicate(tiny_model, tiny_model_bytes, tiny_table, champion=tiny_model)

    assert raw["champion"] == {"sha256": "c4" * 32}
    assert raw["results"]["champion"]["differences"]["auc"]["value"] == 0.0
    assert all(s["differences"] is not None for s in raw["results"]["slices"])
    assert _errors("evaluation-predicate.v2.schema.json", raw) == []
    assert EvaluationPredicate.from_dict(raw, where="predicate").to_dict() == raw


def test_evaluation_statement_written_by_the_evaluation_action_matches_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_bytes: bytes
) -> None:
    from threadpoolctl import threadpool_limits

    from retrain._internal.actions import cmd_evaluate
    from retrain.datagen import write_dataset

    monkeypatch.chdir(tmp_path)
    write_dataset(GeneratorSpec(rows=2000, seed=7), Path("data/small"), files=1)
    training = create_manifest(Path("data/small"), name="small")
    _write(Path("data_manifests/small.json"), training.to_json_bytes())
    write_dataset(GeneratorSpec(rows=1500, seed=8, id_offset=10**6), Path("data/hold"), files=1)
    holdout = create_manifest(Path("data/hold"), name="hold")
    _write(Path("data_manifests/hold.json"), holdout.to_json_bytes())
    gates = GATE_SPEC.read_text().replace("resamples = 1000", "resamples = 50")
    out = Path("bazel-out/bin/models/candidate")
    args = argparse.Namespace(
        manifest="data_manifests/hold.json",
        root="data/hold",
        file=[f"{e.path}=data/hold/{e.path}" for e in holdout.entries],
        train_manifest="data_manifests/small.json",
        train_root="data/small",
        train_file=[f"{e.path}=data/small/{e.path}" for e in training.entries],
        recipe=_write(Path("models/candidate.recipe.json"), CANDIDATE_RECIPE.read_bytes()),
        gates=_write(Path("models/candidate.gates.toml"), gates),
        gates_uri="models/candidate.gates.toml",
        model=_write(out / "model.rtm", tiny_model_bytes),
        champion_model=None,
        champion_record=None,
        quality_statement=[],
        out=(out / "metrics.json").as_posix(),
        out_gates=(out / "gates.txt").as_posix(),
        out_statement="bazel-out/bin/models/candidate_eval.statement.json",
    )

    with threadpool_limits(limits=None):  # the action pins threads; restore them afterwards
        cmd_evaluate(args)
    statement = _read_json(Path(args.out_statement))
    predicate = statement["predicate"]
    metrics = _read_json(Path(args.out))

    assert statement["predicateType"] == EVALUATION_V2
    assert statement["subject"] == [
        {"name": "model.rtm", "digest": {"sha256": sha256_bytes(tiny_model_bytes)}}
    ]
    assert predicate["metricsFile"] == {
        "name": "metrics.json",
        "sha256": sha256_file(args.out).sha256,
    }
    assert predicate["dataset"] == {"name": "hold", "digest": holdout.dataset_digest}
    assert predicate["trainingDataset"] == {"name": "small", "digest": training.dataset_digest}
    assert {k: metrics[k] for k in predicate["results"]} == predicate["results"]
    assert _errors("evaluation-predicate.v2.schema.json", predicate) == []
    EvaluationPredicate.from_dict(predicate, where=args.out_statement)
    verdict_lines = Path(args.out_gates).read_text().splitlines()
    assert len(verdict_lines) == len(predicate["results"]["gates"]["verdicts"]) + 1
    assert verdict_lines[-1].startswith("PASSED: " if predicate["gates"]["passed"] else "FAILED: ")


def _verdict(p: Json, status: str | None = None) -> Json:
    """The first verdict (with ``status``, when given)."""
    verdicts: list[Json] = p["results"]["gates"]["verdicts"]
    return next(v for v in verdicts if status is None or v["status"] == status)


def _metric(p: Json, name: str = "auc") -> Json:
    estimate: Json = p["results"]["metrics"][name]
    return estimate


EVALUATION_PREDICATE_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-top-level-key", _set_in("metrics", value={"auc": 0.73})),
    ("missing-metrics-file", _drop("metricsFile")),
    ("missing-training-dataset", _drop("trainingDataset")),
    ("missing-champion", _drop("champion")),
    ("missing-gates", _drop("gates")),
    ("missing-results", _drop("results")),
    ("unknown-model-key", _set_in("model", "path", value="bazel-out/model.rtm")),
    ("model-without-sha256", _drop("model", "sha256")),
    ("model-sha256-uppercase", _set_in("model", "sha256", value="95" * 31 + "AB")),
    ("model-sha256-prefixed", _set_in("model", "sha256", value="sha256:" + "95" * 32)),
    ("empty-model-name", _set_in("model", "name", value="")),
    ("model-name-not-a-string", _set_in("model", "name", value=["model.rtm"])),
    ("dataset-digest-without-prefix", _set_in("dataset", "digest", value="ba" * 32)),
    ("dataset-without-name", _drop("dataset", "name")),
    ("training-dataset-digest-short", _set_in("trainingDataset", "digest", value="sha256:ba")),
    ("unknown-training-dataset-key", _set_in("trainingDataset", "rows", value=40000)),
    ("metrics-file-sha256-short", _set_in("metricsFile", "sha256", value="be" * 16)),
    ("unknown-metrics-file-key", _set_in("metricsFile", "size", value=623)),
    ("model-name-with-directory", _set_in("model", "name", value="bazel-out/bin/model.rtm")),
    ("model-name-with-backslash", _set_in("model", "name", value="bin\\model.rtm")),
    ("model-name-dotdot", _set_in("model", "name", value="..")),
    ("metrics-file-name-absolute", _set_in("metricsFile", "name", value="/etc/hostname")),
    ("metrics-file-name-dot", _set_in("metricsFile", "name", value=".")),
    ("champion-as-string", _set_in("champion", value="c4" * 32)),
    ("champion-sha256-short", _set_in("champion", value={"sha256": "c4" * 16})),
    ("champion-with-unknown-key", _set_in("champion", value={"sha256": "c4" * 32, "auc": 0.7})),
    ("gates-passed-as-string", _set_in("gates", "passed", value="false")),
    ("gates-without-failed", _drop("gates", "failed")),
    ("gates-failed-as-string", _set_in("gates", "failed", value="data-quality")),
    ("unknown-gates-key", _set_in("gates", "skipped", value=[])),
    ("results-not-an-object", _set_in("results", value=[])),
    ("results-without-metrics", _drop("results", "metrics")),
    ("results-metrics-not-an-object", _set_in("results", "metrics", value=[0.73])),
    ("metric-value-as-string", lambda p: _metric(p).update(value="0.73")),
    ("metric-value-as-bool", lambda p: _metric(p, "accuracy").update(value=True)),
    ("metric-value-null", lambda p: _metric(p, "brier").update(value=None)),
    ("metric-without-value", lambda p: _metric(p).pop("value")),
    ("results-without-gates", _drop("results", "gates")),
    ("verdicts-not-a-list", _set_in("results", "gates", "verdicts", value={})),
    ("model-name-with-nul", _set_in("model", "name", value="model\0.rtm")),
    ("dataset-name-with-space", _set_in("dataset", "name", value="my data")),
    ("negative-holdout-rows", _set_in("results", "holdout", "rows", value=-1)),
    ("verdict-of-unknown-status", lambda p: _verdict(p, "passed").update(status="waived")),
    ("holdout-rows-as-string", _set_in("results", "holdout", "rows", value="10000")),
    ("results-gates-passed-as-number", lambda p: p["results"]["gates"].update(passed=1)),
    ("verdict-name-a-number", lambda p: _verdict(p).update(name=7)),
    ("verdict-slice-a-number", lambda p: _verdict(p).update(slice=3)),
]

# The loader accepts these (docs/attestations.md, "Schema and loader").
EVALUATION_PREDICATE_SCHEMA_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-metric", lambda p: p["results"]["metrics"].update(f1=_metric(p))),
    ("missing-metric", _drop("results", "metrics", "ece")),
    ("metric-without-interval", lambda p: _metric(p).pop("ci_low")),
    ("confidence-above-one", lambda p: _metric(p).update(confidence=1.5)),
    ("unknown-results-key", _set_in("results", "promoted", value=True)),
    ("results-without-calibration", _drop("results", "calibration")),
    ("leakage-with-shared-rows", _set_in("results", "holdout", "leakage", "shared_rows", value=3)),
    ("contracts-not-passed", _set_in("results", "contracts", "passed", value=False)),
    ("sanity-as-string", _set_in("results", "sanity", "finite", value="yes")),
    ("verdict-of-unknown-kind", lambda p: _verdict(p).update(kind="vibes")),
    ("verdict-without-message", lambda p: _verdict(p).pop("message")),
    ("verdict-interval-of-three", lambda p: _verdict(p).update(interval=[0.1, 0.2, 0.3])),
]


def _mark_first_passed_verdict_failed(p: Json) -> None:
    _verdict(p, "passed")["status"] = "failed"


# Only the loader can check these: they relate gates to results.gates.verdicts.
EVALUATION_PREDICATE_LOADER_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("passed-while-gates-failed", lambda p: p.update(gates={"passed": True, "failed": []})),
    ("passed-with-a-failed-gate-listed", _set_in("gates", "passed", value=True)),
    ("failed-without-a-failed-gate", lambda p: p.update(gates={"passed": False, "failed": []})),
    ("failed-verdict-not-listed", _mark_first_passed_verdict_failed),
    (
        "listed-gate-whose-verdict-passed",
        lambda p: p["gates"]["failed"].append(_verdict(p, "passed")["name"]),
    ),
    (
        "more-positives-than-rows",
        lambda p: p["results"]["holdout"].update(positives=p["results"]["holdout"]["rows"] + 1),
    ),
]


@pytest.mark.parametrize(
    ("case", "mutate"),
    EVALUATION_PREDICATE_REFUSALS + EVALUATION_PREDICATE_SCHEMA_ONLY_REFUSALS,
    ids=[c for c, _ in EVALUATION_PREDICATE_REFUSALS + EVALUATION_PREDICATE_SCHEMA_ONLY_REFUSALS],
)
def test_evaluation_predicate_schema_refuses_damaged_predicate(
    evaluation_predicate: Json, case: str, mutate: Mutation
) -> None:
    damaged = _mutated(evaluation_predicate, mutate)

    assert _errors("evaluation-predicate.v2.schema.json", damaged) != []


@pytest.mark.parametrize(
    ("case", "mutate"),
    EVALUATION_PREDICATE_REFUSALS + EVALUATION_PREDICATE_LOADER_ONLY_REFUSALS,
    ids=[c for c, _ in EVALUATION_PREDICATE_REFUSALS + EVALUATION_PREDICATE_LOADER_ONLY_REFUSALS],
)
def test_evaluation_predicate_loader_refuses_damaged_predicate(
    evaluation_predicate: Json, case: str, mutate: Mutation
) -> None:
    with pytest.raises(RetrainError):
        EvaluationPredicate.from_dict(_mutated(evaluation_predicate, mutate), where="predicate")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 10**400])
def test_evaluation_predicate_loader_refuses_a_metric_that_is_not_finite(
    evaluation_predicate: Json, value: float
) -> None:
    damaged = _mutated(evaluation_predicate, lambda p: _metric(p).update(value=value))

    with pytest.raises(RetrainError):
        EvaluationPredicate.from_dict(damaged, where="predicate")


# Trust policy: its signed content (format 2), the file around it, and format 1

# The checked-in policy's root key; version 1 of the policy starts trust there.
ROOT_KEYID = "db654a6762ab5cbee99f2f378a5ad84fbf133e0f518d663f5ed9c4c82796a6d6"


def _as_format_1(signed: Json) -> Json:
    """A format-2 policy's content written as the unsigned format 1 of earlier releases."""
    legacy = {k: v for k, v in signed.items() if k not in ("version", "notBefore", "root")}
    return {**copy.deepcopy(legacy), "policy_version": 1}


def _public_keys(key_pairs: dict[str, KeyPairPaths]) -> list[tuple[str, str]]:
    return [(name, pair.public.read_text(encoding="ascii")) for name, pair in key_pairs.items()]


def _refused(call: Callable[[], object], error: type[RetrainError] = RetrainError) -> None:
    """``call`` refuses with one line of ``error``; any other exception fails the test."""
    with pytest.raises(error) as refused:
        call()
    line = str(refused.value)
    assert line and "\n" not in line


@pytest.fixture(scope="module")
def checked_in_policy_file() -> Json:
    return _read_json(POLICY)


@pytest.fixture(scope="module")
def checked_in_policy(checked_in_policy_file: Json) -> Json:
    """The checked-in policy's content: the ``signed`` object of its file."""
    signed: Json = checked_in_policy_file["signed"]
    return signed


@pytest.fixture(scope="module")
def legacy_policy(checked_in_policy: Json) -> Json:
    return _as_format_1(checked_in_policy)


def test_checked_in_policy_file_matches_the_policy_file_schema_and_loads(
    checked_in_policy_file: Json, checked_in_policy: Json
) -> None:
    assert _errors("policy-file.v2.schema.json", checked_in_policy_file) == []
    assert _errors("policy.v2.schema.json", checked_in_policy) == []
    assert checked_in_policy["root"]["functionaries"] == [ROOT_KEYID]
    policy = load_policy(POLICY, trust_roots=[ROOT_KEYID])
    assert policy.signed and policy.format == 2
    assert policy.version == checked_in_policy["version"]
    assert policy.digest == "sha256:" + sha256_bytes(canonical_json(checked_in_policy))
    assert list(policy.steps) == ["dataset", "holdout", "build", "evaluation"]
    assert policy.steps["holdout"].predicate_type == DATASET_V1
    assert policy.steps["evaluation"].predicate_type == EVALUATION_V2
    assert policy.promotion is not None
    assert set(policy.promotion.stages) == {"shadow", "canary", "production"}


@pytest.mark.parametrize(
    ("step_keys", "thresholds", "steps"),
    [
        (None, None, ("dataset", "holdout", "build", "evaluation")),
        (
            {"dataset": ["ci"], "build": ["ci", "release"], "evaluation": ["release"]},
            {"build": 2},
            ("dataset", "holdout", "build", "evaluation"),
        ),
        (None, None, ("dataset", "build", "evaluation")),
    ],
    ids=["every-key-every-step", "keys-per-step-with-threshold", "no-holdout-step"],
)
def test_policy_written_for_generated_keys_matches_the_policy_schema(
    key_pairs: dict[str, KeyPairPaths],
    step_keys: dict[str, list[str]] | None,
    thresholds: dict[str, int] | None,
    steps: tuple[str, ...],
) -> None:
    built = TrustPolicy.for_keys(
        _public_keys(key_pairs),
        expires=FAR_FUTURE,
        step_keys=step_keys,
        thresholds=thresholds,
        steps=steps,
    )
    raw = json.loads(json.dumps(built.to_dict()))

    every_key = sorted(pair.keyid for pair in key_pairs.values())
    assert (raw["policy_version"], raw["version"]) == (2, 1)
    assert raw["root"] == {"functionaries": every_key, "threshold": 1}  # its own keys sign it
    assert sorted(raw["keys"]) == every_key
    assert list(raw["steps"]) == list(steps)
    for step in set(steps) - set(step_keys or {}):  # a step not named: every key may sign it
        assert sorted(raw["steps"][step]["functionaries"]) == every_key
    assert _errors("policy.v2.schema.json", raw) == []
    assert TrustPolicy.from_dict(raw, where="policy.json").to_dict() == raw


def test_policy_with_a_root_of_its_own_and_dirty_builds_up_to_canary_matches_the_schema(
    key_pairs: dict[str, KeyPairPaths],
) -> None:
    release, ci = key_pairs["release"], key_pairs["ci"]
    built = TrustPolicy.for_keys(
        [("release", release.public.read_text(encoding="ascii"))],
        root_keys=[("ci", ci.public.read_text(encoding="ascii"))],
        expires=FAR_FUTURE,
        version=7,
        not_before=datetime(2026, 12, 1, tzinfo=UTC),
        allow_dirty=("shadow", "canary"),
        description="release signs, ci holds the root",
    )
    raw = json.loads(json.dumps(built.to_dict()))

    assert raw["root"] == {"functionaries": [ci.keyid], "threshold": 1}
    assert sorted(raw["keys"]) == sorted([release.keyid, ci.keyid])  # the root key is listed
    assert raw["steps"]["build"]["functionaries"] == [release.keyid]  # and approves no step
    assert {s: r["allow_dirty"] for s, r in raw["promotion"]["stages"].items()} == {
        "shadow": True,
        "canary": True,
        "production": False,
    }
    assert (raw["version"], raw["notBefore"]) == (7, "2026-12-01T00:00:00Z")
    assert _errors("policy.v2.schema.json", raw) == []
    assert TrustPolicy.from_dict(raw, where="policy.json").to_dict() == raw


def test_policy_written_without_promotion_rules_matches_the_policy_schema(
    key_pairs: dict[str, KeyPairPaths],
) -> None:
    built = TrustPolicy.for_keys(_public_keys(key_pairs), expires=FAR_FUTURE, promotion=False)
    raw = json.loads(json.dumps(built.to_dict()))

    assert "promotion" not in raw
    assert _errors("policy.v2.schema.json", raw) == []
    assert TrustPolicy.from_dict(raw, where="policy.json").promotion is None


def test_policy_with_two_approvers_for_production_matches_the_schema_and_loads(
    key_pairs: dict[str, KeyPairPaths],
) -> None:
    built = TrustPolicy.for_keys(_public_keys(key_pairs), expires=FAR_FUTURE)
    raw = json.loads(json.dumps(built.to_dict()))
    release, ci = key_pairs["release"].keyid, key_pairs["ci"].keyid
    raw["promotion"]["stages"] = {
        "shadow": {"functionaries": [ci], "threshold": 1, "after": ["candidate"]},
        "canary": {"functionaries": [ci, release], "threshold": 1, "after": ["shadow"]},
        "production": {
            "functionaries": sorted([ci, release]),
            "threshold": 2,
            "after": ["canary", "shadow"],
        },
    }
    raw["promotion"]["rollback"] = {"functionaries": [release], "threshold": 1}

    assert _errors("policy.v2.schema.json", raw) == []
    promotion = TrustPolicy.from_dict(raw, where="policy.json").promotion
    assert promotion is not None
    assert promotion.stages["production"].threshold == 2
    assert promotion.stages["canary"].max_traffic == 100  # absent: the loader's default
    assert promotion.stages["production"].require_champion is False  # absent: off
    # allow_dirty absent: only shadow admits a build from a tree that was not clean.
    assert {s: r.allow_dirty for s, r in promotion.stages.items()} == {
        "shadow": True,
        "canary": False,
        "production": False,
    }

    raw["promotion"]["stages"]["production"]["require_champion"] = True
    assert _errors("policy.v2.schema.json", raw) == []
    loaded = TrustPolicy.from_dict(raw, where="policy.json")
    assert loaded.promotion is not None and loaded.promotion.stages["production"].require_champion
    # It survives a round trip; only an explicit true is written, allow_dirty always is.
    written = loaded.to_dict()["promotion"]["stages"]
    assert written["production"]["require_champion"] is True
    assert [written[s]["allow_dirty"] for s in ("shadow", "canary", "production")] == [
        True,
        False,
        False,
    ]
    assert _errors("policy.v2.schema.json", loaded.to_dict()) == []
    assert promotion.rollback_functionaries == (release,)


# The policy file: signatures and earlier versions around the content


def test_policy_file_signed_by_its_root_matches_the_policy_file_schema_and_loads(
    tmp_path: Path, key_pairs: dict[str, KeyPairPaths]
) -> None:
    built = TrustPolicy.for_keys(_public_keys(key_pairs), expires=FAR_FUTURE)
    path = write_policy(tmp_path / "policy.json", built, key_pairs["release"], key_pairs["ci"])
    raw = _read_json(path)

    assert [s["keyid"] for s in raw["signatures"]] == sorted(p.keyid for p in key_pairs.values())
    assert "previous" not in raw
    assert _errors("policy-file.v2.schema.json", raw) == []
    loaded = load_policy(path)
    assert loaded.signed and loaded.digest == built.digest
    assert loaded.to_dict() == raw["signed"]


def test_unsigned_policy_file_matches_the_schema_and_loads_only_when_unsigned_is_accepted(
    tmp_path: Path, key_pairs: dict[str, KeyPairPaths]
) -> None:
    path = tmp_path / "policy.json"
    write_policy_file(path, TrustPolicy.for_keys(_public_keys(key_pairs), expires=FAR_FUTURE))
    raw = _read_json(path)

    assert raw["signatures"] == []
    assert _errors("policy-file.v2.schema.json", raw) == []
    _refused(lambda: load_policy(path), PolicyUntrusted)
    assert not load_policy(path, insecure_unsigned=True).signed


@pytest.fixture(scope="module")
def policy_file_with_history(
    tmp_path_factory: pytest.TempPathFactory, key_pairs: dict[str, KeyPairPaths]
) -> Json:
    """Version 2 of a policy whose root moved from the release key to the ci key, and version 1."""
    keys = _public_keys(key_pairs)
    assert [name for name, _ in keys] == ["release", "ci"]
    path = tmp_path_factory.mktemp("policy-history") / "policy.json"
    first = TrustPolicy.for_keys(keys, expires=FAR_FUTURE, root_keys=keys[:1])
    write_policy(path, first, key_pairs["release"])
    version_1, _ = read_policy_file(path)
    assert isinstance(version_1, PolicyDocument)
    second = TrustPolicy.for_keys(
        keys,
        expires=FAR_FUTURE,
        root_keys=keys[1:],
        version=2,
        not_before=datetime(2026, 12, 1, tzinfo=UTC),
    )
    # Signed by the root it replaces and by its own.
    signers = [signer_of(key_pairs["release"]), signer_of(key_pairs["ci"])]
    write_policy_file(path, second, previous=[version_1], signers=signers)
    return _read_json(path)


def test_policy_file_with_its_history_matches_the_schema_and_loads(
    tmp_path: Path, policy_file_with_history: Json, key_pairs: dict[str, KeyPairPaths]
) -> None:
    raw = policy_file_with_history
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(raw), encoding="utf-8")

    assert [d["signed"]["version"] for d in (*raw["previous"], raw)] == [1, 2]
    assert len(raw["signatures"]) == 2
    assert _errors("policy-file.v2.schema.json", raw) == []
    loaded = load_policy(path, trust_roots=[key_pairs["release"].keyid])
    assert (loaded.version, loaded.signed, sorted(loaded.history)) == (2, True, [1])
    assert loaded.anchor.endswith("(version 1)")  # the old root vouches for the new one


def _signature(f: Json) -> Json:
    signature: Json = f["signatures"][0]
    return signature


def _previous(f: Json) -> Json:
    earlier: Json = f["previous"][0]
    return earlier


def _current_as_previous(f: Json) -> Json:
    return copy.deepcopy({"signed": f["signed"], "signatures": f["signatures"]})


POLICY_FILE_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-top-level-key", _set_in("expires", value="2100-01-01T00:00:00Z")),
    ("missing-signed", _drop("signed")),
    ("signed-not-an-object", _set_in("signed", value=[])),
    ("format-1-policy-inside-signed", lambda f: f.update(signed=_as_format_1(f["signed"]))),
    (
        "format-1-policy-in-previous",
        lambda f: _previous(f).update(signed=_as_format_1(_previous(f)["signed"])),
    ),
    ("signed-version-zero", _set_in("signed", "version", value=0)),
    ("signed-without-root", _drop("signed", "root")),
    ("signatures-not-a-list", lambda f: f.update(signatures=_signature(f))),
    ("signatures-as-string", _set_in("signatures", value="MEQ=")),
    ("signature-as-string", lambda f: f.update(signatures=[_signature(f)["sig"]])),
    ("signature-entry-with-extra-key", lambda f: _signature(f).update(cert="-----BEGIN")),
    ("signature-without-sig", lambda f: _signature(f).pop("sig")),
    ("signature-without-keyid", lambda f: _signature(f).pop("keyid")),
    ("keyid-as-number", lambda f: _signature(f).update(keyid=1)),
    ("sig-as-number", lambda f: _signature(f).update(sig=3)),
    ("sig-not-base64", lambda f: _signature(f).update(sig="not base64!")),
    ("sig-without-padding", lambda f: _signature(f).update(sig="eyJhYmM")),
    ("sig-with-trailing-newline", lambda f: _signature(f).update(sig=_signature(f)["sig"] + "\n")),
    ("signature-repeated", lambda f: f["signatures"].append(dict(_signature(f)))),
    (
        "more-than-64-signatures",
        lambda f: f.update(signatures=[{"keyid": f"{i:064x}", "sig": "MEQ="} for i in range(65)]),
    ),
    ("previous-not-a-list", lambda f: f.update(previous=_previous(f))),
    ("previous-null", _set_in("previous", value=None)),
    ("previous-entry-as-string", _set_in("previous", value=["version 1"])),
    ("previous-entry-with-unknown-key", lambda f: _previous(f).update(previous=[])),
    ("previous-entry-without-signed", lambda f: _previous(f).pop("signed")),
    ("previous-version-without-not-before", lambda f: _previous(f)["signed"].pop("notBefore")),
    (
        "previous-signature-with-extra-key",
        lambda f: _previous(f)["signatures"][0].update(cert="-----BEGIN"),
    ),
    ("previous-sig-not-base64", lambda f: _previous(f)["signatures"][0].update(sig="%%%%")),
]

# Only the reader can check these: they relate entries to one another, or need the keys.
POLICY_FILE_READER_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    (
        "the-same-keyid-twice",
        lambda f: f["signatures"].append({"keyid": _signature(f)["keyid"], "sig": "MEQ="}),
    ),
    ("previous-version-repeated", lambda f: f["previous"].append(copy.deepcopy(_previous(f)))),
    ("previous-newest-first", lambda f: f["previous"].insert(0, _current_as_previous(f))),
    ("current-version-skips-one", _set_in("signed", "version", value=3)),
    ("current-version-before-previous", _set_in("signed", "version", value=1)),
    (
        "signed-not-before-after-expires",
        _set_in("signed", "notBefore", value="2100-01-02T00:00:00Z"),
    ),
    (
        "previous-root-names-an-unlisted-key",
        lambda f: _previous(f)["signed"]["root"].update(functionaries=["00" * 32]),
    ),
]

# The reader accepts these (a missing list is an empty one; a keyid that is not
# hex, or an empty sig, matches no key), and load_policy then finds too few
# signatures; retrain never writes them.
POLICY_FILE_SCHEMA_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("missing-signatures", _drop("signatures")),
    ("previous-without-signatures", lambda f: _previous(f).pop("signatures")),
    ("signature-keyid-not-hex", lambda f: _signature(f).update(keyid="release")),
    ("empty-sig", lambda f: _signature(f).update(sig="")),
]


@pytest.mark.parametrize(
    ("case", "mutate"),
    POLICY_FILE_REFUSALS + POLICY_FILE_SCHEMA_ONLY_REFUSALS,
    ids=[c for c, _ in POLICY_FILE_REFUSALS + POLICY_FILE_SCHEMA_ONLY_REFUSALS],
)
def test_policy_file_schema_refuses_damaged_file(
    policy_file_with_history: Json, case: str, mutate: Mutation
) -> None:
    damaged = _mutated(policy_file_with_history, mutate)

    assert _errors("policy-file.v2.schema.json", damaged) != []


@pytest.mark.parametrize(
    ("case", "mutate"),
    POLICY_FILE_REFUSALS + POLICY_FILE_READER_ONLY_REFUSALS,
    ids=[c for c, _ in POLICY_FILE_REFUSALS + POLICY_FILE_READER_ONLY_REFUSALS],
)
def test_policy_file_reader_refuses_damaged_file(
    tmp_path: Path, policy_file_with_history: Json, case: str, mutate: Mutation
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(_mutated(policy_file_with_history, mutate)), encoding="utf-8")

    # Malformed, not merely untrusted: read_policy_file verifies no signature.
    _refused(lambda: read_policy_file(path), PolicyError)


def _first_signatures_twice(text: str) -> str:
    # A reviewer reads the first, empty list; json.loads keeps the last.
    return '{"signatures": [], ' + text[1:]


def _first_expires_twice(text: str) -> str:
    return text.replace('"expires": ', '"expires": "2000-01-01T00:00:00Z", "expires": ', 1)


@pytest.mark.parametrize(
    "duplicate",
    [_first_signatures_twice, _first_expires_twice],
    ids=["signatures-twice", "expires-twice-in-a-version"],
)
def test_policy_file_reader_refuses_a_key_written_twice(
    tmp_path: Path, policy_file_with_history: Json, duplicate: Callable[[str], str]
) -> None:
    text = duplicate(json.dumps(policy_file_with_history))
    path = tmp_path / "policy.json"
    path.write_text(text, encoding="utf-8")

    # The schema sees only what json.loads kept: only the strict reader can refuse this.
    assert _errors("policy-file.v2.schema.json", json.loads(text)) == []
    _refused(lambda: read_policy_file(path), PolicyError)


def test_policy_file_reader_refuses_text_with_a_lone_surrogate(
    tmp_path: Path, checked_in_policy_file: Json
) -> None:
    damaged = _mutated(checked_in_policy_file, _set_in("signed", "description", value="\ud800"))
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(damaged), encoding="utf-8")  # the file holds the escape "\ud800"

    _refused(lambda: read_policy_file(path), PolicyError)


# Format 1: the unsigned policy of earlier releases


def test_format_1_policy_matches_the_v1_schema_and_loads_only_when_unsigned_is_accepted(
    tmp_path: Path, legacy_policy: Json
) -> None:
    assert _errors("policy.v1.schema.json", legacy_policy) == []
    assert _errors("policy.v2.schema.json", legacy_policy) != []
    loaded = TrustPolicy.from_dict(legacy_policy, where="policy.json")
    assert (loaded.format, loaded.version, loaded.root) == (1, 0, None)
    # Written back as it was read, allow_dirty included, as the v1 schema admits.
    assert loaded.to_dict() == legacy_policy
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(legacy_policy), encoding="utf-8")
    _refused(lambda: load_policy(path), PolicyUntrusted)
    _refused(lambda: load_policy(path, trust_roots=[ROOT_KEYID]), PolicyUntrusted)
    assert load_policy(path, insecure_unsigned=True).anchor.startswith("unsigned")


# ---------------------------------------------------------------------------
# Damaged policy content


def _key_entry(policy: Json) -> Json:
    entry: Json = next(iter(policy["keys"].values()))
    return entry


def _step(name: str) -> Callable[[Json], Json]:
    return lambda policy: policy["steps"][name]


def _in_step(name: str, key: str, value: object) -> Mutation:
    return lambda p: _step(name)(p).update({key: value})


def _stages(policy: Json) -> Json:
    stages: Json = policy["promotion"]["stages"]
    return stages


def _in_stage(name: str, key: str, value: object) -> Mutation:
    return lambda p: _stages(p)[name].update({key: value})


LEGACY_POLICY_REFUSALS: list[tuple[str, Mutation]] = [
    ("format-1-with-a-version", _set_in("version", value=1)),
    ("format-1-with-not-before", _set_in("notBefore", value="2026-01-01T00:00:00Z")),
    (
        "format-1-with-a-root",
        _set_in("root", value={"functionaries": [ROOT_KEYID], "threshold": 1}),
    ),
    ("unknown-policy-version", _set_in("policy_version", value=3)),
    ("missing-expires", _drop("expires")),
    ("threshold-zero", _in_step("dataset", "threshold", 0)),
    ("stage-with-unknown-key", _in_stage("production", "approved_by", "release")),
    ("allow-dirty-as-string", _in_stage("shadow", "allow_dirty", "yes")),
]


@pytest.mark.parametrize(
    ("case", "mutate"), LEGACY_POLICY_REFUSALS, ids=[c for c, _ in LEGACY_POLICY_REFUSALS]
)
def test_policy_v1_schema_refuses_damaged_format_1_policy(
    legacy_policy: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("policy.v1.schema.json", _mutated(legacy_policy, mutate)) != []


@pytest.mark.parametrize(
    ("case", "mutate"), LEGACY_POLICY_REFUSALS, ids=[c for c, _ in LEGACY_POLICY_REFUSALS]
)
def test_policy_loader_refuses_damaged_format_1_policy(
    legacy_policy: Json, case: str, mutate: Mutation
) -> None:
    _refused(lambda: TrustPolicy.from_dict(_mutated(legacy_policy, mutate), where="policy.json"))


POLICY_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-policy-version", _set_in("policy_version", value=3)),
    ("format-1-policy-version", _set_in("policy_version", value=1)),
    ("missing-policy-version", _drop("policy_version")),
    ("policy-version-as-bool", _set_in("policy_version", value=True)),
    ("policy-version-as-string", _set_in("policy_version", value="2")),
    ("unknown-top-level-key", _set_in("signature", value="MEUCIQ")),
    ("missing-expires", _drop("expires")),
    ("missing-steps", _drop("steps")),
    ("expires-without-zone", _set_in("expires", value="2027-11-26T00:00:00")),
    ("expires-date-only", _set_in("expires", value="2027-11-26")),
    ("expires-with-offset", _set_in("expires", value="2027-11-26T00:00:00+01:00")),
    ("expires-as-number", _set_in("expires", value=1826582400)),
    ("no-keys", _set_in("keys", value={})),
    ("keys-as-list", lambda p: p.update(keys=list(p["keys"].values()))),
    ("key-entry-with-unknown-key", lambda p: _key_entry(p).update(comment="laptop")),
    ("key-without-public", lambda p: _key_entry(p).pop("public")),
    ("public-not-pem", lambda p: _key_entry(p).update(public="not a key")),
    ("public-as-list", lambda p: _key_entry(p).update(public=[_key_entry(p)["public"]])),
    ("other-scheme", lambda p: _key_entry(p).update(scheme="rsassa-pss-sha256")),
    ("no-steps", _set_in("steps", value={})),
    ("unknown-step", lambda p: p["steps"].update(deploy=copy.deepcopy(p["steps"]["build"]))),
    ("step-without-threshold", lambda p: _step("build")(p).pop("threshold")),
    ("step-with-unknown-key", _in_step("build", "expires", "2027-01-01T00:00:00Z")),
    ("threshold-zero", _in_step("dataset", "threshold", 0)),
    ("threshold-as-bool", _in_step("dataset", "threshold", True)),
    ("threshold-as-string", _in_step("dataset", "threshold", "1")),
    ("threshold-with-fraction", _in_step("dataset", "threshold", 1.5)),
    ("no-functionaries", _in_step("evaluation", "functionaries", [])),
    ("functionaries-as-string", _in_step("evaluation", "functionaries", "2f98b0b5")),
    ("functionary-as-number", _in_step("evaluation", "functionaries", [1])),
    ("empty-predicate-type", _in_step("build", "predicate_type", "")),
    ("predicate-type-as-list", _in_step("build", "predicate_type", [DATASET_V1])),
    ("other-keytype", lambda p: _key_entry(p).update(keytype="rsa")),
    (
        "dataset-step-with-another-version",
        _in_step("dataset", "predicate_type", DATASET_V1[:-1] + "2"),
    ),
    ("build-step-with-evaluation-type", _in_step("build", "predicate_type", EVALUATION_V2)),
    ("holdout-step-with-evaluation-type", _in_step("holdout", "predicate_type", EVALUATION_V2)),
    (
        "evaluation-step-with-the-old-version",
        _in_step("evaluation", "predicate_type", EVALUATION_V2[:-1] + "1"),
    ),
    (
        "repeated-functionary",
        lambda p: _step("build")(p).update(functionaries=_step("build")(p)["functionaries"] * 2),
    ),
    ("expires-one-digit-month", _set_in("expires", value="2027-1-26T00:00:00Z")),
    ("expires-with-fraction", _set_in("expires", value="2027-11-26T00:00:00.5Z")),
    ("expires-lowercase-zone", _set_in("expires", value="2027-11-26T00:00:00z")),
    ("expires-hour-24", _set_in("expires", value="2027-11-26T24:00:00Z")),
    # The policy's own version, validity start and root (format 2)
    ("missing-version", _drop("version")),
    ("version-zero", _set_in("version", value=0)),
    ("negative-version", _set_in("version", value=-1)),
    ("version-as-bool", _set_in("version", value=True)),
    ("version-as-string", _set_in("version", value="1")),
    ("version-with-fraction", _set_in("version", value=1.5)),
    ("version-null", _set_in("version", value=None)),
    ("version-above-2-to-the-31", _set_in("version", value=2**31 + 1)),
    ("missing-not-before", _drop("notBefore")),
    ("not-before-without-zone", _set_in("notBefore", value="2026-12-05T00:00:00")),
    ("not-before-date-only", _set_in("notBefore", value="2026-12-05")),
    ("not-before-with-offset", _set_in("notBefore", value="2026-12-05T00:00:00+01:00")),
    ("not-before-with-fraction", _set_in("notBefore", value="2026-12-05T00:00:00.5Z")),
    ("not-before-month-13", _set_in("notBefore", value="2026-13-05T00:00:00Z")),
    ("not-before-as-number", _set_in("notBefore", value=1796428800)),
    ("not-before-null", _set_in("notBefore", value=None)),
    ("missing-root", _drop("root")),
    ("root-null", _set_in("root", value=None)),
    ("root-as-list", lambda p: p.update(root=[p["root"]])),
    ("root-with-unknown-key", _set_in("root", "expires", value="2027-11-26T00:00:00Z")),
    ("root-without-functionaries", _drop("root", "functionaries")),
    ("root-without-threshold", _drop("root", "threshold")),
    ("root-with-empty-functionaries", _set_in("root", "functionaries", value=[])),
    ("root-functionaries-as-string", _set_in("root", "functionaries", value=ROOT_KEYID)),
    ("root-functionary-not-a-keyid", _set_in("root", "functionaries", value=["retrain-root"])),
    (
        "root-repeated-functionary",
        lambda p: p["root"].update(functionaries=p["root"]["functionaries"] * 2),
    ),
    ("root-threshold-zero", _set_in("root", "threshold", value=0)),
    ("root-threshold-as-bool", _set_in("root", "threshold", value=True)),
    ("root-threshold-as-string", _set_in("root", "threshold", value="1")),
    # The promotion section (docs/registry.md)
    ("promotion-not-an-object", _set_in("promotion", value=[])),
    ("promotion-without-stages", _drop("promotion", "stages")),
    ("promotion-without-rollback", _drop("promotion", "rollback")),
    ("promotion-with-unknown-key", _set_in("promotion", "deploy", value={})),
    (
        "promotion-unknown-stage",
        lambda p: _stages(p).update(staging=copy.deepcopy(_stages(p)["shadow"])),
    ),
    ("stages-as-list", lambda p: p["promotion"].update(stages=list(_stages(p).values()))),
    ("stage-without-after", _drop("promotion", "stages", "shadow", "after")),
    ("stage-without-threshold", _drop("promotion", "stages", "production", "threshold")),
    ("stage-with-unknown-key", _in_stage("production", "approved_by", "release")),
    ("stage-threshold-zero", _in_stage("production", "threshold", 0)),
    ("stage-threshold-as-bool", _in_stage("production", "threshold", True)),
    ("stage-threshold-as-string", _in_stage("production", "threshold", "1")),
    ("stage-without-functionaries", _in_stage("canary", "functionaries", [])),
    ("stage-functionary-not-a-keyid", _in_stage("canary", "functionaries", ["release"])),
    (
        "stage-repeated-functionary",
        lambda p: _stages(p)["canary"].update(
            functionaries=_stages(p)["canary"]["functionaries"] * 2
        ),
    ),
    ("max-traffic-on-production", _in_stage("production", "max_traffic", 100)),
    ("max-traffic-on-shadow", _in_stage("shadow", "max_traffic", 0)),
    ("max-traffic-zero", _in_stage("canary", "max_traffic", 0)),
    ("max-traffic-above-100", _in_stage("canary", "max_traffic", 101)),
    ("max-traffic-as-bool", _in_stage("canary", "max_traffic", True)),
    ("max-traffic-with-fraction", _in_stage("canary", "max_traffic", 12.5)),
    ("require-champion-on-canary", _in_stage("canary", "require_champion", True)),
    ("require-champion-on-shadow", _in_stage("shadow", "require_champion", False)),
    ("require-champion-as-string", _in_stage("production", "require_champion", "yes")),
    ("require-champion-as-number", _in_stage("production", "require_champion", 1)),
    ("allow-dirty-as-string", _in_stage("shadow", "allow_dirty", "yes")),
    ("allow-dirty-as-number", _in_stage("canary", "allow_dirty", 0)),
    ("allow-dirty-null", _in_stage("production", "allow_dirty", None)),
    ("after-empty", _in_stage("canary", "after", [])),
    ("after-as-string", _in_stage("canary", "after", "shadow")),
    ("after-names-its-own-stage", _in_stage("canary", "after", ["canary"])),
    ("after-names-an-unknown-stage", _in_stage("shadow", "after", ["staging"])),
    ("rollback-with-unknown-key", _set_in("promotion", "rollback", "after", value=["canary"])),
    ("rollback-without-threshold", _drop("promotion", "rollback", "threshold")),
    ("rollback-threshold-zero", _set_in("promotion", "rollback", "threshold", value=0)),
    ("after-names-a-stage-twice", _in_stage("production", "after", ["canary", "canary"])),
    (
        "rollback-functionary-as-number",
        _set_in("promotion", "rollback", "functionaries", value=[1]),
    ),
]

# The loader accepts these (docs/attestations.md and docs/registry.md, "Schema and loader").
POLICY_SCHEMA_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("key-without-name", lambda p: _key_entry(p).pop("name")),
    ("key-without-keytype", lambda p: _key_entry(p).pop("keytype")),
    ("key-without-scheme", lambda p: _key_entry(p).pop("scheme")),
    ("empty-key-name", lambda p: _key_entry(p).update(name="")),
    ("description-not-a-string", _set_in("description", value=["release key"])),
]


def _other_keyid(p: Json) -> None:
    """The first key listed under a keyid that is not its own; every rule follows the rename."""
    keyid = next(iter(p["keys"]))
    other = "00" * 32
    p["keys"] = {(other if k == keyid else k): entry for k, entry in p["keys"].items()}
    rules = [p["root"], *p["steps"].values(), *_stages(p).values(), p["promotion"]["rollback"]]
    for rule in rules:
        rule["functionaries"] = [other if f == keyid else f for f in rule["functionaries"]]


# Only the loader can check these: they depend on the key itself or on other fields.
POLICY_LOADER_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("keyid-of-another-key", _other_keyid),
    ("functionary-not-listed", _in_step("build", "functionaries", ["00" * 32])),
    ("threshold-above-functionaries", _in_step("build", "threshold", 2)),
    ("promotion-functionary-not-listed", _in_stage("production", "functionaries", ["00" * 32])),
    ("promotion-threshold-above-functionaries", _in_stage("production", "threshold", 2)),
    (
        "rollback-functionary-not-listed",
        _set_in("promotion", "rollback", "functionaries", value=["00" * 32]),
    ),
    ("expires-not-a-date", _set_in("expires", value="2027-02-30T00:00:00Z")),
    (
        "public-key-not-p256",
        lambda p: _key_entry(p).update(
            public="-----BEGIN PUBLIC KEY-----\n"
            "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
            "-----END PUBLIC KEY-----\n"
        ),
    ),
    ("not-before-after-expires", _set_in("notBefore", value="2028-01-01T00:00:00Z")),
    ("not-before-equal-to-expires", lambda p: p.update(notBefore=p["expires"])),
    ("not-before-not-a-date", _set_in("notBefore", value="2026-02-30T00:00:00Z")),
    ("root-functionary-not-listed", _set_in("root", "functionaries", value=["00" * 32])),
    ("root-threshold-above-functionaries", _set_in("root", "threshold", value=2)),
]


@pytest.mark.parametrize(
    ("case", "mutate"),
    POLICY_REFUSALS + POLICY_SCHEMA_ONLY_REFUSALS,
    ids=[c for c, _ in POLICY_REFUSALS + POLICY_SCHEMA_ONLY_REFUSALS],
)
def test_policy_schema_refuses_damaged_policy(
    checked_in_policy: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("policy.v2.schema.json", _mutated(checked_in_policy, mutate)) != []


@pytest.mark.parametrize(
    ("case", "mutate"),
    POLICY_REFUSALS + POLICY_LOADER_ONLY_REFUSALS,
    ids=[c for c, _ in POLICY_REFUSALS + POLICY_LOADER_ONLY_REFUSALS],
)
def test_policy_loader_refuses_damaged_policy(
    checked_in_policy: Json, case: str, mutate: Mutation
) -> None:
    _refused(
        lambda: TrustPolicy.from_dict(_mutated(checked_in_policy, mutate), where="policy.json")
    )


# Promotion registry: log entries and checkpoints (docs/registry.md)

MODEL_A = "61" * 32
MODEL_B = "77" * 32
KEY_OPS = "0d" * 32
KEY_RELEASE = "1b" * 32
ENTRY_HASH = "sha256:" + "c3" * 32
# The trust policy in force: version 2 entries and checkpoints record it, version 1 predate it.
POLICY_REF = PolicyRef(version=3, digest="sha256:" + "d5" * 32)
PROMOTION_SCHEMAS = {
    PROMOTION_V1: "promotion-predicate.v1.schema.json",
    PROMOTION_V2: "promotion-predicate.v2.schema.json",
}
CHECKPOINT_SCHEMAS = {
    CHECKPOINT_V1: "registry-checkpoint.v1.schema.json",
    CHECKPOINT_V2: "registry-checkpoint.v2.schema.json",
}


def _entry(**changes: Any) -> PromotionPredicate:
    """A canary promotion in the middle of a log, by two approvers."""
    entry = PromotionPredicate(
        position=5,
        previous_entry=ENTRY_HASH,
        action="promote",
        stage="canary",
        traffic=25,
        model_sha256=MODEL_B,
        previous_model=MODEL_A,
        approvers=(KEY_OPS, KEY_RELEASE),
        time="2026-11-26T20:01:23Z",
        reason="shadow clean for a day",
    )
    return dataclasses.replace(entry, **changes)


def _at(entry: PromotionPredicate, predicate_type: str) -> PromotionPredicate:
    """``entry`` as that version writes it: v2 names the policy in force, v1 none."""
    return dataclasses.replace(entry, policy=POLICY_REF if predicate_type == PROMOTION_V2 else None)


def _promotion_json(predicate_type: str) -> Json:
    return json.loads(json.dumps(_at(_entry(), predicate_type).to_dict()))  # type: ignore[no-any-return]


PROMOTION_ENTRIES: list[tuple[str, PromotionPredicate]] = [
    (
        "first-entry-to-shadow",
        _entry(
            position=1,
            previous_entry=None,
            stage="shadow",
            traffic=0,
            model_sha256=MODEL_A,
            previous_model=None,
            approvers=(KEY_RELEASE,),
            reason="",
        ),
    ),
    ("canary-by-two-approvers", _entry()),
    ("production", _entry(stage="production", traffic=100)),
    (
        "rollback",
        _entry(
            action="rollback",
            stage="production",
            traffic=100,
            model_sha256=MODEL_A,
            previous_model=MODEL_B,
        ),
    ),
]


@pytest.mark.parametrize("predicate_type", [PROMOTION_V1, PROMOTION_V2], ids=["v1", "v2"])
@pytest.mark.parametrize(
    "entry", [e for _, e in PROMOTION_ENTRIES], ids=[c for c, _ in PROMOTION_ENTRIES]
)
def test_promotion_predicate_matches_the_schema_and_loads_back(
    entry: PromotionPredicate, predicate_type: str
) -> None:
    entry = _at(entry, predicate_type)
    raw = json.loads(json.dumps(entry.to_dict()))

    assert entry.predicate_type == predicate_type
    assert ("policy" in raw) == (predicate_type == PROMOTION_V2)
    assert _errors(PROMOTION_SCHEMAS[predicate_type], raw) == []
    loaded = PromotionPredicate.from_dict(raw, where="entry", predicate_type=predicate_type)
    assert loaded == entry


@pytest.fixture(scope="module", params=[PROMOTION_V1, PROMOTION_V2], ids=["v1", "v2"])
def promotion_predicate(request: pytest.FixtureRequest) -> tuple[str, Json]:
    """A canary promotion as each version writes it: (predicate type, predicate)."""
    predicate_type: str = request.param
    return predicate_type, _promotion_json(predicate_type)


PROMOTION_PREDICATE_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-top-level-key", _set_in("signedAt", value="2026-11-26T20:01:23Z")),
    ("missing-reason", _drop("reason")),
    ("missing-previous-model", _drop("previousModel")),
    ("missing-log", _drop("log")),
    ("log-with-unknown-key", _set_in("log", "size", value=5)),
    ("log-without-position", _drop("log", "position")),
    ("position-zero", _set_in("log", "position", value=0)),
    ("position-as-string", _set_in("log", "position", value="5")),
    ("position-as-bool", _set_in("log", "position", value=True)),
    ("position-with-fraction", _set_in("log", "position", value=5.5)),
    ("previous-entry-without-prefix", _set_in("log", "previousEntry", value="c3" * 32)),
    ("previous-entry-uppercase", _set_in("log", "previousEntry", value="sha256:" + "C3" * 32)),
    ("previous-entry-null-after-the-first", _set_in("log", "previousEntry", value=None)),
    ("first-entry-with-a-previous-entry", _set_in("log", "position", value=1)),
    ("unknown-action", _set_in("action", value="demote")),
    ("candidate-is-not-a-stage", _set_in("stage", value="candidate")),
    ("unknown-stage", _set_in("stage", value="staging")),
    ("rollback-of-canary", _set_in("action", value="rollback")),
    ("traffic-above-100", _set_in("traffic", value=101)),
    ("negative-traffic", _set_in("traffic", value=-1)),
    ("traffic-as-string", _set_in("traffic", value="25")),
    ("traffic-with-fraction", _set_in("traffic", value=12.5)),
    ("model-sha256-prefixed", _set_in("model", "sha256", value="sha256:" + MODEL_B)),
    ("model-sha256-short", _set_in("model", "sha256", value=MODEL_B[:63])),
    ("model-sha256-uppercase", _set_in("model", "sha256", value=MODEL_B.upper().replace("7", "A"))),
    ("model-sha256-with-trailing-newline", _set_in("model", "sha256", value=MODEL_B + "\n")),
    ("model-with-unknown-key", _set_in("model", "name", value="model.rtm")),
    ("model-as-string", _set_in("model", value=MODEL_B)),
    ("previous-model-as-string", _set_in("previousModel", value=MODEL_A)),
    ("previous-model-without-sha256", _set_in("previousModel", value={})),
    ("no-approvers", _set_in("approvers", value=[])),
    ("approvers-as-string", _set_in("approvers", value=KEY_RELEASE)),
    ("approver-not-a-keyid", _set_in("approvers", value=["release"])),
    ("repeated-approver", _set_in("approvers", value=[KEY_RELEASE, KEY_RELEASE])),
    ("time-without-zone", _set_in("time", value="2026-11-26T20:01:23")),
    ("time-date-only", _set_in("time", value="2026-11-26")),
    ("time-with-offset", _set_in("time", value="2026-11-26T20:01:23+00:00")),
    ("time-as-number", _set_in("time", value=1795723283)),
    ("reason-null", _set_in("reason", value=None)),
    ("time-with-fraction", _set_in("time", value="2026-11-26T20:01:23.5Z")),
    ("time-in-month-13", _set_in("time", value="2026-13-26T20:01:23Z")),
    ("shadow-with-traffic", lambda p: p.update(stage="shadow", traffic=5)),
    ("canary-without-traffic", _set_in("traffic", value=0)),
    ("production-below-100", lambda p: p.update(stage="production", traffic=90)),
]

# Only the loader can check these.
PROMOTION_PREDICATE_LOADER_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("approvers-not-sorted", _set_in("approvers", value=[KEY_RELEASE, KEY_OPS])),
    ("time-on-february-30", _set_in("time", value="2026-02-30T20:01:23Z")),
]


@pytest.mark.parametrize(
    ("case", "mutate"),
    PROMOTION_PREDICATE_REFUSALS,
    ids=[c for c, _ in PROMOTION_PREDICATE_REFUSALS],
)
def test_promotion_predicate_schema_refuses_damaged_predicate(
    promotion_predicate: tuple[str, Json], case: str, mutate: Mutation
) -> None:
    predicate_type, predicate = promotion_predicate

    assert _errors(PROMOTION_SCHEMAS[predicate_type], _mutated(predicate, mutate)) != []


@pytest.mark.parametrize(
    ("case", "mutate"),
    PROMOTION_PREDICATE_REFUSALS + PROMOTION_PREDICATE_LOADER_ONLY_REFUSALS,
    ids=[c for c, _ in PROMOTION_PREDICATE_REFUSALS + PROMOTION_PREDICATE_LOADER_ONLY_REFUSALS],
)
def test_promotion_predicate_loader_refuses_damaged_predicate(
    promotion_predicate: tuple[str, Json], case: str, mutate: Mutation
) -> None:
    predicate_type, predicate = promotion_predicate
    damaged = _mutated(predicate, mutate)

    _refused(
        lambda: PromotionPredicate.from_dict(damaged, where="entry", predicate_type=predicate_type)
    )


def _policy_ref_refusals(
    v1: str, v2: str, *, v1_claims_v2: Mutation | None = None, v2_claims_v1: Mutation | None = None
) -> list[tuple[str, str, Mutation]]:
    """What a policy reference may not be: v2 requires a well-formed one, v1 forbids it."""
    cases: list[tuple[str, str, Mutation]] = [
        (v2, "v2-without-policy", _drop("policy")),
        (v2, "policy-null", _set_in("policy", value=None)),
        (v2, "policy-as-string", _set_in("policy", value=POLICY_REF.digest)),
        (v2, "policy-with-unknown-key", _set_in("policy", "expires", value="2100-01-01T00:00:00Z")),
        (v2, "policy-without-version", _drop("policy", "version")),
        (v2, "policy-without-digest", _drop("policy", "digest")),
        (v2, "policy-version-zero", _set_in("policy", "version", value=0)),
        (v2, "policy-version-as-bool", _set_in("policy", "version", value=True)),
        (v2, "policy-version-as-string", _set_in("policy", "version", value="3")),
        (v2, "policy-version-with-fraction", _set_in("policy", "version", value=2.5)),
        (v2, "policy-digest-without-prefix", _set_in("policy", "digest", value="d5" * 32)),
        (v2, "policy-digest-uppercase", _set_in("policy", "digest", value="sha256:" + "D5" * 32)),
        (v2, "policy-digest-short", _set_in("policy", "digest", value="sha256:" + "d5" * 31)),
        (
            v2,
            "policy-digest-other-algorithm",
            _set_in("policy", "digest", value="md5:" + "d5" * 16),
        ),
        (v1, "v1-with-policy", _set_in("policy", value=POLICY_REF.to_dict())),
    ]
    if v1_claims_v2 is not None and v2_claims_v1 is not None:
        cases += [(v1, "v1-claiming-v2", v1_claims_v2), (v2, "v2-claiming-v1", v2_claims_v1)]
    return cases


# The predicate type is the statement's, outside the predicate: an entry is read
# as the version its statement names.
PROMOTION_POLICY_REFUSALS = _policy_ref_refusals(PROMOTION_V1, PROMOTION_V2)


@pytest.mark.parametrize(
    ("predicate_type", "case", "mutate"),
    PROMOTION_POLICY_REFUSALS,
    ids=[c for _, c, _ in PROMOTION_POLICY_REFUSALS],
)
def test_promotion_predicate_schema_refuses_a_wrong_policy_reference(
    predicate_type: str, case: str, mutate: Mutation
) -> None:
    damaged = _mutated(_promotion_json(predicate_type), mutate)

    assert _errors(PROMOTION_SCHEMAS[predicate_type], damaged) != []


@pytest.mark.parametrize(
    ("predicate_type", "case", "mutate"),
    PROMOTION_POLICY_REFUSALS,
    ids=[c for _, c, _ in PROMOTION_POLICY_REFUSALS],
)
def test_promotion_predicate_loader_refuses_a_wrong_policy_reference(
    predicate_type: str, case: str, mutate: Mutation
) -> None:
    damaged = _mutated(_promotion_json(predicate_type), mutate)

    _refused(
        lambda: PromotionPredicate.from_dict(damaged, where="entry", predicate_type=predicate_type)
    )


def _served(model: str, traffic: int, position: int, *approvers: str) -> StageState:
    return StageState(model, traffic, position, approvers, f"2026-11-26T20:0{position}:00Z")


def _checkpoint(policy: PolicyRef | None = None) -> Checkpoint:
    """Model B in canary at 25% while model A serves production."""
    return Checkpoint(
        size=5,
        head=ENTRY_HASH,
        stages={
            "shadow": None,
            "canary": _served(MODEL_B, 25, 5, KEY_OPS, KEY_RELEASE),
            "production": _served(MODEL_A, 100, 3, KEY_RELEASE),
        },
        production_history=(MODEL_A,),
        reached={MODEL_A: ("canary", "production", "shadow"), MODEL_B: ("canary", "shadow")},
        policy=policy,
    )


def _checkpoint_json(version: str) -> Json:
    policy = POLICY_REF if version == CHECKPOINT_V2 else None
    return json.loads(json.dumps(_checkpoint(policy).to_dict()))  # type: ignore[no-any-return]


@pytest.mark.parametrize("policy", [None, POLICY_REF], ids=["v1", "v2"])
@pytest.mark.parametrize(
    "checkpoint", [Checkpoint.empty(), _checkpoint()], ids=["empty-log", "five-entries"]
)
def test_checkpoint_matches_the_schema_and_loads_back(
    checkpoint: Checkpoint, policy: PolicyRef | None
) -> None:
    # A registry records its policy before the first entry: an empty log may be v2.
    raw = json.loads(json.dumps(dataclasses.replace(checkpoint, policy=policy).to_dict()))

    assert raw["checkpoint"] == (CHECKPOINT_V1 if policy is None else CHECKPOINT_V2)
    assert _errors(CHECKPOINT_SCHEMAS[raw["checkpoint"]], raw) == []
    assert Checkpoint.from_dict(raw, where="checkpoint").to_dict() == raw


@pytest.mark.parametrize("predicate_type", [PROMOTION_V1, PROMOTION_V2], ids=["v1", "v2"])
def test_every_checkpoint_a_log_leads_to_matches_the_schema(predicate_type: str) -> None:
    """The states a write commits: promotions up the stages, a second model, a rollback."""
    log = [
        _entry(
            position=1,
            previous_entry=None,
            stage="shadow",
            traffic=0,
            model_sha256=MODEL_A,
            previous_model=None,
        ),
        _entry(position=2, stage="canary", traffic=10, model_sha256=MODEL_A, previous_model=None),
        _entry(
            position=3, stage="production", traffic=100, model_sha256=MODEL_A, previous_model=None
        ),
        _entry(position=4, stage="shadow", traffic=0, previous_model=None),
        _entry(position=5, previous_model=None),
        _entry(position=6, stage="production", traffic=100),
        _entry(
            position=7,
            action="rollback",
            stage="production",
            traffic=100,
            model_sha256=MODEL_A,
            previous_model=MODEL_B,
        ),
    ]
    state = Checkpoint.empty()
    for entry in (_at(e, predicate_type) for e in log):
        state = apply_entry(state, f"sha256:{entry.position:064x}", entry)
        raw = json.loads(json.dumps(state.to_dict()))

        assert state.policy == entry.policy  # the policy of the head entry
        assert _errors(CHECKPOINT_SCHEMAS[raw["checkpoint"]], raw) == [], entry.position
        assert Checkpoint.from_dict(raw, where="checkpoint").to_dict() == raw
    assert state.production_history == (MODEL_B, MODEL_A)  # each model once, latest last


@pytest.fixture(scope="module", params=[CHECKPOINT_V1, CHECKPOINT_V2], ids=["v1", "v2"])
def checkpoint(request: pytest.FixtureRequest) -> Json:
    return _checkpoint_json(request.param)


def _canary_state(c: Json) -> Json:
    state: Json = c["stages"]["canary"]
    return state


CHECKPOINT_REFUSALS: list[tuple[str, Mutation]] = [
    ("unknown-top-level-key", _set_in("signedAt", value="2026-11-26T20:01:23Z")),
    ("missing-reached", _drop("reached")),
    ("missing-production-history", _drop("productionHistory")),
    ("unknown-version", _set_in("checkpoint", value="https://retrain.dev/registry/checkpoint/v3")),
    ("missing-version", _drop("checkpoint")),
    ("negative-size", _set_in("size", value=-1)),
    ("size-as-string", _set_in("size", value="5")),
    ("size-as-bool", _set_in("size", value=True)),
    ("head-without-prefix", _set_in("head", value="c3" * 32)),
    ("head-null-with-entries", _set_in("head", value=None)),
    ("head-of-an-empty-log", _set_in("size", value=0)),
    ("stages-without-shadow", _drop("stages", "shadow")),
    ("stages-with-unknown-stage", _set_in("stages", "staging", value=None)),
    ("stages-as-list", _set_in("stages", value=[])),
    ("stage-state-as-string", _set_in("stages", "canary", value=MODEL_B)),
    ("stage-state-with-unknown-key", lambda c: _canary_state(c).update(reason="")),
    ("stage-state-without-time", lambda c: _canary_state(c).pop("time")),
    ("stage-state-without-approvers", lambda c: _canary_state(c).pop("approvers")),
    ("stage-model-prefixed", lambda c: _canary_state(c).update(model="sha256:" + MODEL_B)),
    ("stage-traffic-above-100", lambda c: _canary_state(c).update(traffic=101)),
    ("stage-position-zero", lambda c: _canary_state(c).update(position=0)),
    ("stage-time-with-offset", lambda c: _canary_state(c).update(time="2026-11-26T20:05:00+00:00")),
    ("production-history-as-string", _set_in("productionHistory", value=MODEL_A)),
    ("production-history-prefixed", _set_in("productionHistory", value=["sha256:" + MODEL_A])),
    ("reached-as-list", _set_in("reached", value=[])),
    ("stage-approvers-empty", lambda c: _canary_state(c).update(approvers=[])),
    ("stage-approvers-as-string", lambda c: _canary_state(c).update(approvers=KEY_OPS)),
    ("stage-approver-not-a-keyid", lambda c: _canary_state(c).update(approvers=["release"])),
    ("stage-time-with-fraction", lambda c: _canary_state(c).update(time="2026-11-26T20:05:00.5Z")),
    ("shadow-with-traffic", lambda c: c["stages"].update(shadow=dict(_canary_state(c)))),
    ("canary-without-traffic", lambda c: _canary_state(c).update(traffic=0)),
    ("production-below-100", lambda c: c["stages"]["production"].update(traffic=75)),
    ("production-history-repeats-a-model", _set_in("productionHistory", value=[MODEL_A] * 2)),
    ("reached-by-another-name", _set_in("reached", value={"model.rtm": ["shadow"]})),
    ("reached-an-unknown-stage", _set_in("reached", "61" * 32, value=["staging"])),
    ("reached-nothing", _set_in("reached", "61" * 32, value=[])),
    ("stage-approvers-repeated", lambda c: _canary_state(c).update(approvers=[KEY_OPS] * 2)),
    ("reached-a-stage-twice", _set_in("reached", "61" * 32, value=["shadow", "shadow"])),
    ("rolled-back-repeats-a-model", _set_in("rolledBack", value=[MODEL_A] * 2)),
]

# Only the loader can check these: JSON Schema cannot say "sorted".
CHECKPOINT_LOADER_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    (
        "stage-approvers-not-sorted",
        lambda c: _canary_state(c).update(approvers=[KEY_RELEASE, KEY_OPS]),
    ),
    ("reached-not-sorted", _set_in("reached", "61" * 32, value=["shadow", "canary"])),
    ("rolled-back-not-sorted", _set_in("rolledBack", value=[MODEL_B, MODEL_A])),
    ("stage-time-on-february-30", lambda c: _canary_state(c).update(time="2026-02-30T20:05:00Z")),
]


@pytest.mark.parametrize(
    ("case", "mutate"),
    CHECKPOINT_REFUSALS,
    ids=[c for c, _ in CHECKPOINT_REFUSALS],
)
def test_checkpoint_schema_refuses_damaged_checkpoint(
    checkpoint: Json, case: str, mutate: Mutation
) -> None:
    schema = CHECKPOINT_SCHEMAS[checkpoint["checkpoint"]]

    assert _errors(schema, _mutated(checkpoint, mutate)) != []


@pytest.mark.parametrize(
    ("case", "mutate"),
    CHECKPOINT_REFUSALS + CHECKPOINT_LOADER_ONLY_REFUSALS,
    ids=[c for c, _ in CHECKPOINT_REFUSALS + CHECKPOINT_LOADER_ONLY_REFUSALS],
)
def test_checkpoint_loader_refuses_damaged_checkpoint(
    checkpoint: Json, case: str, mutate: Mutation
) -> None:
    _refused(lambda: Checkpoint.from_dict(_mutated(checkpoint, mutate), where="checkpoint"))


# The version is named inside a checkpoint: no checkpoint schema may admit these.
CHECKPOINT_POLICY_REFUSALS = _policy_ref_refusals(
    CHECKPOINT_V1,
    CHECKPOINT_V2,
    v1_claims_v2=_set_in("checkpoint", value=CHECKPOINT_V2),
    v2_claims_v1=_set_in("checkpoint", value=CHECKPOINT_V1),
)


@pytest.mark.parametrize(
    ("version", "case", "mutate"),
    CHECKPOINT_POLICY_REFUSALS,
    ids=[c for _, c, _ in CHECKPOINT_POLICY_REFUSALS],
)
def test_checkpoint_schemas_refuse_a_wrong_policy_reference(
    version: str, case: str, mutate: Mutation
) -> None:
    damaged = _mutated(_checkpoint_json(version), mutate)

    for schema in CHECKPOINT_SCHEMAS.values():
        assert _errors(schema, damaged) != [], schema


@pytest.mark.parametrize(
    ("version", "case", "mutate"),
    CHECKPOINT_POLICY_REFUSALS,
    ids=[c for _, c, _ in CHECKPOINT_POLICY_REFUSALS],
)
def test_checkpoint_loader_refuses_a_wrong_policy_reference(
    version: str, case: str, mutate: Mutation
) -> None:
    damaged = _mutated(_checkpoint_json(version), mutate)

    _refused(lambda: Checkpoint.from_dict(damaged, where="checkpoint"))


# DSSE envelopes


def test_envelope_signed_by_sign_statement_matches_the_dsse_schema(
    signed_envelope: Json, key_pairs: dict[str, KeyPairPaths]
) -> None:
    assert sorted(s["keyid"] for s in signed_envelope["signatures"]) == sorted(
        pair.keyid for pair in key_pairs.values()
    )
    assert _errors("dsse-envelope.schema.json", signed_envelope) == []


def _dataset_statement(predicate: DatasetPredicate) -> bytes:
    return Statement(
        subjects=(
            ResourceDescriptor(
                name=f"dataset/{predicate.name}",
                digest={"sha256": predicate.dataset_digest.removeprefix("sha256:")},
            ),
            ResourceDescriptor(
                name=predicate.manifest_uri, digest={"sha256": predicate.manifest_sha256}
            ),
        ),
        predicate_type=DATASET_V1,
        predicate=predicate.to_dict(),
    ).to_json_bytes()


def test_every_line_sign_chain_writes_matches_the_dsse_schema(
    tmp_path: Path,
    tiny_table: pa.Table,
    tiny_model_bytes: bytes,
    evaluation_predicate: Json,
    built_statement: Json,
    key_pairs: dict[str, KeyPairPaths],
) -> None:
    (tmp_path / "model.rtm").write_bytes(tiny_model_bytes)
    for name, data in BUILD_OUTPUTS.items():
        (tmp_path / name).write_bytes(data)
    dataset = _dataset_predicate(tiny_table, root="data/default")
    # A manifest at the repository root names no file of the model directory:
    # dataset links are never checked for file subjects when signing.
    holdout = dataclasses.replace(dataset, name="holdout", manifest_uri="holdout.json")
    statements = {
        "dataset": _dataset_statement(dataset),
        "holdout": _dataset_statement(holdout),
        "build": json.dumps(built_statement).encode(),
        "evaluation": Statement(
            subjects=(
                ResourceDescriptor(
                    name="model.rtm", digest={"sha256": sha256_bytes(tiny_model_bytes)}
                ),
            ),
            predicate_type=EVALUATION_V2,
            predicate=evaluation_predicate,
        ).to_json_bytes(),
    }

    chain = sign_chain(tmp_path, statements, [load_signer(key_pairs["release"].private)])

    assert [p.name for p in chain.files] == [LINK_FILES[link] for link in statements]
    for path in chain.files:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1, path.name
        assert _errors("dsse-envelope.schema.json", json.loads(lines[0])) == [], path.name


ENVELOPE_REFUSALS: list[tuple[str, Mutation]] = [
    ("missing-payload-type", _drop("payloadType")),
    ("missing-signatures", _drop("signatures")),
    ("unknown-top-level-key", _set_in("payloadEncoding", value="base64")),
    ("payload-not-base64", _set_in("payload", value="not base64!")),
    ("payload-without-padding", _set_in("payload", value="eyJ")),
    ("payload-as-number", _set_in("payload", value=7)),
    ("payload-type-as-number", _set_in("payloadType", value=1)),
    ("signatures-as-object", lambda e: e.update(signatures=e["signatures"][0])),
    ("signature-without-sig", lambda e: e["signatures"][0].pop("sig")),
    ("signature-without-keyid", lambda e: e["signatures"][0].pop("keyid")),
    ("sig-as-number", lambda e: e["signatures"][0].update(sig=3)),
    ("sig-not-base64", lambda e: e["signatures"][0].update(sig="not base64!")),
    ("keyid-as-number", lambda e: e["signatures"][0].update(keyid=1)),
    ("signature-as-string", lambda e: e.update(signatures=["MEYCIQ=="])),
]

# read_envelopes accepts these; retrain verify then refuses them in its
# payload-type and signature-threshold checks (exit 1, not 2).
ENVELOPE_SCHEMA_ONLY_REFUSALS: list[tuple[str, Mutation]] = [
    ("other-payload-type", _set_in("payloadType", value="application/json")),
    ("no-signatures", _set_in("signatures", value=[])),
    ("keyid-not-hex", lambda e: e["signatures"][0].update(keyid="release-key")),
    ("signature-with-extra-key", lambda e: e["signatures"][0].update(cert="-----BEGIN")),
]


@pytest.mark.parametrize(
    ("case", "mutate"),
    ENVELOPE_REFUSALS + ENVELOPE_SCHEMA_ONLY_REFUSALS,
    ids=[c for c, _ in ENVELOPE_REFUSALS + ENVELOPE_SCHEMA_ONLY_REFUSALS],
)
def test_dsse_schema_refuses_damaged_envelope(
    signed_envelope: Json, case: str, mutate: Mutation
) -> None:
    assert _errors("dsse-envelope.schema.json", _mutated(signed_envelope, mutate)) != []


@pytest.mark.parametrize(
    ("case", "mutate"), ENVELOPE_REFUSALS, ids=[c for c, _ in ENVELOPE_REFUSALS]
)
def test_envelope_reader_refuses_what_the_schema_refuses(
    tmp_path: Path, signed_envelope: Json, case: str, mutate: Mutation
) -> None:
    path = tmp_path / "evaluation.intoto.jsonl"
    path.write_text(json.dumps(_mutated(signed_envelope, mutate)) + "\n", encoding="utf-8")

    with pytest.raises(RetrainError):
        read_envelopes(path)


# The documented checks an auditor can run without retrain


def test_documented_keyid_is_the_keyid_of_generated_and_checked_in_keys(
    key_pairs: dict[str, KeyPairPaths], checked_in_policy: Json
) -> None:
    keyid_of = _doc_namespace("attestations.md")["keyid_of"]

    for pair in key_pairs.values():
        assert keyid_of(pair.public.read_text(encoding="ascii")) == pair.keyid
    for keyid, entry in checked_in_policy["keys"].items():
        assert keyid_of(entry["public"]) == keyid


def test_documented_envelope_check_returns_the_statement_retrain_signed(
    signed_envelope: Json, key_pairs: dict[str, KeyPairPaths]
) -> None:
    verified_statement = _doc_namespace("attestations.md")["verified_statement"]
    line = serialize_envelopes([_envelope_of(signed_envelope)]).decode().splitlines()[0]

    for pair in key_pairs.values():
        statement = verified_statement(line, pair.public.read_text(encoding="ascii"))
        assert statement["predicateType"] == EVALUATION_V2


def test_documented_envelope_check_refuses_a_payload_changed_after_signing(
    signed_envelope: Json, key_pairs: dict[str, KeyPairPaths]
) -> None:
    import base64

    from cryptography.exceptions import InvalidSignature

    verified_statement = _doc_namespace("attestations.md")["verified_statement"]
    payload = base64.b64decode(signed_envelope["payload"]).replace(b'"auc"', b'"AUC"')
    tampered = dict(signed_envelope, payload=base64.b64encode(payload).decode())

    with pytest.raises(InvalidSignature):
        verified_statement(json.dumps(tampered), key_pairs["release"].public.read_text())


def _envelope_of(raw: Json) -> Any:
    from securesystemslib.dsse import Envelope

    return Envelope.from_dict(copy.deepcopy(raw))
