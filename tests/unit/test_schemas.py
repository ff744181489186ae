"""The on-disk formats against their JSON Schemas (docs/schemas/), and the docs against the code.

Real files (the checked-in manifests and recipes) and files the code writes (a
model header, provenance statements) must validate; damaged variants must not,
and where the loader is the authority it must refuse them too. The Python
snippets in docs/*.md are executed and compared with the library, so the
documented algorithms cannot drift from the implemented ones.
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
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from jsonschema import Draft202012Validator

from retrain.attest.provenance import (
    BuildProvenance,
    ResourceDescriptor,
    digest_of_description,
)
from retrain.datagen import GeneratorSpec, generate_table
from retrain.digest import sha256_bytes, sha256_file, tree_digest
from retrain.errors import RetrainError
from retrain.hermetic import ACTION_ENV, blas_report, expected_blas_coretype
from retrain.manifest import DataManifest, create_manifest, load_manifest
from retrain.model import Model
from retrain.recipe import TrainingRecipe, load_recipe
from retrain.serialize import model_to_bytes, read_model_header
from retrain.split import holdout_mask
from retrain.train import train_model

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SCHEMAS = DOCS / "schemas"
MANIFESTS = sorted((REPO / "data_manifests").glob("*.json"))
RECIPES = sorted((REPO / "models").glob("*.recipe.json"))
CANDIDATE_RECIPE = REPO / "models" / "candidate.recipe.json"

Json = dict[str, Any]
Mutation = Callable[[Json], None]


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


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


@pytest.mark.parametrize(
    "name",
    [
        "manifest.v1.schema.json",
        "recipe.v1.schema.json",
        "model-header.v1.schema.json",
        "provenance.v1.schema.json",
    ],
)
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


@pytest.fixture(scope="module")
def candidate_recipe_json() -> Json:
    return _read_json(CANDIDATE_RECIPE)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_checked_in_recipe_matches_the_recipe_schema(path: Path) -> None:
    assert _errors("recipe.v1.schema.json", _read_json(path)) == []


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
        split = dataclasses.replace(
            load_recipe(CANDIDATE_RECIPE).split, salt=salt, holdout_fraction=fraction
        )

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
    report = json.dumps({"training": {"rows_total": 3000}}).encode()
    subjects = tuple(
        ResourceDescriptor(name=name, digest={"sha256": sha256_bytes(data)})
        for name, data in (("model.rtm", tiny_model_bytes), ("train_report.json", report))
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
