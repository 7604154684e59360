"""HTML reports: one self-contained file per run or sweep, checked in a headless Chromium."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from insitu.errors import ConfigError
from insitu.experiments import make_config, train
from insitu.experiments.report import REPORT_NAME, write_report
from insitu.experiments.sweep import make_sweep
from insitu.experiments.sweep_runner import run_sweep

CHROMIUM = Path("/usr/bin/chromium")
# Appended to a copy of a report: after the page has loaded, write what the browser made of
# its images and references into the DOM, which --dump-dom prints.
PROBE = """
<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images).map(
    i => ({w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}));
  const refs = Array.from(document.querySelectorAll('[src],[href]')).map(
    e => (e.getAttribute('src') || e.getAttribute('href')).slice(0, 40));
  const captions = Array.from(document.querySelectorAll('figure')).map(
    f => (f.querySelector('figcaption') || {textContent: ''}).textContent);
  const boxes = Array.from(document.querySelectorAll('div.scroll')).map(
    d => ({scrolls: d.scrollWidth > d.clientWidth, width: d.clientWidth}));
  const pageWider = document.documentElement.scrollWidth > window.innerWidth;
  const out = document.createElement('pre');
  out.id = 'insitu-probe';
  out.textContent = JSON.stringify({imgs: imgs, refs: refs, title: document.title,
    captions: captions, boxes: boxes, pageWider: pageWider});
  document.body.appendChild(out);
});
</script>
"""


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def open_in_chromium(page: Path, tmp_path: Path) -> dict[str, Any]:
    """Load ``page`` in a headless Chromium (no network, fresh profile); what it saw."""
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: the report test needs Chromium (`apt-get install -y chromium`; "
        ".ci/run installs it)"
    )
    probe = tmp_path / f"probe-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8") + PROBE, encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="insitu-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading: {done.stdout[-500:]}"
    seen: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return seen


def assert_self_contained(seen: dict[str, Any], images: int) -> None:
    assert len(seen["imgs"]) == images
    # Every figure has a caption, and nothing makes the page itself wider than the window.
    assert len(seen["captions"]) == images and all(seen["captions"]), seen["captions"]
    assert not seen["pageWider"]
    for img in seen["imgs"]:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
    # Every reference is inside the page: data URIs (or in-page anchors), nothing to fetch.
    for ref in seen["refs"]:
        assert ref.startswith(("data:image/png;base64,", "#")), ref


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = make_config(
        {"hidden": [8], "limit_train": 100, "limit_test": 50, "epochs": 2, "instances": 2}
    )
    path = tmp_path_factory.mktemp("report") / "run"
    train(cfg, path, console=quiet(), progress=False)
    return path


def test_run_report_loads_in_chromium(run_dir: Path, tmp_path: Path) -> None:
    page = write_report(run_dir)
    assert page == run_dir / REPORT_NAME
    text = page.read_text(encoding="utf-8")
    assert "analog-sgd" in text and "test_acc_mean" in text
    assert "<h2>Metrics per epoch</h2>" in text and "<h2>Config</h2>" in text
    assert "Learning curve: accuracy" in text and "Final conductances" in text
    assert "http://" not in text and "https://" not in text
    seen = open_in_chromium(page, tmp_path)
    assert seen["title"] == f"insitu run {run_dir.name}"
    assert_self_contained(seen, images=2)


def test_energy_breakdown_and_totals_are_shown(run_dir: Path, tmp_path: Path) -> None:
    # As a run with the energy section another module adds to summary.json would look.
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["energy"] = {"total_j": 1.5e-6, "by_event": {"device_pulse": 1.0e-6}}
    (copy / "summary.json").write_text(json.dumps(summary))
    shutil.copy(copy / "learning_curve.png", copy / "energy_breakdown.png")
    page = write_report(copy, tmp_path / "out" / "page.html")
    text = page.read_text(encoding="utf-8")
    assert "<h2>Energy</h2>" in text and "total_j" in text and "by_event.device_pulse" in text
    assert "energy breakdown" in text
    assert_self_contained(open_in_chromium(page, tmp_path), images=3)


def test_sweep_report_loads_in_chromium(tmp_path: Path) -> None:
    spec = make_sweep(
        {
            "name": "report",
            "base": {"hidden": [8], "limit_train": 60, "limit_test": 30, "epochs": 1},
            "grid": {"lr": [0.1, 0.4]},
            "seeds": [0],
        }
    )
    assert isinstance(spec.base, dict)
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(spec, dict(spec.base), sweep_dir, workers=1, console=quiet())
    page = write_report(sweep_dir)
    text = page.read_text(encoding="utf-8")
    assert "<h2>Results</h2>" in text and "trial-000" in text and "trial-001" in text
    best = max(result.rows, key=lambda r: r["test_acc_mean"])["trial"]
    assert f"Best trial: {best}" in text
    seen = open_in_chromium(page, tmp_path)
    # The sweep plot of lr, then the best trial's learning curve and conductance histogram.
    assert_self_contained(seen, images=3)
    assert "metric against lr: every finished trial a dot" in text
    # The results table (a column per metric and energy total) is wider than the window: it
    # scrolls inside its box.
    assert seen["boxes"][0]["scrolls"], seen["boxes"]


def cells(text: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", text, re.S)]


def section(text: str, heading: str) -> str:
    start = text.index(f"<h2>{heading}</h2>")
    end = text.find("<h2>", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_numbers_are_short_and_accuracies_in_percent(run_dir: Path) -> None:
    text = write_report(run_dir, run_dir.parent / "numbers.html").read_text(encoding="utf-8")
    shown = cells(text)
    assert shown
    long = [c for c in shown if re.search(r"\d\.\d{5,}", c)]
    assert not long, long
    summary = json.loads((run_dir / "summary.json").read_text())
    mean = 100 * summary["test_acc_mean"]
    assert f"{mean:.2f} %" in cells(section(text, "Summary"))
    metrics = cells(section(text, "Metrics per epoch"))
    percents = [c for c in metrics if c.endswith(" %")]
    assert len(percents) == 4 * 3  # train and test accuracy, mean and std, epochs 0 to 2
    assert all(re.fullmatch(r"\d{1,3}\.\d{2} %", c) for c in percents), percents
    assert "n/a" in metrics  # the untrained network's loss


def test_event_log_is_a_table_with_counts_and_energy(run_dir: Path, tmp_path: Path) -> None:
    text = write_report(run_dir, tmp_path / "events.html").read_text(encoding="utf-8")
    events = section(text, "Events")
    assert "<table>" in events and "energy (J, profile ecram-enode)" in events
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", events, re.S)[1:]]
    assert [r[0] for r in rows] == sorted(summary["events"])
    pulses = next(r for r in rows if r[0] == "device_pulse")
    assert pulses[3] == f"{summary['events']['device_pulse']:,.0f}"
    assert float(pulses[4]) > 0  # pulses cost energy in the ENODe profile
    # Without a cost profile in the summary the counts alone are shown.
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    del summary["energy"]
    (copy / "summary.json").write_text(json.dumps(summary))
    text = write_report(copy, tmp_path / "counts.html").read_text(encoding="utf-8")
    assert "<table>" in section(text, "Events") and "energy (J" not in text


def test_the_probe_sees_a_broken_image(tmp_path: Path) -> None:
    # The check can fail: a page with an undecodable image is caught.
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>b</title></head><body>"
        '<img src="data:image/png;base64,AAAA"><a href="https://example.invalid/">x</a>'
        "</body></html>"
    )
    seen = open_in_chromium(page, tmp_path)
    assert seen["imgs"][0]["w"] == 0
    with pytest.raises(AssertionError):
        assert_self_contained(seen, images=1)


def test_report_of_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a run directory"):
        write_report(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        write_report(tmp_path / "missing")
