"""The validation report as a browser renders it: headless Debian Chromium, no network.

The page is rendered from real inputs (tests.unit.test_report builds them),
opened from a file: URL, and checked twice: the DOM Chromium built must hold
the charts with their plotted marks, and a screenshot at 1280 px must show a
page, not a blank. The screenshot is kept in test-artifacts/report.png for
people (and CI) to look at.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.unit.test_report import ReportInputs, report_inputs

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_S = 60
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,4000",
)


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found is None:
        pytest.fail(
            "Chromium is not installed, and the report test renders the HTML in headless Chromium: "
            "run scripts/setup.sh (it installs the Debian package chromium)"
        )
    return found


def _run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = profile / "home"
    home.mkdir(parents=True, exist_ok=True)
    # Its own home and profile: nothing read from or written to the user's.
    env = dict(
        os.environ,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
    )
    command = [_chromium(), *FLAGS, f"--user-data-dir={profile / 'user-data'}", *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(command)}")
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    return report_inputs(tmp_path_factory.mktemp("report-inputs"))


@pytest.fixture(scope="module")
def report_file(inputs: ReportInputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(inputs.render(), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# The DOM


class _Marks(HTMLParser):
    """Per <svg id>, the classes of the marks drawn inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.svg: str | None = None
        self.marks: dict[str, Counter[str]] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self.svg = found.get("id", "")
            self.marks.setdefault(self.svg, Counter())
        elif self.svg is not None:
            for css in found.get("class", "").split():
                self.marks[self.svg][f"{tag}.{css}"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_chromium_builds_the_charts_with_their_marks(
    inputs: ReportInputs, report_file: Path, tmp_path: Path
) -> None:
    done = _run_chromium(tmp_path, "--dump-dom", report_file.as_uri())
    dom = _Marks()
    dom.feed(done.stdout)
    non_empty_bins = sum(1 for b in inputs.metrics["calibration"] if b["count"])

    assert {"calibration-curve", "metric-intervals", "slice-auc-intervals"} <= set(dom.marks)
    calibration = dom.marks["calibration-curve"]
    assert calibration["circle.calibration-point"] >= non_empty_bins > 0
    assert calibration["line.diagonal"] == 1
    assert calibration["rect.count-bar"] == len(inputs.metrics["calibration"])
    assert dom.marks["metric-intervals"]["circle.metric-point"] == len(inputs.metrics["metrics"])
    assert dom.marks["metric-intervals"]["line.ci"] == len(inputs.metrics["metrics"])
    assert dom.marks["slice-auc-intervals"]["circle.slice-point"] == len(inputs.metrics["slices"])
    assert "FAILED" in " ".join(dom.text)


# ---------------------------------------------------------------------------
# The screenshot


def _png_rows(data: bytes, limit: int) -> tuple[int, int, list[bytes]]:
    """The first ``limit`` pixel rows of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride, rows, prev = width * channels, [], bytearray(width * channels)
    for y in range(min(height, limit)):
        start = y * (stride + 1)
        scanline_filter, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if scanline_filter == 1:
                line[i] = (line[i] + a) & 0xFF
            elif scanline_filter == 2:
                line[i] = (line[i] + b) & 0xFF
            elif scanline_filter == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif scanline_filter == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [r[i : i + 3] for r in rows for i in range(0, stride, channels)]


def test_chromium_screenshot_shows_the_report(report_file: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"

    _run_chromium(tmp_path, f"--screenshot={shot}", report_file.as_uri())

    assert shot.is_file(), "chromium wrote no screenshot"
    data = shot.read_bytes()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report.png")
    assert len(data) > 20_000, f"screenshot is only {len(data)} bytes"
    # The header, the verdict banner and the start of the gate table.
    width, height, pixels = _png_rows(data, limit=700)
    colors = Counter(pixels)
    background, most = colors.most_common(1)[0]
    assert (width, height) == (1280, 4000)
    assert len(colors) > 50, f"only {len(colors)} colours: a blank page?"
    assert most / len(pixels) < 0.9, (
        f"{most / len(pixels):.0%} of the top is one colour {background.hex()}"
    )
    red_banner = bytes((0xFE, 0xE4, 0xE2))
    assert colors[red_banner] > 10_000, "the FAILED banner's background is not on screen"
