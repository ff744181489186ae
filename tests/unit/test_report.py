"""The HTML validation report, rendered from inputs the library really produces.

Data are generated, two models trained (candidate and champion), the
candidate validated with the checked-in gate spec (fewer resamples, for
speed) with and without the champion, and the datasets checked against
their quality specs; the inputs then go through JSON as the build writes
them. ``report_inputs`` is shared with the Chromium rendering test.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from retrain import __version__
from retrain._internal.fsio import pretty_json
from retrain.attest.predicates import DatasetPredicate
from retrain.datagen import GeneratorSpec, generate_table, write_dataset
from retrain.digest import sha256_bytes, sha256_file
from retrain.gates import load_gate_spec
from retrain.manifest import create_manifest
from retrain.metrics import METRIC_NAMES
from retrain.quality import load_quality_spec, profile_table, run_quality_checks
from retrain.recipe import load_recipe
from retrain.report import render_report
from retrain.serialize import model_to_bytes
from retrain.train import train_model
from retrain.validation import validate_candidate

REPO = Path(__file__).resolve().parents[2]
TARGET = "//models:candidate"
GATES = "models/candidate.gates.toml"
RECIPE = "models/candidate.recipe.json"
TRAINING = GeneratorSpec(rows=6000, seed=1)
HOLDOUT = GeneratorSpec(rows=3000, seed=2, id_offset=1_000_000)
MALICIOUS = "<script>alert(1)</script>"

Json = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ReportInputs:
    """Everything render_report takes, with and without a champion."""

    metrics: Json
    metrics_without_champion: Json
    train_report: Json
    datasets: list[Json]

    def render(self, *, champion: bool = True, **changes: Any) -> str:
        kwargs: dict[str, Any] = {
            "metrics": self.metrics if champion else self.metrics_without_champion,
            "train_report": self.train_report,
            "datasets": self.datasets,
            "target": TARGET,
        }
        return render_report(**(kwargs | changes))


def _roundtrip(value: object) -> Any:
    """As the build writes the file and the report action reads it back."""
    return json.loads(pretty_json(value))


def _dataset_predicate(
    base: Path,
    name: str,
    spec: GeneratorSpec,
    table: pa.Table,
    reference: pa.Table | None,
) -> Json:
    root = base / "data" / name
    write_dataset(spec, root, files=2)
    manifest = create_manifest(root, name=name)
    manifest_path = base / "data_manifests" / f"{name}.json"
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_bytes(manifest.to_json_bytes())
    quality_path = REPO / "data_manifests" / f"{name}.quality.toml"
    verdicts = run_quality_checks(
        table, load_quality_spec(quality_path), reference=reference, where=name
    )
    quality = {
        "profile": profile_table(table),
        "spec": {
            "path": f"data_manifests/{name}.quality.toml",
            "sha256": sha256_file(quality_path).sha256,
        },
        "checks": [v.to_dict() for v in verdicts],
        "passed": all(v.passed for v in verdicts),
    }
    predicate = DatasetPredicate(
        name=manifest.name,
        dataset_digest=manifest.dataset_digest,
        manifest_uri=f"data_manifests/{name}.json",
        manifest_sha256=sha256_file(manifest_path).sha256,
        rows=manifest.rows,
        files=len(manifest.entries),
        bytes=manifest.total_bytes,
        schema_fingerprint=manifest.schema_fingerprint,
        root=f"data/{name}",
        checks=("listed-files", "containment", "size", "sha256", "rows", "schema"),
        quality=quality,
        verifier={"retrain": __version__},
    )
    return _roundtrip(predicate.to_dict())  # type: ignore[no-any-return]


def _quality_failures(datasets: list[Json]) -> list[str]:
    # As the evaluation action turns the dataset statements into gate input.
    return [
        f"{p['dataset']['name']}: {c['check']}{'(' + c['column'] + ')' if c.get('column') else ''} "
        f"measured {c['measured']}, expected {c['threshold']}"
        for p in datasets
        for c in p["quality"]["checks"]
        if not c["passed"]
    ]


def report_inputs(base: Path) -> ReportInputs:
    """Real metrics.json, train_report.json and dataset predicates, built in ``base``."""
    training = generate_table(TRAINING)
    holdout = generate_table(HOLDOUT)
    recipe = load_recipe(REPO / RECIPE)
    candidate_recipe = dataclasses.replace(recipe, params=dict(recipe.params, max_iter=20))
    champion_recipe = dataclasses.replace(
        recipe, params=dict(recipe.params, max_iter=8, learning_rate=0.1, max_leaf_nodes=7)
    )
    lineage = {
        "recipe": {"name": recipe.name, "sha256": sha256_file(REPO / RECIPE).sha256},
        "dataset": {"name": "default", "digest": ""},
        "code_digest": "sha256:" + "c0" * 32,
        "lock_sha256": "10" * 32,
        "retrain_version": __version__,
    }
    datasets = [
        _dataset_predicate(base, "default", TRAINING, training, None),
        _dataset_predicate(base, "holdout", HOLDOUT, holdout, training),
    ]
    training_ref = {"name": "default", "digest": datasets[0]["dataset"]["digest"]}
    holdout_ref = {"name": "holdout", "digest": datasets[1]["dataset"]["digest"]}
    lineage["dataset"] = training_ref
    model, train_report = train_model(candidate_recipe, training, lineage=lineage)
    champion, _ = train_model(champion_recipe, training, lineage=lineage)
    model_sha = sha256_bytes(model_to_bytes(model))
    spec = dataclasses.replace(load_gate_spec(REPO / GATES), resamples=100)

    def metrics(with_champion: bool) -> Json:
        result = validate_candidate(
            model,
            candidate_recipe,
            holdout,
            spec,
            training=training,
            training_name="default",
            leakage_key=spec.leakage_key,
            champion=("ab" * 32, champion) if with_champion else None,
            quality_failures=_quality_failures(datasets),
            where="holdout",
        )
        return _roundtrip(  # type: ignore[no-any-return]
            {
                "schema": "https://retrain.dev/metrics/v2",
                "model": {"name": "model.rtm", "sha256": model_sha},
                "dataset": holdout_ref,
                "training_dataset": training_ref,
                "gate_spec": {"path": GATES, "sha256": sha256_file(REPO / GATES).sha256},
            }
            | result.to_dict()
        )

    report = {
        "schema": "https://retrain.dev/train-report/v1",
        "model_sha256": model_sha,
        "recipe": candidate_recipe.to_dict(),
        "lineage": lineage,
        "training": train_report.to_dict(),
        "blas": [
            {
                "architecture": "Prescott",
                "internal_api": "openblas",
                "num_threads": 1,
                "prefix": "libscipy_openblas",
                "threading_layer": "pthreads",
                "user_api": "blas",
                "version": "0.3.27",
            }
        ],
    }
    return ReportInputs(metrics(True), metrics(False), _roundtrip(report), datasets)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    return report_inputs(tmp_path_factory.mktemp("report-inputs"))


@pytest.fixture(scope="module")
def page(inputs: ReportInputs) -> str:
    return inputs.render()


@pytest.fixture(scope="module")
def page_without_champion(inputs: ReportInputs) -> str:
    return inputs.render(champion=False)


# ---------------------------------------------------------------------------
# Helpers that read the page


_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


class _Structure(HTMLParser):
    """Every start tag matched by its end tag, in order; collects elements by attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()


def _parse(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    return parser


def _with_class(structure: _Structure, tag: str, css: str) -> list[dict[str, str]]:
    return [a for t, a in structure.elements if t == tag and css in a.get("class", "").split()]


def _gate_rows(html: str) -> list[str]:
    """The status of each row of the gate table, in page order."""
    return re.findall(r'<tr class="verdict (\w+)">', html)


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', html, flags=re.DOTALL)
    assert match, f"no section {anchor}"
    return match.group(1)


def _text(html: str) -> str:
    """The visible text, entities decoded, whitespace collapsed."""
    pieces: list[str] = []

    class _Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            pieces.append(data)

    parser = _Text(convert_charrefs=True)
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(pieces))


def _iter_estimates(metrics: Json) -> Iterator[tuple[str, Json]]:
    for name in METRIC_NAMES:
        yield name, metrics["metrics"][name]


# ---------------------------------------------------------------------------
# Structure and self-containment


def test_report_is_a_balanced_html_document(page: str) -> None:
    structure = _parse(page)

    assert page.startswith("<!DOCTYPE html>")
    assert structure.errors == []
    assert structure.stack == []


def test_report_has_the_calibration_curve_and_the_interval_plots_as_inline_svg(page: str) -> None:
    structure = _parse(page)
    ids = {a.get("id") for t, a in structure.elements if t == "svg"}

    assert {"calibration-curve", "metric-intervals", "slice-auc-intervals"} <= ids


def test_sections_appear_in_the_specified_order(page: str) -> None:
    anchors = re.findall(r'<(?:header|section id="(\w+)")', page)

    assert anchors == [
        "",
        "gates",
        "metrics",
        "calibration",
        "slices",
        "champion",
        "quality",
        "holdout",
        "lineage",
    ]


def test_report_loads_nothing_from_anywhere(page: str) -> None:
    structure = _parse(page)
    references = [
        (tag, key, value)
        for tag, attrs in structure.elements
        for key, value in attrs.items()
        if key in ("src", "href", "xlink:href", "action", "srcset", "poster", "data")
    ]

    assert [r for r in references if not r[2].startswith("#")] == []
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page)
    assert not re.search(r"url\(|@import", page)
    assert "default-src 'none'" in page  # the CSP forbids loads even if one slipped in


def test_same_inputs_give_the_same_bytes(inputs: ReportInputs, page: str) -> None:
    assert inputs.render() == page


def test_dataset_order_does_not_change_the_report(inputs: ReportInputs, page: str) -> None:
    assert inputs.render(datasets=list(reversed(inputs.datasets))) == page


# ---------------------------------------------------------------------------
# Escaping


def test_strings_from_the_inputs_are_escaped(inputs: ReportInputs) -> None:
    datasets = json.loads(json.dumps(inputs.datasets))
    datasets[0]["dataset"]["name"] = MALICIOUS
    datasets[1]["quality"]["checks"][0]["detail"] = MALICIOUS
    metrics = json.loads(json.dumps(inputs.metrics))
    metrics["gates"]["verdicts"][0]["message"] = MALICIOUS
    metrics["slices"][0]["value"] = MALICIOUS
    metrics["model"]["name"] = '"><img src=x onerror=alert(1)>'

    page = inputs.render(metrics=metrics, datasets=datasets, target=f"//models:{MALICIOUS}")

    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert _parse(page).errors == []


# ---------------------------------------------------------------------------
# Verdict and gates


def test_banner_says_failed_with_the_number_of_failed_gates(
    inputs: ReportInputs, page: str
) -> None:
    verdicts = inputs.metrics["gates"]["verdicts"]
    failed = sum(v["status"] == "failed" for v in verdicts)
    banner = re.search(r'<div id="verdict" class="banner (\w+)">(.*?)</div></div>', page, re.DOTALL)

    assert inputs.metrics["gates"]["passed"] is False and failed >= 1
    assert banner and banner.group(1) == "failed"
    assert "FAILED" in banner.group(2)
    assert f"{failed} of {len(verdicts)} gates failed" in banner.group(2)


def test_banner_says_passed_when_every_gate_passed(inputs: ReportInputs) -> None:
    metrics = json.loads(json.dumps(inputs.metrics))
    metrics["gates"]["passed"] = True
    for v in metrics["gates"]["verdicts"]:
        v["status"] = "passed" if v["status"] == "failed" else v["status"]

    page = inputs.render(metrics=metrics)

    assert '<div id="verdict" class="banner passed">' in page
    assert f"0 of {len(metrics['gates']['verdicts'])} gates failed" in page


def test_failed_gates_come_first_and_are_marked(inputs: ReportInputs, page: str) -> None:
    statuses = _gate_rows(page)
    failed = [v for v in inputs.metrics["gates"]["verdicts"] if v["status"] == "failed"]

    assert len(statuses) == len(inputs.metrics["gates"]["verdicts"])
    assert statuses == sorted(statuses, key=["failed", "passed", "skipped"].index)
    assert statuses[: len(failed)] == ["failed"] * len(failed)
    assert page.count('<span class="badge failed">FAILED</span>') >= len(failed)


def test_every_gate_verdict_shows_its_measured_statistic_interval_and_threshold(
    inputs: ReportInputs, page: str
) -> None:
    gates = _text(_section(page, "gates"))

    for v in inputs.metrics["gates"]["verdicts"]:
        if v["measured"] is not None:
            assert f"{v['statistic']} = {v['measured']:.4f}" in gates
            assert f"[{v['interval'][0]:.4f}, {v['interval'][1]:.4f}]" in gates
        if v["threshold"]:
            assert v["threshold"] in gates


# ---------------------------------------------------------------------------
# Metrics, calibration, slices


def test_every_metric_shows_its_value_and_interval_to_four_decimals(
    inputs: ReportInputs, page: str
) -> None:
    section = _section(page, "metrics")

    for name, est in _iter_estimates(inputs.metrics):
        for key in ("value", "ci_low", "ci_high"):
            assert f"{est[key]:.4f}" in section, (name, key)


def test_interval_plot_has_one_point_per_metric(page: str) -> None:
    points = _with_class(_parse(page), "circle", "metric-point")

    assert len(points) == len(METRIC_NAMES)


def test_calibration_curve_has_a_point_per_non_empty_bin(inputs: ReportInputs, page: str) -> None:
    non_empty = [b for b in inputs.metrics["calibration"] if b["count"]]
    svg = re.search(r'<svg id="calibration-curve".*?</svg>', page, re.DOTALL)

    assert svg
    assert len(_with_class(_parse(svg.group(0)), "circle", "calibration-point")) == len(non_empty)
    assert "Mean predicted probability" in svg.group(0)
    assert "Observed fraction positive" in svg.group(0)
    assert 'class="diagonal"' in svg.group(0)
    for b in inputs.metrics["calibration"]:
        assert f">{b['count']:,}</text>" in svg.group(0)


def test_slice_table_shows_auc_with_interval_and_champion_difference(
    inputs: ReportInputs, page: str
) -> None:
    section = _text(_section(page, "slices"))

    for s in inputs.metrics["slices"]:
        auc, diff = s["metrics"]["auc"], s["differences"]["auc"]
        assert f"{auc['value']:.4f} [{auc['ci_low']:.4f}, {auc['ci_high']:.4f}]" in section
        assert f"{diff['value']:+.4f} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}]" in section


# ---------------------------------------------------------------------------
# Champion


def test_without_a_champion_the_report_says_so_plainly(page_without_champion: str) -> None:
    note = (
        "No champion yet: only value, sanity and data-quality gates apply; "
        "champion comparisons were skipped"
    )

    assert note in _text(_section(page_without_champion, "champion"))
    assert note in _text(re.split(r"<nav>", page_without_champion)[0])
    assert "Champion CI" not in page_without_champion
    assert "Δ AUC vs champion" not in page_without_champion


def test_with_a_champion_the_comparison_table_shows_both_and_the_difference(
    inputs: ReportInputs, page: str
) -> None:
    champion = inputs.metrics["champion"]
    section = _text(_section(page, "champion"))

    assert champion["sha256"] in section
    assert "No champion yet" not in page
    for name in METRIC_NAMES:
        ours, theirs = inputs.metrics["metrics"][name], champion["metrics"][name]
        diff = champion["differences"][name]
        row = (
            f"{ours['value']:.4f} [{ours['ci_low']:.4f}, {ours['ci_high']:.4f}] "
            f"{theirs['value']:.4f} [{theirs['ci_low']:.4f}, {theirs['ci_high']:.4f}] "
            f"{diff['value']:+.4f} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}]"
        )
        assert row in section, name


# ---------------------------------------------------------------------------
# Data quality, leakage, contracts, lineage


def test_quality_lists_each_dataset_with_its_failed_checks(inputs: ReportInputs, page: str) -> None:
    section = _text(_section(page, "quality"))

    for predicate in inputs.datasets:
        checks = predicate["quality"]["checks"]
        failed = [c for c in checks if not c["passed"]]
        assert failed, "the inputs are meant to have a failed check (rows below the minimum)"
        assert (
            f"{len(checks)} checks: {len(checks) - len(failed)} passed, {len(failed)} failed"
            in section
        )
        for c in failed:
            assert f"{c['measured']:,} {c['threshold']}" in section


def test_quality_shows_drift_per_feature_with_psi_and_ks(inputs: ReportInputs, page: str) -> None:
    checks = inputs.datasets[1]["quality"]["checks"]
    drift = [c for c in checks if c["check"] in ("drift-psi", "drift-ks")]
    table = re.search(r"Drift against the reference</h4>(<table.*?</table>)", page, re.DOTALL)

    assert drift and table
    for c in drift:
        assert f"{c['measured']:.4f}" in table.group(1), (c["check"], c["column"])


def test_leakage_and_contracts_are_reported(inputs: ReportInputs, page: str) -> None:
    section = _text(_section(page, "holdout"))
    leakage = inputs.metrics["holdout"]["leakage"]

    assert leakage["disjoint"] is True
    assert (
        "The holdout shares 0 rows and 0 customer_id values with training dataset default"
        in section
    )
    for check in inputs.metrics["contracts"]["checks"]:
        assert check["name"] in section


def test_lineage_names_every_input_by_digest(inputs: ReportInputs, page: str) -> None:
    section = _text(_section(page, "lineage"))
    lineage = inputs.train_report["lineage"]

    expected = [
        TARGET,
        inputs.metrics["model"]["sha256"],
        inputs.metrics["training_dataset"]["digest"],
        inputs.metrics["dataset"]["digest"],
        *(p["manifest"]["sha256"] for p in inputs.datasets),
        lineage["code_digest"],
        lineage["lock_sha256"],
        lineage["recipe"]["name"],
        lineage["recipe"]["sha256"],
        inputs.metrics["gate_spec"]["sha256"],
        f"retrain version {lineage['retrain_version']}",
    ]
    assert [e for e in expected if e not in section] == []


def test_inconsistent_inputs_are_called_out(inputs: ReportInputs) -> None:
    report = json.loads(json.dumps(inputs.train_report))
    report["model_sha256"] = "ee" * 32

    page = inputs.render(train_report=report)

    assert "Inconsistent inputs" in page
    assert f"train_report.json describes {'ee' * 32}" in page


def test_undefined_numbers_render_without_failing(inputs: ReportInputs) -> None:
    metrics = json.loads(json.dumps(inputs.metrics))
    metrics["slices"][0]["metrics"]["auc"].update(value=math.nan, ci_low=math.nan, ci_high=math.nan)
    metrics["calibration"] = [
        dict(b, count=0, mean_predicted=None, fraction_positive=None)
        for b in metrics["calibration"]
    ]

    page = inputs.render(metrics=metrics)

    assert "undefined" in _section(page, "slices")
    assert _parse(page).errors == []
