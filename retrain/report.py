"""The validation report: one self-contained HTML page per evaluated model.

``render_report`` turns what a build already wrote (metrics.json,
train_report.json and the dataset predicates) into a page a person can read
offline: the verdict, every gate, the metrics with their intervals, the
calibration curve, slices, the champion comparison, data quality, leakage,
contracts and the lineage by digest. Nothing is fetched: the CSS is inline,
the charts are SVG drawn here, there is no script, and a Content Security
Policy forbids any load. The page is a pure function of its inputs: no
timestamps or generated ids, fixed number formats, and a stable order, so
the same build gives the same bytes. Every string from the inputs is
escaped.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from retrain import __version__
from retrain.metrics import HIGHER_IS_BETTER, METRIC_NAMES

__all__ = ["render_report"]

_METRIC_LABELS = {
    "auc": "AUC",
    "accuracy": "Accuracy",
    "log_loss": "Log loss",
    "brier": "Brier score",
    "ece": "ECE",
}
_NO_CHAMPION = (
    "No champion yet: only value, sanity and data-quality gates apply; "
    "champion comparisons were skipped"
)
_STATUS_ORDER = {"failed": 0, "passed": 1, "skipped": 2}
# Metrics bounded to [0, 1]; log loss is only bounded below.
_UNIT_METRICS = frozenset({"auc", "accuracy", "brier", "ece"})
_THRESHOLD_PART = re.compile(r"^(>=|<=) (-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)$")

Json = Mapping[str, Any]


# ---------------------------------------------------------------------------
# Formatting: every value from the inputs passes through one of these.


def _e(value: object) -> str:
    """Escaped text of any input value."""
    return html.escape(str(value), quote=True)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float(value: object) -> float | None:
    """The value as a finite float, or None (missing, NaN, infinite, not a number)."""
    if _is_number(value) and math.isfinite(float(value)):  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    return None


def _finite(value: object) -> bool:
    return _float(value) is not None


def _num(value: object, *, signed: bool = False) -> str:
    """A number as the tables show it: floats to 4 decimals, integers whole."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "undefined"
        if math.isinf(value):
            return "&infin;" if value > 0 else "&minus;&infin;"
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return _e(value)


def _value(value: object) -> str:
    """A measured or threshold value of any JSON type (quality checks use several)."""
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{_e(k)}: {_value(v)}" for k, v in sorted(value.items()))
    return _num(value)


def _ci(low: object, high: object, *, signed: bool = False) -> str:
    if low is None and high is None:
        return "—"
    return f"[{_num(low, signed=signed)}, {_num(high, signed=signed)}]"


def _pct(value: object) -> str:
    f = _float(value)
    return "—" if f is None else f"{f * 100:.0f}%"


def _c(x: float) -> str:
    """An SVG coordinate, fixed precision so the bytes do not depend on float noise."""
    return f"{x:.1f}"


def _d(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _l(value: object) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _badge(status: str) -> str:
    label = {"failed": "FAILED", "passed": "passed", "skipped": "skipped"}.get(status, status)
    css = status if status in _STATUS_ORDER else "unknown"
    return f'<span class="badge {css}">{_e(label)}</span>'


def _flag(ok: object) -> str:
    return _badge("passed" if ok is True else "failed")


def _metric_names(estimates: Json) -> list[str]:
    known = [m for m in METRIC_NAMES if m in estimates]
    return known + sorted(m for m in estimates if m not in METRIC_NAMES)


def _metric_label(metric: str) -> str:
    return _e(_METRIC_LABELS.get(metric, metric))


def _direction(metric: str) -> str:
    better_high = HIGHER_IS_BETTER.get(metric)
    if better_high is None:
        return ""
    return "higher is better" if better_high else "lower is better"


def _td(content: str, css: str = "") -> str:
    return f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>"


def _table(
    headers: Sequence[tuple[str, str]],
    rows: Iterable[str],
    *,
    css: str = "",
    widths: Sequence[str] = (),
) -> str:
    """A table; headers are (label, css class) with "num" for right-aligned numbers.

    ``widths`` (CSS lengths, one per column) fix the layout, for tables whose
    long text would otherwise squeeze the numbers.
    """
    head = "".join(f'<th class="{c}">{h}</th>' if c else f"<th>{h}</th>" for h, c in headers)
    body = "".join(rows)
    klass = f' class="{css}"' if css else ""
    cols = ""
    if widths:
        cols = "<colgroup>" + "".join(f'<col style="width: {w}">' for w in widths) + "</colgroup>"
        klass = f' class="{css} fixed"'
    return f"<table{klass}>{cols}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column key/value table; both sides are already HTML."""
    body = "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


_NOT_RECORDED = '<span class="muted">not recorded</span>'


def _hash(value: object) -> str:
    if value is None or value == "":
        return _NOT_RECORDED
    return f'<code class="hash">{_e(value)}</code>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{title}</h2>{body}</section>'


# ---------------------------------------------------------------------------
# Charts


def _nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float], int]:
    """Round the domain out to a 1-2-5 step; returns (lo, hi, ticks, decimals)."""
    span = hi - lo
    if not span > 0:
        span = abs(hi) * 0.1 or 0.1
        lo, hi = lo - span / 2, hi + span / 2
    raw = span / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step
    n = round((stop - start) / step)
    ticks = [start + i * step for i in range(n + 1)]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return start, stop, ticks, decimals


def _value_thresholds(verdicts: Sequence[Json], metric: str, *, sliced: bool) -> list[float]:
    """Numeric bounds of the value gates on ``metric`` (overall, or the per-slice ones)."""
    bounds: set[float] = set()
    for v in verdicts:
        if v.get("kind") != "value" or v.get("metric") != metric:
            continue
        if bool(v.get("slice")) != sliced or v.get("status") == "skipped":
            continue
        for part in str(v.get("threshold") or "").split(" and "):
            match = _THRESHOLD_PART.match(part.strip())
            if match:
                bounds.add(float(match.group(2)))
    return sorted(bounds)


def _value_gate_text(verdicts: Sequence[Json], metric: str) -> str:
    """The overall value gates' thresholds on ``metric``, as the gate spec states them."""
    texts = {
        str(v.get("threshold"))
        for v in verdicts
        if v.get("kind") == "value"
        and v.get("metric") == metric
        and not v.get("slice")
        and v.get("threshold")
    }
    return "; ".join(sorted(texts))


def _metric_status(verdicts: Sequence[Json], metric: str, slice_label: str | None) -> str:
    statuses = {
        str(v.get("status"))
        for v in verdicts
        if v.get("metric") == metric
        and v.get("kind") == "value"
        and (v.get("slice") or None) == slice_label
    }
    if "failed" in statuses:
        return "failed"
    return "passed" if "passed" in statuses else "none"


def _interval_rows_svg(
    svg_id: str,
    title: str,
    rows: Sequence[dict[str, Any]],
    *,
    shared: tuple[float, float] | None,
    label_width: int = 190,
) -> str:
    """A forest plot: per row a CI bar and a point, gate bounds as dashed lines.

    Each row is {label, value, low, high, thresholds, status, champion,
    domain, point_class}. With ``shared`` all rows use one axis (drawn at the
    bottom); otherwise each row has its own axis and ticks, because metrics
    live on different scales.
    """
    width = 1080
    x0, x1 = label_width + 20, width - 230
    row_h = 30 if shared else 56
    top = 14
    axis_h = 34 if shared else 0
    height = top + row_h * len(rows) + axis_h + 8
    out = [
        f'<svg id="{svg_id}" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="13">',
        f"<title>{_e(title)}</title>",
    ]
    shared_ticks: list[float] = []
    decimals = 2
    if shared is not None:
        lo, hi, shared_ticks, decimals = _nice_ticks(*shared)
    for i, row in enumerate(rows):
        y_top = top + i * row_h
        y = y_top + (row_h / 2 if shared else 20)
        if shared is None:
            lo, hi, ticks, decimals = _nice_ticks(*row["domain"])
        else:
            ticks = []

        def sx(v: float, lo: float = lo, hi: float = hi) -> float:
            return x0 + (min(max(v, lo), hi) - lo) / (hi - lo) * (x1 - x0)

        if i % 2 == 0:
            out.append(
                f'<rect class="band" x="0" y="{_c(y_top)}" width="{width}" height="{row_h}" />'
            )
        out.append(
            f'<text class="row-label" x="{label_width}" y="{_c(y + 4)}" '
            f'text-anchor="end">{_e(row["label"])}</text>'
        )
        if shared is None:
            out.append(
                f'<line class="axis" x1="{_c(x0)}" y1="{_c(y)}" x2="{_c(x1)}" y2="{_c(y)}" />'
            )
            for t in ticks:
                out.append(
                    f'<line class="tick" x1="{_c(sx(t))}" y1="{_c(y + 3)}" x2="{_c(sx(t))}" '
                    f'y2="{_c(y + 7)}" />'
                    f'<text class="tick-label" x="{_c(sx(t))}" y="{_c(y + 21)}" '
                    f'text-anchor="middle">{t:.{decimals}f}</text>'
                )
        for bound in row["thresholds"]:
            out.append(
                f'<line class="threshold" x1="{_c(sx(bound))}" y1="{_c(y - 11)}" '
                f'x2="{_c(sx(bound))}" y2="{_c(y + 9)}"><title>gate bound {bound:g}</title></line>'
            )
        low, high, value = row["low"], row["high"], row["value"]
        low_f, high_f, value_f = _float(low), _float(high), _float(value)
        if low_f is not None and high_f is not None:
            out.append(
                f'<line class="ci {row["status"]}" x1="{_c(sx(low_f))}" y1="{_c(y)}" '
                f'x2="{_c(sx(high_f))}" y2="{_c(y)}" />'
            )
        champion = _float(row.get("champion"))
        if champion is not None:
            out.append(
                f'<circle class="champion-point" cx="{_c(sx(champion))}" cy="{_c(y)}" r="5">'
                f"<title>champion {_num(champion)}</title></circle>"
            )
        if value_f is not None:
            out.append(
                f'<circle class="{row["point_class"]} {row["status"]}" cx="{_c(sx(value_f))}" '
                f'cy="{_c(y)}" r="5.5"><title>{_e(row["label"])}: {_num(value)} '
                f"{_ci(low, high)}</title></circle>"
            )
        out.append(
            f'<text class="row-value" x="{width - 215}" y="{_c(y + 4)}">'
            f"{_num(value)}  {_ci(low, high)}</text>"
        )
    if shared is not None:
        y_axis = top + row_h * len(rows) + 6
        out.append(
            f'<line class="axis" x1="{_c(x0)}" y1="{_c(y_axis)}" x2="{_c(x1)}" y2="{_c(y_axis)}" />'
        )
        for t in shared_ticks:
            x = x0 + (t - lo) / (hi - lo) * (x1 - x0)
            out.append(
                f'<line class="grid" x1="{_c(x)}" y1="{top}" x2="{_c(x)}" y2="{_c(y_axis)}" />'
                f'<text class="tick-label" x="{_c(x)}" y="{_c(y_axis + 18)}" '
                f'text-anchor="middle">{t:.{decimals}f}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def _domain(metric: str, values: Iterable[object]) -> tuple[float, float]:
    finite = [f for f in (_float(v) for v in values) if f is not None]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.15 or max(abs(hi) * 0.05, 0.01)
    lo, hi = lo - pad, hi + pad
    lo = max(lo, 0.0)
    if metric in _UNIT_METRICS:
        hi = min(hi, 1.0)
    return lo, hi


def _calibration_svg(bins: Sequence[Json]) -> str:
    """Observed vs predicted per bin over the diagonal, with a histogram of bin counts."""
    left, top, size = 64, 16, 380
    hist_top, hist_h = top + size + 56, 96
    width, height = left + size + 24, hist_top + hist_h + 44

    def sx(v: float) -> float:
        return left + min(max(v, 0.0), 1.0) * size

    def sy(v: float) -> float:
        return top + (1.0 - min(max(v, 0.0), 1.0)) * size

    out = [
        f'<svg id="calibration-curve" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="13">',
        "<title>Calibration: observed fraction positive against mean predicted probability, "
        "per bin</title>",
        f'<rect class="plot-bg" x="{left}" y="{top}" width="{size}" height="{size}" />',
    ]
    for k in range(6):
        t = k / 5
        out.append(
            f'<line class="grid" x1="{_c(sx(t))}" y1="{top}" x2="{_c(sx(t))}" '
            f'y2="{top + size}" />'
            f'<line class="grid" x1="{left}" y1="{_c(sy(t))}" x2="{left + size}" '
            f'y2="{_c(sy(t))}" />'
            f'<text class="tick-label" x="{_c(sx(t))}" y="{top + size + 18}" '
            f'text-anchor="middle">{t:.1f}</text>'
            f'<text class="tick-label" x="{left - 8}" y="{_c(sy(t) + 4)}" '
            f'text-anchor="end">{t:.1f}</text>'
        )
    out.append(
        f'<line class="diagonal" x1="{_c(sx(0))}" y1="{_c(sy(0))}" x2="{_c(sx(1))}" '
        f'y2="{_c(sy(1))}" />'
        f'<text class="legend" x="{_c(sx(0.62))}" y="{_c(sy(0.62) - 8)}" '
        f'transform="rotate(-45 {_c(sx(0.62))} {_c(sy(0.62) - 8)})">perfect calibration</text>'
    )
    points = [
        b for b in bins if _finite(b.get("mean_predicted")) and _finite(b.get("fraction_positive"))
    ]
    counts = [int(b.get("count") or 0) for b in bins]
    most = max(counts, default=0) or 1
    if len(points) > 1:
        path = " ".join(
            f"{_c(sx(b['mean_predicted']))},{_c(sy(b['fraction_positive']))}" for b in points
        )
        out.append(f'<polyline class="calibration-line" points="{path}" />')
    for b in points:
        count = int(b.get("count") or 0)
        r = 3.5 + 9.0 * math.sqrt(count / most)
        out.append(
            f'<circle class="calibration-point" cx="{_c(sx(b["mean_predicted"]))}" '
            f'cy="{_c(sy(b["fraction_positive"]))}" r="{_c(r)}">'
            f"<title>bin {_num(b.get('low'))}&ndash;{_num(b.get('high'))}: {count:,} rows, "
            f"predicted {_num(b['mean_predicted'])}, observed {_num(b['fraction_positive'])}"
            f"</title></circle>"
        )
    out.append(
        f'<text class="axis-label" x="{left + size / 2}" y="{top + size + 40}" '
        f'text-anchor="middle">Mean predicted probability</text>'
        f'<text class="axis-label" x="16" y="{top + size / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {top + size / 2})">Observed fraction positive</text>'
    )
    # Rows per bin: where the curve has evidence, and where it has none.
    base = hist_top + hist_h
    out.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{left + size}" y2="{base}" />')
    for b, count in zip(bins, counts, strict=True):
        lo, hi = _float(b.get("low")), _float(b.get("high"))
        if lo is None or hi is None:
            continue
        h = hist_h * count / most
        x = sx(lo) + 1
        w = max(sx(hi) - sx(lo) - 2, 1)
        out.append(
            f'<rect class="count-bar" x="{_c(x)}" y="{_c(base - h)}" width="{_c(w)}" '
            f'height="{_c(h)}" />'
            f'<text class="count-label" x="{_c(x + w / 2)}" y="{_c(base - h - 4)}" '
            f'text-anchor="middle">{count:,}</text>'
        )
    out.append(
        f'<text class="axis-label" x="{left + size / 2}" y="{base + 22}" '
        f'text-anchor="middle">Rows per probability bin</text>'
        "</svg>"
    )
    return "".join(out)


# ---------------------------------------------------------------------------
# Sections


def _verdicts(metrics: Json) -> list[dict[str, Any]]:
    return [_d(v) for v in _l(_d(metrics.get("gates")).get("verdicts"))]


def _sorted_verdicts(verdicts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # Stable: within a status, the gate spec's order.
    return sorted(verdicts, key=lambda v: _STATUS_ORDER.get(str(v.get("status")), 3))


def _header(metrics: Json, target: str, verdicts: Sequence[Json], warnings: Sequence[str]) -> str:
    gates = _d(metrics.get("gates"))
    model = _d(metrics.get("model"))
    failed = [v for v in verdicts if v.get("status") == "failed"]
    skipped = sum(1 for v in verdicts if v.get("status") == "skipped")
    passed = gates.get("passed") is True and not failed
    total = len(verdicts)
    if passed:
        headline = "PASSED"
        detail = f"0 of {total} gates failed"
    else:
        headline = "FAILED"
        detail = f"{len(failed)} of {total} gates failed"
    if skipped:
        detail += f", {skipped} skipped"
    names = "".join(
        f"<li>{_e(v.get('name'))}{' [' + _e(v.get('slice')) + ']' if v.get('slice') else ''}</li>"
        for v in failed
    )
    failed_list = f'<ul class="failed-names">{names}</ul>' if names else ""
    champion = metrics.get("champion")
    champion_line = (
        f'<p class="note">{_e(_NO_CHAMPION)}.</p>'
        if not champion
        else f'<p class="note">Compared with champion {_hash(_d(champion).get("sha256"))}.</p>'
    )
    warning_block = ""
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
        warning_block = (
            f'<div class="warnings"><strong>Inconsistent inputs</strong><ul>{items}</ul></div>'
        )
    facts = _kv(
        [
            ("Target", f"<code>{_e(target)}</code>"),
            ("Model", f"{_e(model.get('name', '—'))} {_hash(model.get('sha256'))}"),
            (
                "Holdout",
                f"{_e(_d(metrics.get('dataset')).get('name', '—'))} "
                f"{_hash(_d(metrics.get('dataset')).get('digest'))}",
            ),
        ]
    )
    state = "passed" if passed else "failed"
    return (
        f'<header><p class="kicker">retrain validation report</p>'
        f"<h1>{_e(target)}</h1>{facts}"
        f'<div id="verdict" class="banner {state}"><div class="headline">{headline}</div>'
        f'<div class="banner-detail"><p>{_e(detail)}</p>{failed_list}{champion_line}</div></div>'
        f"{warning_block}</header>"
    )


def _gates_section(verdicts: Sequence[dict[str, Any]]) -> str:
    rows = []
    for v in _sorted_verdicts(verdicts):
        status = str(v.get("status"))
        statistic = v.get("statistic")
        measured = (
            f"{_e(statistic)} = {_num(v.get('measured'))}"
            if statistic is not None or v.get("measured") is not None
            else "—"
        )
        interval = _l(v.get("interval"))
        metric = v.get("metric")
        gate = f'<span class="gate-name">{_e(v.get("name"))}</span>'
        gate += f'<span class="gate-kind">{_e(v.get("kind"))}'
        gate += f" · {_metric_label(str(metric))}</span>" if metric else "</span>"
        rows.append(
            f'<tr class="verdict {_e(status)}">'
            + _td(_badge(status))
            + _td(gate)
            + _td(_e(v.get("slice")) if v.get("slice") else '<span class="muted">overall</span>')
            + _td(measured, "num")
            + _td(_ci(*interval) if len(interval) == 2 else "—", "num")
            + _td(_e(v.get("threshold")) if v.get("threshold") else "—")
            + _td(_e(v.get("message")), "message")
            + "</tr>"
        )
    table = _table(
        [
            ("Status", ""),
            ("Gate", ""),
            ("Slice", ""),
            ("Measured statistic", "num"),
            ("Interval", "num"),
            ("Threshold", ""),
            ("Message", ""),
        ],
        rows,
        css="gates",
        widths=("82px", "21%", "13%", "128px", "136px", "112px", "auto"),
    )
    return _section(
        "gates",
        "Gate verdicts",
        '<p class="lead">Failed gates first, then passed, then skipped; within each group '
        "the gate spec's order.</p>" + table,
    )


def _metrics_section(metrics: Json, verdicts: Sequence[Json]) -> str:
    estimates = _d(metrics.get("metrics"))
    champion = _d(metrics.get("champion"))
    champion_estimates = _d(champion.get("metrics"))
    bootstrap = _d(metrics.get("bootstrap"))
    confidence = bootstrap.get("confidence")
    ci_name = f"{_pct(confidence)} CI" if _finite(confidence) else "CI"
    rows = []
    plot_rows = []
    undefined_notes = []
    for name in _metric_names(estimates):
        est = _d(estimates.get(name))
        thresholds = _value_thresholds(verdicts, name, sliced=False)
        status = _metric_status(verdicts, name, None)
        champ_value = _d(champion_estimates.get(name)).get("value")
        rows.append(
            "<tr>"
            + _td(f"<strong>{_metric_label(name)}</strong>")
            + _td(_e(_direction(name)), "muted")
            + _td(_num(est.get("value")), "num")
            + _td(_num(est.get("ci_low")), "num")
            + _td(_num(est.get("ci_high")), "num")
            + _td(_e(_value_gate_text(verdicts, name)) or "—", "num")
            + "</tr>"
        )
        undefined = est.get("undefined_resamples")
        if _is_number(undefined) and undefined:
            undefined_notes.append(
                f"{_metric_label(name)}: undefined on {_num(undefined)} of "
                f"{_num(est.get('resamples'))} resamples"
            )
        plot_rows.append(
            {
                "label": f"{_METRIC_LABELS.get(name, name)} ({'↑' if HIGHER_IS_BETTER.get(name, True) else '↓'})",
                "value": est.get("value"),
                "low": est.get("ci_low"),
                "high": est.get("ci_high"),
                "thresholds": thresholds,
                "status": status,
                "champion": champ_value,
                "point_class": "metric-point",
                "domain": _domain(
                    name,
                    [
                        est.get("value"),
                        est.get("ci_low"),
                        est.get("ci_high"),
                        champ_value,
                        *thresholds,
                    ],
                ),
            }
        )
    table = _table(
        [
            ("Metric", ""),
            ("Direction", ""),
            ("Value", "num"),
            (f"{ci_name} low", "num"),
            (f"{ci_name} high", "num"),
            ("Gate bounds", "num"),
        ],
        rows,
        css="metrics",
    )
    caption = (
        f"Percentile bootstrap intervals: {_num(bootstrap.get('resamples'))} resamples of the "
        f"holdout, seed {_e(bootstrap.get('seed', '—'))}, confidence {_pct(confidence)}."
    )
    if undefined_notes:
        caption += " " + "; ".join(undefined_notes) + "."
    legend = (
        '<p class="legend-line"><span class="key point"></span> candidate value and '
        f'{_e(ci_name)} <span class="key threshold"></span> gate bound'
        + (' <span class="key champion"></span> champion value' if champion else "")
        + ". Each row has its own axis; ↑ higher is better, ↓ lower is better.</p>"
    )
    svg = _interval_rows_svg(
        "metric-intervals", "Metrics with confidence intervals", plot_rows, shared=None
    )
    return _section(
        "metrics",
        "Metrics on the holdout",
        f'<p class="lead">{caption}</p>{table}<div class="figure">{svg}{legend}</div>',
    )


def _edge(value: object) -> str:
    f = _float(value)
    return _num(value) if f is None else f"{f:.2f}"


def _calibration_section(metrics: Json) -> str:
    bins = [_d(b) for b in _l(metrics.get("calibration"))]
    rows = []
    for i, b in enumerate(bins):
        closing = "]" if i == len(bins) - 1 else ")"
        rows.append(
            "<tr>"
            + _td(f"[{_edge(b.get('low'))}, {_edge(b.get('high'))}{closing}", "num")
            + _td(_num(b.get("count")), "num")
            + _td(_num(b.get("mean_predicted")), "num")
            + _td(_num(b.get("fraction_positive")), "num")
            + "</tr>"
        )
    table = _table(
        [("Bin", "num"), ("Rows", "num"), ("Mean predicted", "num"), ("Observed", "num")],
        rows,
        css="calibration compact",
    )
    ece = _d(_d(metrics.get("metrics")).get("ece"))
    if ece:
        table += (
            f'<p class="legend-line">Expected calibration error (row-weighted gap between the '
            f"two, over these bins): {_num(ece.get('value'))} "
            f"{_ci(ece.get('ci_low'), ece.get('ci_high'))}.</p>"
        )
    return _section(
        "calibration",
        "Calibration",
        '<p class="lead">Per probability bin: the mean predicted probability against the '
        "observed fraction of positives. Points on the diagonal are well calibrated; point "
        "area and the bars below show how many holdout rows each bin holds.</p>"
        f'<div class="side-by-side"><div class="figure">{_calibration_svg(bins)}</div>'
        f"<div>{table}</div></div>",
    )


def _slices_section(metrics: Json, verdicts: Sequence[Json]) -> str:
    slices = [_d(s) for s in _l(metrics.get("slices"))]
    if not slices:
        return _section("slices", "Slices", '<p class="muted">No slices declared.</p>')
    with_champion = any(s.get("differences") for s in slices)
    by_slice: dict[str, list[Json]] = {}
    for v in verdicts:
        if v.get("slice"):
            by_slice.setdefault(str(v["slice"]), []).append(v)
    rows = []
    plot_rows: list[dict[str, Any]] = []
    values: list[object] = []
    for s in slices:
        label = f"{s.get('feature')}={s.get('value')}"
        auc = _d(_d(s.get("metrics")).get("auc"))
        diff = _d(_d(s.get("differences")).get("auc"))
        gates = sorted(
            by_slice.get(label, []),
            key=lambda v: (_STATUS_ORDER.get(str(v.get("status")), 3), str(v.get("name"))),
        )
        gate_cells = " ".join(
            f'<span class="badge {_e(v.get("status"))}" title="{_e(v.get("message"))}">'
            f"{_e(v.get('name'))}</span>"
            for v in gates
        )
        cells = (
            _td(_e(s.get("feature")))
            + _td(_e(s.get("value")))
            + _td(_num(s.get("rows")), "num")
            + _td(_num(auc.get("value")), "num")
            + _td(_ci(auc.get("ci_low"), auc.get("ci_high")), "num")
        )
        if with_champion:
            cells += _td(_num(diff.get("value"), signed=True), "num") + _td(
                _ci(diff.get("ci_low"), diff.get("ci_high"), signed=True), "num"
            )
        row_status = "failed" if any(v.get("status") == "failed" for v in gates) else ""
        rows.append(f'<tr class="{row_status}">{cells}{_td(gate_cells or "—", "gate-list")}</tr>')
        plot_rows.append(
            {
                "label": f"{s.get('feature')} = {s.get('value')} ({_num(s.get('rows'))})",
                "value": auc.get("value"),
                "low": auc.get("ci_low"),
                "high": auc.get("ci_high"),
                "thresholds": [],
                "status": _metric_status(verdicts, "auc", label),
                "champion": None,
                "point_class": "slice-point",
                "domain": (0.0, 1.0),
            }
        )
        values += [auc.get("value"), auc.get("ci_low"), auc.get("ci_high")]
    bounds = _value_thresholds(verdicts, "auc", sliced=True)
    for row in plot_rows:
        row["thresholds"] = bounds
    headers = [
        ("Feature", ""),
        ("Value", ""),
        ("Rows", "num"),
        ("AUC", "num"),
        ("AUC CI", "num"),
    ]
    if with_champion:
        headers += [("Δ AUC vs champion", "num"), ("Δ CI", "num")]
    headers.append(("Gates on this slice", ""))
    table = _table(headers, rows, css="slices")
    svg = _interval_rows_svg(
        "slice-auc-intervals",
        "AUC per slice with confidence intervals",
        plot_rows,
        shared=_domain("auc", [*values, *bounds]),
        label_width=230,
    )
    return _section(
        "slices",
        "Slices",
        '<p class="lead">Every declared slice of the holdout, with its AUC and interval. '
        "Δ is candidate &minus; champion on the same bootstrap resamples.</p>"
        f'{table}<div class="figure">{svg}<p class="legend-line">AUC per slice (rows in '
        'parentheses) on one axis; <span class="key threshold"></span> per-slice AUC gate '
        "bound.</p></div>",
    )


def _reading(metric: str, low: object, high: object) -> str:
    """Better or worse only when the difference's interval excludes zero."""
    low_f, high_f = _float(low), _float(high)
    better_high = HIGHER_IS_BETTER.get(metric)
    if low_f is None or high_f is None or better_high is None or low_f <= 0 <= high_f:
        return "no clear change"
    return "candidate better" if (low_f > 0) == better_high else "candidate worse"


def _champion_section(metrics: Json) -> str:
    champion = metrics.get("champion")
    if not champion:
        return _section(
            "champion", "Champion comparison", f'<p class="note big">{_e(_NO_CHAMPION)}.</p>'
        )
    champion = _d(champion)
    candidate = _d(metrics.get("metrics"))
    theirs = _d(champion.get("metrics"))
    diffs = _d(champion.get("differences"))
    rows = []
    for name in _metric_names(candidate):
        ours, them, diff = _d(candidate.get(name)), _d(theirs.get(name)), _d(diffs.get(name))
        low, high = diff.get("ci_low"), diff.get("ci_high")
        reading = _reading(name, low, high)
        css = {"candidate better": "better", "candidate worse": "worse"}.get(reading, "muted")
        rows.append(
            "<tr>"
            + _td(f"<strong>{_metric_label(name)}</strong>")
            + _td(_num(ours.get("value")), "num")
            + _td(_ci(ours.get("ci_low"), ours.get("ci_high")), "num")
            + _td(_num(them.get("value")), "num")
            + _td(_ci(them.get("ci_low"), them.get("ci_high")), "num")
            + _td(_num(diff.get("value"), signed=True), "num")
            + _td(_ci(low, high, signed=True), "num")
            + _td(_e(reading), css)
            + "</tr>"
        )
    table = _table(
        [
            ("Metric", ""),
            ("Candidate", "num"),
            ("Candidate CI", "num"),
            ("Champion", "num"),
            ("Champion CI", "num"),
            ("Difference", "num"),
            ("Difference CI", "num"),
            ("Reading", ""),
        ],
        rows,
        css="champion",
    )
    return _section(
        "champion",
        "Champion comparison",
        f'<p class="lead">Champion {_hash(champion.get("sha256"))}. Differences are candidate &minus; '
        "champion, paired on the same bootstrap resamples; a difference whose interval excludes "
        "zero is read as better or worse in the metric's direction.</p>" + table,
    )


def _dataset_role(predicate: Json, metrics: Json) -> str:
    digest = _d(predicate.get("dataset")).get("digest")
    roles = []
    if digest and digest == _d(metrics.get("training_dataset")).get("digest"):
        roles.append("training")
    if digest and digest == _d(metrics.get("dataset")).get("digest"):
        roles.append("holdout")
    return " and ".join(roles) or "other"


def _role_order(role: str) -> int:
    return {"training": 0, "training and holdout": 0, "holdout": 1}.get(role, 2)


def _check_name(check: Json) -> str:
    column = check.get("column")
    return f"{check.get('check')} ({column})" if column else str(check.get("check"))


def _drift_table(checks: Sequence[Json]) -> str:
    features: dict[str, dict[str, Json]] = {}
    for c in checks:
        kind = str(c.get("check"))
        if kind in ("drift-psi", "drift-ks"):
            features.setdefault(str(c.get("column")), {})[kind] = c
    if not features:
        return ""
    rows = []
    for feature, found in features.items():  # the spec's order
        psi, ks = found.get("drift-psi", {}), found.get("drift-ks", {})

        def cell(check: Json) -> str:
            if not check:
                return _td("—", "num muted") + _td("", "muted")
            css = "num" if check.get("passed") else "num fail-text"
            return _td(_num(check.get("measured")), css) + _td(_e(check.get("threshold")), "muted")

        ok = all(c.get("passed") for c in found.values())
        detail = ks.get("detail") or psi.get("detail") or ""
        rows.append(
            f'<tr class="{"" if ok else "failed"}">'
            + _td(_e(feature))
            + cell(psi)
            + cell(ks)
            + _td(_e(detail), "muted")
            + _td(_flag(ok))
            + "</tr>"
        )
    return "<h4>Drift against the reference</h4>" + _table(
        [
            ("Feature", ""),
            ("PSI", "num"),
            ("PSI bound", ""),
            ("KS", "num"),
            ("KS bound", ""),
            ("Detail", ""),
            ("", ""),
        ],
        rows,
        css="drift compact",
    )


def _profile_table(profile: Json) -> str:
    rows = []
    for col in (_d(c) for c in _l(profile.get("columns"))):
        rows.append(
            "<tr>"
            + _td(_e(col.get("name")))
            + _td(_e(col.get("type")))
            + _td(_num(col.get("nulls")), "num")
            + _td(_num(col.get("null_rate")), "num")
            + _td(_num(col.get("min")), "num")
            + _td(_num(col.get("max")), "num")
            + _td(_num(col.get("mean")), "num")
            + _td(_num(col.get("distinct")), "num")
            + "</tr>"
        )
    return _table(
        [
            ("Column", ""),
            ("Type", ""),
            ("Nulls", "num"),
            ("Null rate", "num"),
            ("Min", "num"),
            ("Max", "num"),
            ("Mean", "num"),
            ("Distinct", "num"),
        ],
        rows,
        css="compact",
    )


def _dataset_card(predicate: Json, role: str) -> str:
    ds = _d(predicate.get("dataset"))
    manifest = _d(predicate.get("manifest"))
    quality = _d(predicate.get("quality"))
    spec = quality.get("spec")
    checks = [_d(c) for c in _l(quality.get("checks"))]
    failed = [c for c in checks if c.get("passed") is not True]
    passed = quality.get("passed") is True and not failed
    facts = _kv(
        [
            ("Rows", _num(ds.get("rows"))),
            ("Files", _num(ds.get("files"))),
            ("Bytes", _num(ds.get("bytes"))),
            ("Digest", _hash(ds.get("digest"))),
            ("Manifest", f"{_e(manifest.get('uri', '—'))} {_hash(manifest.get('sha256'))}"),
            (
                "Quality spec",
                f"{_e(_d(spec).get('path', '—'))} {_hash(_d(spec).get('sha256'))}"
                if spec
                else '<span class="muted">none declared: only the profile is recorded</span>',
            ),
        ]
    )
    if not checks:
        summary = '<p class="muted">No quality checks declared.</p>'
    else:
        summary = (
            f'<p class="check-summary">{_flag(passed)} {len(checks)} checks: '
            f"{len(checks) - len(failed)} passed, {len(failed)} failed.</p>"
        )
    failed_table = ""
    if failed:
        failed_table = "<h4>Failed checks</h4>" + _table(
            [("Check", ""), ("Measured", "num"), ("Threshold", ""), ("Detail", "")],
            (
                '<tr class="failed">'
                + _td(_e(_check_name(c)))
                + _td(_value(c.get("measured")), "num")
                + _td(_value(c.get("threshold")))
                + _td(_e(c.get("detail") or ""), "muted")
                + "</tr>"
                for c in failed
            ),
            css="compact",
        )
    all_checks = ""
    if checks:
        all_checks = (
            f"<details><summary>All {len(checks)} checks</summary>"
            + _table(
                [("", ""), ("Check", ""), ("Measured", "num"), ("Threshold", ""), ("Detail", "")],
                (
                    "<tr>"
                    + _td(_flag(c.get("passed")))
                    + _td(_e(_check_name(c)))
                    + _td(_value(c.get("measured")), "num")
                    + _td(_value(c.get("threshold")))
                    + _td(_e(c.get("detail") or ""), "muted")
                    + "</tr>"
                    for c in checks
                ),
                css="compact",
            )
            + "</details>"
        )
    profile = _d(quality.get("profile"))
    profile_block = ""
    if profile.get("columns"):
        profile_block = (
            f"<details><summary>Column profile ({_num(profile.get('rows'))} rows)</summary>"
            f"{_profile_table(profile)}</details>"
        )
    return (
        f'<div class="card dataset"><h3>{_e(ds.get("name", "unnamed dataset"))} '
        f'<span class="role">{_e(role)}</span></h3>{facts}{summary}{failed_table}'
        f"{_drift_table(checks)}{all_checks}{profile_block}</div>"
    )


def _quality_section(metrics: Json, datasets: Sequence[Json]) -> str:
    if not datasets:
        return _section(
            "quality", "Data quality", '<p class="muted">No dataset attestations were given.</p>'
        )
    cards = sorted(
        ((_dataset_role(p, metrics), p) for p in datasets),
        key=lambda rp: (
            _role_order(rp[0]),
            str(_d(rp[1].get("dataset")).get("name")),
            str(_d(rp[1].get("dataset")).get("digest")),
        ),
    )
    return _section(
        "quality",
        "Data quality",
        "".join(_dataset_card(p, role) for role, p in cards),
    )


def _holdout_section(metrics: Json) -> str:
    holdout = _d(metrics.get("holdout"))
    rows, positives = holdout.get("rows"), holdout.get("positives")
    rate = positives / rows if _is_number(rows) and _is_number(positives) and rows else None
    facts = _kv(
        [
            ("Rows", _num(rows)),
            (
                "Positives",
                f"{_num(positives)} ({_num(rate)})" if rate is not None else _num(positives),
            ),
        ]
    )
    leakage = holdout.get("leakage")
    if leakage:
        leak = _d(leakage)
        disjoint = leak.get("disjoint") is True
        leak_body = (
            f"<p>{_flag(disjoint)} The holdout shares "
            f"{_num(leak.get('shared_rows'))} rows and {_num(leak.get('shared_keys'))} "
            f"{_e(leak.get('key') or 'key')} values with training dataset "
            f"{_e(leak.get('training_dataset'))}.</p>"
            + _kv(
                [
                    ("Training dataset", _e(leak.get("training_dataset"))),
                    ("Training rows", _num(leak.get("training_rows"))),
                    ("Holdout rows", _num(leak.get("holdout_rows"))),
                    ("Row hash", _e(leak.get("row_hash"))),
                    ("Identical rows", _num(leak.get("shared_rows"))),
                    ("Key", _e(leak.get("key")) if leak.get("key") else "none declared"),
                    ("Shared key values", _num(leak.get("shared_keys"))),
                ]
            )
        )
    else:
        leak_body = (
            '<p class="note">Not checked: the holdout and the training data are the same '
            "dataset (the recipe splits it), or no training data was given.</p>"
        )
    contracts = _d(metrics.get("contracts"))
    checks = [_d(c) for c in _l(contracts.get("checks"))]
    contract_table = _table(
        [("", ""), ("Contract", ""), ("Detail", "")],
        (
            "<tr>"
            + _td(_flag(c.get("passed")))
            + _td(_e(c.get("name")))
            + _td(_e(c.get("detail")), "muted")
            + "</tr>"
            for c in checks
        ),
        css="compact",
    )
    sanity = _d(metrics.get("sanity"))
    sanity_table = _table(
        [("", ""), ("Prediction sanity", "")],
        (f"<tr>{_td(_flag(sanity[k]))}{_td(_e(k.replace('_', ' ')))}</tr>" for k in sorted(sanity)),
        css="compact",
    )
    return _section(
        "holdout",
        "Holdout, leakage and contracts",
        f'<div class="columns"><div><h3>Holdout</h3>{facts}<h3>Leakage</h3>{leak_body}</div>'
        f"<div><h3>Model contracts</h3>{contract_table}<h3>Predictions</h3>{sanity_table}"
        "</div></div>",
    )


def _predicate_for(datasets: Sequence[Json], digest: object) -> dict[str, Any]:
    for p in datasets:
        if digest and _d(p.get("dataset")).get("digest") == digest:
            return _d(p)
    return {}


def _lineage_section(
    metrics: Json, train_report: Json, datasets: Sequence[Json], target: str
) -> str:
    lineage = _d(train_report.get("lineage"))
    recipe = _d(lineage.get("recipe"))
    model = _d(metrics.get("model"))
    gate_spec = _d(metrics.get("gate_spec"))
    rows: list[tuple[str, str]] = [
        ("Target", f"<code>{_e(target)}</code>"),
        ("Model", f"{_e(model.get('name', '—'))} {_hash(model.get('sha256'))}"),
    ]
    for label, ref in (
        ("Training dataset", _d(metrics.get("training_dataset"))),
        ("Holdout dataset", _d(metrics.get("dataset"))),
    ):
        manifest = _d(_predicate_for(datasets, ref.get("digest")).get("manifest"))
        rows.append((label, f"{_e(ref.get('name', '—'))} {_hash(ref.get('digest'))}"))
        rows.append(
            (
                f"{label} manifest",
                f"{_e(manifest.get('uri'))} {_hash(manifest.get('sha256'))}"
                if manifest
                else '<span class="muted">no dataset attestation given</span>',
            )
        )
    rows += [
        ("Code digest", _hash(lineage.get("code_digest"))),
        ("Lock sha256", _hash(lineage.get("lock_sha256"))),
        ("Recipe", f"{_e(recipe.get('name', '—'))} {_hash(recipe.get('sha256'))}"),
        ("Gate spec", f"{_e(gate_spec.get('path', '—'))} {_hash(gate_spec.get('sha256'))}"),
        ("retrain version", _e(lineage.get("retrain_version", "—"))),
    ]
    training = _d(train_report.get("training"))
    recipe_body = _d(train_report.get("recipe"))
    estimator = _d(recipe_body.get("estimator"))
    params = _d(estimator.get("params"))
    warnings = [str(w) for w in _l(training.get("warnings"))]
    training_rows: list[tuple[str, str]] = [
        (
            "Estimator",
            f"<code>{_e(estimator.get('type', '—'))}</code>"
            + (
                " " + ", ".join(f"{_e(k)}={_e(json.dumps(params[k]))}" for k in sorted(params))
                if params
                else ""
            ),
        ),
        ("Seed", _num(recipe_body.get("seed"))),
    ]
    for key in (
        "rows_total",
        "rows_train",
        "rows_holdout",
        "positives_train",
        "input_columns",
        "iterations",
    ):
        if key in training:
            training_rows.append((_e(key.replace("_", " ").capitalize()), _num(training[key])))
    training_rows.append(("Warnings", "<br>".join(_e(w) for w in warnings) if warnings else "none"))
    blas = [_d(b) for b in _l(train_report.get("blas"))]
    blas_table = _table(
        [("API", ""), ("Library", ""), ("Version", ""), ("Architecture", ""), ("Threads", "num")],
        (
            "<tr>"
            + _td(_e(b.get("user_api", "—")))
            + _td(_e(b.get("internal_api", "—")))
            + _td(_e(b.get("version", "—")))
            + _td(_e(b.get("architecture", "—")))
            + _td(_num(b.get("num_threads")), "num")
            + "</tr>"
            for b in blas
        ),
        css="compact",
    )
    return _section(
        "lineage",
        "Lineage",
        '<p class="lead">Everything this model was built and judged from, by digest.</p>'
        f"{_kv(rows)}"
        f'<div class="columns"><div><h3>Training</h3>{_kv(training_rows)}</div>'
        f"<div><h3>BLAS and OpenMP in the training action</h3>"
        f"{blas_table if blas else _NOT_RECORDED}</div></div>",
    )


def _consistency(metrics: Json, train_report: Json, datasets: Sequence[Json]) -> list[str]:
    """Cross-file disagreements a reader must not miss; the inputs should never have any."""
    out = []
    model_sha = _d(metrics.get("model")).get("sha256")
    trained_sha = train_report.get("model_sha256")
    if model_sha and trained_sha and model_sha != trained_sha:
        out.append(
            f"metrics.json evaluates model {model_sha}, but train_report.json describes {trained_sha}"
        )
    evaluated = _d(metrics.get("training_dataset")).get("digest")
    trained_on = _d(_d(train_report.get("lineage")).get("dataset")).get("digest")
    if evaluated and trained_on and evaluated != trained_on:
        out.append(
            f"metrics.json names training dataset {evaluated}, "
            f"but train_report.json was trained on {trained_on}"
        )
    gates = _d(metrics.get("gates"))
    failed = any(v.get("status") == "failed" for v in _verdicts(metrics))
    if gates.get("passed") is True and failed:
        out.append("gates.passed is true although a gate verdict failed")
    if gates.get("passed") is False and not failed:
        out.append("gates.passed is false although no gate verdict failed")
    if bool(gates.get("champion")) != bool(metrics.get("champion")):
        out.append("gates.champion disagrees with whether a champion was compared")
    return out


# ---------------------------------------------------------------------------

_CSS = """
:root { --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #b42318; --fail-bg: #fee4e2;
  --skip: #57606a; --skip-bg: #eaeef2; --accent: #0b5cad; --champ: #b35900; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 "Liberation Sans", "DejaVu Sans", Arial, Helvetica, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header, section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 20px 24px; margin: 0 0 20px; }
h1 { font-size: 26px; margin: 0 0 12px; word-break: break-all; }
h2 { font-size: 20px; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 18px 0 8px; }
h4 { font-size: 14px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.kicker { margin: 0; color: var(--muted); text-transform: uppercase; letter-spacing: .08em;
  font-size: 12px; }
nav { margin: 0 0 20px; font-size: 14px; }
nav a { color: var(--accent); margin-right: 16px; text-decoration: none; }
nav a:hover { text-decoration: underline; }
.lead { color: var(--muted); margin: 0 0 12px; }
.muted { color: var(--muted); }
.note { margin: 6px 0 0; }
.note.big { font-size: 16px; padding: 12px 16px; background: var(--skip-bg);
  border-left: 4px solid var(--skip); border-radius: 4px; }
code, .hash { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  font-size: 13px; }
.hash { word-break: break-all; color: #24292f; background: var(--bg); padding: 1px 4px;
  border-radius: 3px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
thead th { background: var(--bg); font-weight: 600; white-space: nowrap; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.compact th, table.compact td { padding: 4px 8px; font-size: 13px; }
table.kv { width: auto; min-width: 60%; }
table.kv th { width: 210px; color: var(--muted); font-weight: 600; white-space: nowrap; }
table.fixed { table-layout: fixed; }
table.fixed td { overflow-wrap: anywhere; }
table.gates td.message { color: var(--muted); font-size: 13px; }
table.calibration { width: auto; min-width: 440px; }
tr.verdict.failed td, tr.failed td { background: var(--fail-bg); }
tr.verdict.failed td:first-child { box-shadow: inset 4px 0 0 var(--fail); }
tr.verdict.skipped td { color: var(--muted); }
.gate-name { display: block; font-weight: 600; }
.gate-kind { display: block; color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 700; white-space: nowrap; margin: 1px 2px 1px 0; }
.badge.passed { color: var(--pass); background: var(--pass-bg); }
.badge.failed { color: #fff; background: var(--fail); }
.badge.skipped, .badge.unknown { color: var(--skip); background: var(--skip-bg); }
.banner { display: flex; gap: 24px; align-items: center; margin-top: 16px; padding: 14px 20px;
  border-radius: 6px; border: 2px solid; }
.banner.passed { background: var(--pass-bg); border-color: var(--pass); }
.banner.failed { background: var(--fail-bg); border-color: var(--fail); }
.banner .headline { font-size: 34px; font-weight: 800; letter-spacing: .04em; }
.banner.passed .headline { color: var(--pass); }
.banner.failed .headline { color: var(--fail); }
.banner p { margin: 0; font-weight: 600; }
.banner .note { font-weight: 400; }
.failed-names { margin: 4px 0; padding-left: 20px; }
.warnings { margin-top: 12px; padding: 10px 16px; background: #fff8c5;
  border: 1px solid #d4a72c; border-radius: 6px; }
.warnings ul { margin: 4px 0 0; }
.figure { margin: 14px 0 4px; overflow-x: auto; }
.legend-line { font-size: 13px; color: var(--muted); margin: 4px 0 0; }
.key { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; margin: 0 4px 0 8px; }
.key.point { border-radius: 50%; background: var(--accent); }
.key.champion { border-radius: 50%; border: 2px solid var(--champ); }
.key.threshold { width: 0; height: 14px; border-left: 2px dashed var(--fail); }
.side-by-side { display: flex; gap: 32px; align-items: flex-start; flex-wrap: wrap; }
.side-by-side > div:last-child { flex: 1; min-width: 360px; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 32px; }
.columns table.kv { width: 100%; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 4px 18px 12px; margin: 12px 0; }
.card h3 { font-size: 18px; }
.role { font-size: 12px; font-weight: 600; color: var(--accent); background: #ddf4ff;
  padding: 2px 8px; border-radius: 10px; margin-left: 6px; vertical-align: 2px; }
.check-summary { font-weight: 600; }
.fail-text { color: var(--fail); font-weight: 700; }
td.better { color: var(--pass); font-weight: 600; }
td.worse { color: var(--fail); font-weight: 600; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); font-size: 14px; }
svg.chart { display: block; max-width: 100%; height: auto; font-family: inherit; }
svg .band { fill: #f6f8fa; }
svg .plot-bg { fill: #fff; stroke: var(--line); }
svg .axis { stroke: #8c959f; stroke-width: 1; }
svg .tick { stroke: #8c959f; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
svg .tick-label { fill: var(--muted); font-size: 11px; }
svg .axis-label { fill: var(--fg); font-size: 13px; font-weight: 600; }
svg .row-label { fill: var(--fg); font-weight: 600; }
svg .row-value { fill: var(--fg); font-variant-numeric: tabular-nums; }
svg .legend { fill: var(--muted); font-size: 11px; }
svg .ci { stroke: var(--accent); stroke-width: 4; stroke-linecap: round; opacity: .55; }
svg .ci.failed { stroke: var(--fail); }
svg .metric-point, svg .slice-point { fill: var(--accent); stroke: #fff; stroke-width: 1.5; }
svg .metric-point.failed, svg .slice-point.failed { fill: var(--fail); }
svg .champion-point { fill: none; stroke: var(--champ); stroke-width: 2; }
svg .threshold { stroke: var(--fail); stroke-width: 1.5; stroke-dasharray: 4 3; }
svg .diagonal { stroke: #8c959f; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .calibration-line { fill: none; stroke: var(--accent); stroke-width: 2; }
svg .calibration-point { fill: var(--accent); fill-opacity: .8; stroke: #fff; stroke-width: 1.5; }
svg .count-bar { fill: #9ecbff; }
svg .count-label { fill: var(--muted); font-size: 11px; }
footer { color: var(--muted); font-size: 13px; text-align: center; }
@media print { body { background: #fff; } header, section { break-inside: avoid; } nav { display: none; } }
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def render_report(
    *,
    metrics: dict[str, Any],
    train_report: dict[str, Any],
    datasets: list[dict[str, Any]],
    target: str,
) -> str:
    """The validation report of one evaluated model, as a self-contained HTML page.

    ``metrics`` is metrics.json as the evaluation writes it, ``train_report``
    is train_report.json, ``datasets`` are the dataset predicates of the
    datasets involved (any order), ``target`` is the model's Bazel label.
    The same inputs give the same string.
    """
    verdicts = _verdicts(metrics)
    warnings = _consistency(metrics, train_report, datasets)
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("gates", "Gates"),
            ("metrics", "Metrics"),
            ("calibration", "Calibration"),
            ("slices", "Slices"),
            ("champion", "Champion"),
            ("quality", "Data quality"),
            ("holdout", "Holdout and contracts"),
            ("lineage", "Lineage"),
        )
    )
    body = "".join(
        [
            _header(metrics, target, verdicts, warnings),
            f"<nav>{nav}</nav>",
            _gates_section(verdicts),
            _metrics_section(metrics, verdicts),
            _calibration_section(metrics),
            _slices_section(metrics, verdicts),
            _champion_section(metrics),
            _quality_section(metrics, datasets),
            _holdout_section(metrics),
            _lineage_section(metrics, train_report, datasets, target),
        ]
    )
    version = _d(train_report.get("lineage")).get("retrain_version") or __version__
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Validation report: {_e(target)}</title>"
        f"<style>{_CSS}</style></head>"
        f"<body><main>{body}"
        f"<footer>retrain {_e(version)} validation report. Self-contained: no scripts, "
        "nothing loaded from the network.</footer></main></body></html>\n"
    )
