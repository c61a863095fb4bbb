"""The report opens in a real browser: images load and the metrics table is there."""

import shutil
import subprocess
from pathlib import Path

import pytest

import simple_diffusion as sd

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "detector"
    data = Path(__file__).resolve().parent.parent / "examples" / "detector.csv"
    sd.fit(str(data), config={"train": {"epochs": 3}, "data": {"bounds": "efficiency=0:1,energy=0:",
                                                                "integer": ["hits"]}},
           out=out, progress=False, num_samples=3000)
    return out / "report.html"


def test_report_is_self_contained(report):
    page = report.read_text()
    assert page.count('src="data:image/png;base64,') == 2
    assert 'id="metrics"' in page and "ratio" in page
    assert "ratio of exact samples at these sizes" in page
    assert 'id="memorisation"' in page and "nearer a training row than a held-out row" in page
    assert "http://" not in page and "https://" not in page


@pytest.mark.skipif(BROWSER is None, reason="needs Chromium (.ci/run installs Debian's chromium)")
def test_report_renders_in_chromium(report, tmp_path):
    dom = subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'a'}", "--virtual-time-budget=5000",
         "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert 'data-images-ok="true"' in dom
    assert '<table id="metrics">' in dom and "ratio" in dom
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'b'}", "--window-size=1200,1600",
         f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    assert screenshot.stat().st_size > 10_000
