"""Validation in the build: gates decided, attested and tested; bad validation input stops the build.

All of it runs real Bazel in the session's scratch workspace. Each test
restores what it changes.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from retrain.manifest import create_manifest
from tests.bazel_harness import REPO_ROOT, BazelWorkspace, sha256_of, write_champion_package

pytestmark = [pytest.mark.bazel, pytest.mark.slow]

RETRAIN = Path(sys.executable).parent / "retrain"
Edit = Callable[[str, Callable[[bytes], bytes]], Path]


@pytest.fixture
def edit(scratch: BazelWorkspace) -> Iterator[Edit]:
    """edit(relpath, transform): change a scratch file for this test only."""
    saved: dict[Path, bytes | None] = {}

    def apply(rel: str, transform: Callable[[bytes], bytes]) -> Path:
        path = scratch.root / rel
        if path not in saved:
            saved[path] = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(transform(path.read_bytes() if path.exists() else b""))
        return path

    yield apply
    for path, data in saved.items():
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)


def _errors(result: object) -> list[str]:
    text = result.stdout + result.stderr  # type: ignore[attr-defined]
    return [line for line in text.splitlines() if line.startswith("retrain: error:")]


def _out(scratch: BazelWorkspace) -> Path:
    return scratch.bazel_bin() / "models" / "candidate"


def _production_model(root: Path) -> str:
    """The sha256 of the model serving production in ``root``'s committed registry."""
    from retrain.attest.trust import load_policy
    from retrain.registry import Registry

    registry = Registry(
        root / "attestations" / "registry", load_policy(root / "attestations" / "policy.json")
    )
    serving = registry.read_checkpoint().stages["production"]
    return serving.model_sha256


def test_gates_pass_and_the_gates_test_passes(scratch: BazelWorkspace) -> None:
    scratch.must_build("//models:candidate")
    gates = (_out(scratch) / "gates.txt").read_text()
    assert gates.splitlines()[-1].startswith("PASSED:")
    result = scratch.run("test", "--color=no", "--symlink_prefix=/", "//models:gates")
    assert result.ok, result.stdout + result.stderr


def test_the_champion_is_the_model_serving_production_in_the_registry(
    scratch: BazelWorkspace,
) -> None:
    scratch.must_build("//models:candidate")
    production = _production_model(scratch.root)
    metrics = json.loads((_out(scratch) / "metrics.json").read_text())
    assert metrics["champion"]["sha256"] == production
    gates = (_out(scratch) / "gates.txt").read_text()
    assert "PASSED  auc-not-worse-than-champion: candidate - champion auc" in gates
    # The provenance names it as an input, by digest.
    provenance = json.loads((_out(scratch) / "provenance.json").read_text())
    deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d for d in deps if d["name"] == "champion"] == [
        {"name": "champion", "digest": {"sha256": production}, "annotations": {"role": "champion"}}
    ]


def test_with_nothing_in_production_there_is_no_champion_yet(scratch: BazelWorkspace) -> None:
    registry = scratch.root / "attestations" / "registry"
    moved = scratch.root.parent / "registry-aside"
    registry.rename(moved)
    try:
        scratch.must_build("//models:candidate")
        gates = (_out(scratch) / "gates.txt").read_text()
        html = (_out(scratch) / "report.html").read_text()
        metrics = json.loads((_out(scratch) / "metrics.json").read_text())
    finally:
        moved.rename(registry)
    assert "SKIPPED auc-not-worse-than-champion: no champion yet" in gates
    assert gates.splitlines()[-1].startswith("PASSED:")
    assert "No champion yet" in html
    assert metrics["champion"] is None


def test_a_production_model_missing_from_the_store_fails_the_build_with_one_line(
    scratch: BazelWorkspace,
) -> None:
    production = _production_model(scratch.root)
    stored = scratch.root / "attestations" / "registry" / "models" / production
    aside = scratch.root.parent / "stored-model-aside"
    stored.rename(aside)
    try:
        result = scratch.build("//models:candidate")
    finally:
        aside.rename(stored)
    assert not result.ok
    assert "Traceback" not in result.stdout + result.stderr
    assert _errors(result) == [
        f"retrain: error: {stored.relative_to(scratch.root)}/model.rtm: the model serving "
        f"production is not in the registry's model store: expected model.rtm with sha256 "
        f"{production}, found no file"
    ]


def test_a_registry_whose_checkpoint_was_edited_fails_the_build(scratch: BazelWorkspace) -> None:
    checkpoint = scratch.root / "attestations" / "registry" / "checkpoint.json"
    original = checkpoint.read_bytes()
    envelope = json.loads(original)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["stages"]["production"]["traffic"] = 99
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    checkpoint.write_text(json.dumps(envelope) + "\n")
    try:
        result = scratch.build("//models:candidate")
    finally:
        checkpoint.write_bytes(original)
    assert not result.ok
    errors = _errors(result)
    assert errors, result.stdout + result.stderr
    assert "checkpoint" in errors[0], errors


def test_a_failing_gate_is_recorded_fails_the_gates_test_and_verify(
    scratch: BazelWorkspace, edit: Edit, test_policy_path: Path
) -> None:
    edit("models/candidate.gates.toml", lambda b: b.replace(b"lower = 0.68", b"lower = 0.99"))
    scratch.must_build("//models:candidate")  # a failed gate does not fail the build
    gates = (_out(scratch) / "gates.txt").read_text()
    line = next(ln for ln in gates.splitlines() if ln.startswith("FAILED  auc-floor:"))
    assert "95% CI [" in line and "misses >= 0.99" in line
    test = scratch.run(
        "test", "--color=no", "--symlink_prefix=/", "--test_output=all", "//models:gates"
    )
    assert test.returncode != 0
    assert "FAILED  auc-floor" in test.stdout + test.stderr
    metrics = json.loads((_out(scratch) / "metrics.json").read_text())
    assert metrics["gates"]["passed"] is False
    verify = subprocess.run(
        [
            str(RETRAIN),
            "verify",
            str(_out(scratch)),
            "--policy",
            str(test_policy_path),
            "--repo",
            str(scratch.root),
        ],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 1
    assert any(
        "[evaluation] gates:" in ln and "auc-floor" in ln for ln in verify.stderr.splitlines()
    ), verify.stderr


def test_the_report_is_written_with_the_validation(scratch: BazelWorkspace) -> None:
    scratch.must_build("//models:candidate")
    html = (_out(scratch) / "report.html").read_text()
    assert "calibration-curve" in html and _production_model(scratch.root)[:12] in html
    assert "http://" not in html.split("</head>")[0] and "<script src" not in html


# ---------------------------------------------------------------------------
# A champion


@pytest.fixture
def champion(scratch: BazelWorkspace, test_policy_path: Path, edit: Edit) -> Iterator[Path]:
    """//champion:champion: a copy of a real signed build, wired into the pipeline."""
    scratch.must_build("//models:candidate")
    pkg = scratch.root / "champion"
    if pkg.exists():
        shutil.rmtree(pkg)
    assert write_champion_package(pkg, _out(scratch), test_policy_path) == "//champion"
    edit(
        "models/BUILD.bazel",
        lambda b: b.replace(
            b'    champion = "//attestations:production",\n',
            b'    champion = "//champion",\n',
            1,
        ),
    )
    yield pkg
    shutil.rmtree(pkg)


def test_with_a_champion_the_comparative_gates_decide(
    scratch: BazelWorkspace, champion: Path
) -> None:
    scratch.must_build("//models:candidate")
    metrics = json.loads((_out(scratch) / "metrics.json").read_text())
    assert metrics["champion"]["sha256"] == sha256_of(champion / "model.rtm")
    # The same recipe and data: the candidate is the champion, the difference exactly 0.
    assert metrics["champion"]["differences"]["auc"]["value"] == 0.0
    statuses = {v["name"]: v["status"] for v in metrics["gates"]["verdicts"] if v["slice"] is None}
    assert statuses["auc-not-worse-than-champion"] == "passed"
    assert statuses["log-loss-not-worse-than-champion"] == "passed"


def test_a_candidate_worse_than_the_champion_fails_the_change_gate(
    scratch: BazelWorkspace, champion: Path, edit: Edit
) -> None:
    edit("models/candidate.recipe.json", lambda b: b.replace(b'"max_iter": 200', b'"max_iter": 3'))
    scratch.must_build("//models:candidate")
    gates = (_out(scratch) / "gates.txt").read_text()
    assert "FAILED  auc-not-worse-than-champion: candidate - champion auc" in gates


def test_a_champion_whose_attestation_does_not_verify_fails_the_build(
    scratch: BazelWorkspace, champion: Path
) -> None:
    data = bytearray((champion / "model.rtm").read_bytes())
    data[200] ^= 0x01
    (champion / "model.rtm").write_bytes(bytes(data))
    result = scratch.build("//models:candidate")
    assert result.returncode != 0
    (line,) = _errors(result)
    assert "champion's attestation does not verify" in line and "model.rtm" in line


# ---------------------------------------------------------------------------
# Bad validation input stops the build with one line and no new report


def _assert_fails_cleanly(scratch: BazelWorkspace, *needles: str) -> None:
    out = _out(scratch)
    before = {f.name: sha256_of(f) for f in out.iterdir()} if out.exists() else {}
    result = scratch.build("//models:candidate")
    assert result.returncode != 0
    errors = _errors(result)
    assert len(errors) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert "Traceback" not in result.stdout + result.stderr
    # Nothing new was written: each output is gone (Bazel removes the outputs
    # of an action it re-runs) or still the last good build's.
    after = {f.name: sha256_of(f) for f in out.iterdir()} if out.exists() else {}
    for name in ("report.html", "metrics.json", "gates.txt", "evaluation.intoto.jsonl"):
        assert name not in after or after[name] == before.get(name), name


def test_a_gate_spec_naming_an_unknown_metric_stops_the_build(
    scratch: BazelWorkspace, edit: Edit
) -> None:
    edit(
        "models/candidate.gates.toml",
        lambda b: b.replace(b'metric = "ece"', b'metric = "f1_macro"'),
    )
    _assert_fails_cleanly(scratch, "candidate.gates.toml", "unknown metric", "found 'f1_macro'")


def test_a_gate_spec_slicing_by_a_missing_feature_stops_the_build(
    scratch: BazelWorkspace, edit: Edit
) -> None:
    edit(
        "models/candidate.gates.toml",
        lambda b: b.replace(b"[[slices]]", b'[[slices]]\nfeature = "zodiac_sign"\n\n[[slices]]', 1),
    )
    _assert_fails_cleanly(scratch, "slices by 'zodiac_sign'", "which the holdout does not have")


def test_an_empty_declared_slice_stops_the_build(scratch: BazelWorkspace, edit: Edit) -> None:
    edit(
        "models/candidate.gates.toml",
        lambda b: b.replace(
            b'feature = "employment"', b'feature = "employment"\nvalues = ["salaried", "astronaut"]'
        ),
    )
    _assert_fails_cleanly(scratch, "slice employment=astronaut is empty")


def _replace_holdout(scratch: BazelWorkspace, edit: Edit, table: pa.Table) -> None:
    """Swap the scratch holdout's data for ``table``, with a manifest that pins it."""
    payload = _write(table)
    path = edit("data/holdout/part-00000.parquet", lambda _: payload)
    manifest = create_manifest(path.parent, name="holdout")
    edit("data_manifests/holdout.json", lambda _: manifest.to_json_bytes())


def _write(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _holdout(scratch: BazelWorkspace) -> pa.Table:
    return pq.read_table(scratch.root / "data" / "holdout" / "part-00000.parquet")


def test_a_holdout_that_leaks_training_rows_stops_the_build(
    scratch: BazelWorkspace, edit: Edit
) -> None:
    training = pq.read_table(scratch.root / "data" / "default" / "part-00000.parquet").slice(0, 25)
    holdout = _holdout(scratch)
    leaked = pa.concat_tables([holdout.slice(25), training.cast(holdout.schema)])
    _replace_holdout(scratch, edit, leaked)
    _assert_fails_cleanly(
        scratch,
        "holdout leaks into training dataset default",
        "25 identical rows",
        "first customer_id",
    )


def test_a_holdout_with_one_class_stops_the_build(scratch: BazelWorkspace, edit: Edit) -> None:
    holdout = _holdout(scratch)
    negatives = holdout.filter(pc.equal(holdout.column("default_90d"), 0))
    _replace_holdout(scratch, edit, negatives)
    _assert_fails_cleanly(scratch, "holdout", "single class", "0 positives")


def test_nan_labels_in_the_holdout_stop_the_build(scratch: BazelWorkspace, edit: Edit) -> None:
    holdout = _holdout(scratch)
    labels = holdout.column("default_90d").cast(pa.float64()).to_numpy().copy()
    labels[7] = float("nan")
    i = holdout.schema.get_field_index("default_90d")
    with_nan = holdout.set_column(i, pa.field("default_90d", pa.float64()), pa.array(labels))
    _replace_holdout(scratch, edit, with_nan)
    _assert_fails_cleanly(
        scratch, "label column 'default_90d' has an unknown value at row 7", "found NaN"
    )


def test_an_unknown_label_value_stops_the_build(scratch: BazelWorkspace, edit: Edit) -> None:
    holdout = _holdout(scratch)
    labels = holdout.column("default_90d").to_numpy().copy()
    labels[3] = 2
    i = holdout.schema.get_field_index("default_90d")
    bad = holdout.set_column(i, holdout.schema.field("default_90d"), pa.array(labels))
    _replace_holdout(scratch, edit, bad)
    _assert_fails_cleanly(scratch, "unknown value at row 3", "expected 0 or 1", "found 2")


def test_the_repository_gates_pass_with_bazel_test(
    repo_bazel: BazelWorkspace, candidate: dict[str, str]
) -> None:
    result = repo_bazel.run("test", "--color=no", "--symlink_prefix=/", "//models:gates")
    assert result.ok, result.stdout[-2000:] + result.stderr[-2000:]
    assert REPO_ROOT.joinpath("models/candidate.gates.toml").exists()
