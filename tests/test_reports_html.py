"""Renders report.html in headless Chromium (installed by .ci/run; skipped elsewhere without it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from iqa_bench.reports import write_report
from tests.conftest import require_tool
from tests.run_fixture import make_run


def _chromium() -> str:
    return require_tool("chromium", "chromium-browser", install="apt-get install chromium")


def test_report_html_renders_in_headless_chromium_without_page_errors(tmp_path: Path) -> None:
    browser = _chromium()
    run_dir = make_run(tmp_path / "runs")
    folder = write_report(run_dir, tmp_path / "reports", n_boot=200, n_perm=500)
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",  # routes page console messages to stderr
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            (folder / "report.html").resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    page_errors = [
        line
        for line in proc.stderr.splitlines()
        if re.search(r"CONSOLE|Uncaught|Failed to load resource|net::ERR_", line)
    ]
    assert page_errors == []
    with Image.open(shot) as img:
        assert img.size == (1280, 2000)
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 5  # the page drew something, not a blank canvas
    # The synthetic warning box is dark red on pink near the top: look for its colour.
    rgb = np.asarray(Image.open(shot).convert("RGB"))[:300].reshape(-1, 3).astype(int)
    reddish = (rgb[:, 0] > 150) & (rgb[:, 1] < 80) & (rgb[:, 2] < 80)
    assert reddish.sum() > 100
