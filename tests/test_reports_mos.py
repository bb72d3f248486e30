"""MOS reports: correlations equal scipy's, DMOS orientation, failed fits, CSV rows, rendered
tables and figures, the resize setting, and `iqa-bench bench` end to end on a generated TID2013."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.stats
from PIL import Image

from iqa_bench.reports import CSV_COLUMNS, summarize, terminal_summary, write_report
from iqa_bench.reports.mos_tables import corr_markdown, overall_table
from iqa_bench.reports.tables import csv_text
from iqa_bench.results import load_run
from tests.conftest import compile_latex
from tests.mos_fixture import FakeMOSMetric, make_mos_run, make_tid2013

FAST = {"n_boot": 100, "n_perm": 100}
TYPES = ("gaussian-noise", "jpeg", "gaussian-blur")


@pytest.fixture(scope="module")
def dmos_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mos_run(
        tmp_path_factory.mktemp("runs"), dataset="live", higher_is_better_mos=False, failed=(0, 7)
    )


@pytest.fixture(scope="module")
def dmos_summary(dmos_run: Path):
    return summarize(load_run(dmos_run), **FAST)


@pytest.fixture(scope="module")
def report_dir(dmos_run: Path, dmos_summary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(dmos_run, tmp_path_factory.mktemp("reports"), summary=dmos_summary)


def _oriented(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = load_run(run_dir).mos(metric)
    y = data.mos if data.higher_is_better_mos else -data.mos
    return -data.d, y, data.subset


@pytest.mark.parametrize("higher_is_better_mos", [True, False])
def test_overall_correlations_equal_scipy_after_the_fit(
    tmp_path: Path, higher_is_better_mos: bool
) -> None:
    run_dir = make_mos_run(tmp_path, higher_is_better_mos=higher_is_better_mos)
    mos = summarize(load_run(run_dir), **FAST).mos
    for row in mos.rows:
        q, y, _ = _oriented(run_dir, row.metric)
        assert row.srcc.value == pytest.approx(scipy.stats.spearmanr(q, y).statistic, abs=1e-9)
        assert row.krcc.value == pytest.approx(scipy.stats.kendalltau(q, y).statistic, abs=1e-9)
        assert row.fit.converged, row.fit.message
        mapped = row.fit.predict(q)
        sign = np.sign(scipy.stats.pearsonr(mapped, q).statistic)
        expected = sign * scipy.stats.pearsonr(mapped, y).statistic
        assert row.plcc.value == pytest.approx(expected, abs=1e-9)
        assert row.srcc.low <= row.srcc.value <= row.srcc.high


def test_per_type_correlations_equal_scipy_on_each_type(dmos_run: Path, dmos_summary) -> None:
    row = dmos_summary.mos.row("l2")
    q, y, subset = _oriented(dmos_run, "l2")
    assert tuple(row.per_type) == TYPES == dmos_summary.mos.subsets
    for name, cell in row.per_type.items():
        keep = subset == name
        assert cell.n == keep.sum()
        assert cell.srcc.value == pytest.approx(
            scipy.stats.spearmanr(q[keep], y[keep]).statistic, abs=1e-9
        )
        assert cell.krcc.value == pytest.approx(
            scipy.stats.kendalltau(q[keep], y[keep]).statistic, abs=1e-9
        )
        plcc = scipy.stats.pearsonr(row.fit.predict(q[keep]), y[keep]).statistic
        assert cell.plcc.value == pytest.approx(plcc, abs=1e-9)
        assert cell.srcc.low < cell.srcc.value < cell.srcc.high


def test_dmos_is_oriented_so_tracking_it_is_positive_and_never_abs(dmos_summary) -> None:
    mos = dmos_summary.mos
    assert mos.higher_is_better_mos is False and mos.score_name == "DMOS"
    # lpips-alex's distance grows with DMOS: agreement must come out positive.
    assert mos.row("lpips-alex").srcc.value > 0.9 and mos.row("lpips-alex").plcc.value > 0.9
    # ssim is a similarity stored as such; the loader negates it into a distance.
    assert mos.row("ssim").srcc.value > 0.7
    # A metric ranking images backwards keeps its negative sign.
    backwards = mos.row("backwards")
    assert (
        backwards.srcc.value < -0.7 and backwards.krcc.value < -0.5 and backwards.plcc.value < -0.7
    )


def test_failed_samples_are_excluded_and_counted(dmos_summary) -> None:
    row = dmos_summary.mos.row("l2")
    assert row.n_failed == 2 and row.n == 3 * 30 - 2
    assert sum(c.n for c in row.per_type.values()) == row.n


def test_logistic_fit_that_does_not_converge_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found: maxfev reached")

    monkeypatch.setattr(scipy.optimize, "curve_fit", fails)
    run_dir = make_mos_run(tmp_path, metrics=[FakeMOSMetric("l2", "classical", 0.3)])
    summary = summarize(load_run(run_dir), **FAST)
    row = summary.mos.row("l2")
    assert not row.fit.converged and "did not converge" in row.fit.message
    q, y, _ = _oriented(run_dir, "l2")
    assert row.plcc.value == pytest.approx(scipy.stats.pearsonr(q, y).statistic, abs=1e-9)
    folder = write_report(run_dir, tmp_path / "reports", summary=summary)
    text = (folder / "report.md").read_text()
    assert "| failed: raw r |" in text and "5pl logistic fit did not converge" in text
    assert "did not converge" in (folder / "report.html").read_text()
    assert (
        json.loads((folder / "summary.json").read_text())["mos"]["rows"][0]["fit"]["converged"]
        is False
    )


def test_manifest_without_score_direction_is_refused(tmp_path: Path) -> None:
    run_dir = make_mos_run(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["dataset"]["mos_higher_is_better"] = None
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"mos_higher_is_better is None.*must not be guessed"):
        summarize(load_run(run_dir), **FAST)


def test_csv_has_a_row_per_statistic_metric_and_type_in_the_documented_columns(
    dmos_summary,
) -> None:
    df = pd.read_csv(io.StringIO(csv_text(dmos_summary)))
    assert tuple(df.columns) == CSV_COLUMNS
    assert set(df.task) == {"mos-srcc", "mos-krcc", "mos-plcc"}
    assert len(df) == 3 * 4 * (1 + len(TYPES))  # statistics x metrics x (all + types)
    row = df[(df.task == "mos-plcc") & (df.metric == "backwards") & (df.subset == "all")].iloc[0]
    plcc = dmos_summary.mos.row("backwards").plcc
    assert row.score == pytest.approx(plcc.value, abs=1e-4) and row.n == 88
    assert row.ci_low == pytest.approx(plcc.low, abs=1e-4) and row.group == "custom"
    jpeg = df[(df.task == "mos-srcc") & (df.metric == "l2") & (df.subset == "jpeg")].iloc[0]
    assert jpeg.score == pytest.approx(
        dmos_summary.mos.row("l2").per_type["jpeg"].srcc.value, abs=1e-4
    )


def test_overall_table_bolds_the_best_metric_and_names_direction(dmos_summary) -> None:
    text = corr_markdown(overall_table(dmos_summary))
    best = re.search(
        r"^\| Learned \(LPIPS, DISTS\) \| lpips-alex \| \*\*0\.\d{3} ± 0\.\d{3}\*\* \|", text, re.M
    )
    assert best, text
    assert "Scores: DMOS: higher = worse quality" in text and "no absolute values" in text
    assert "| Custom | backwards | -0." in text


def test_report_renders_every_table_and_figure(report_dir: Path) -> None:
    assert report_dir.parts[-2:] == ("live", "20261126-131500-tid2013")
    md = (report_dir / "report.md").read_text()
    for needle in (
        "## Correlation with DMOS",
        "### SRCC per distortion type",
        "| Distortion type | l2 | ssim | lpips-alex | backwards |",
        "| all images |",
        "](figures/mos_scatter.png)",
        "](figures/mos_types.png)",
        "](figures/mos_correlations.png)",
        "| scores | DMOS: higher = worse quality",
        "| image size | native resolution (no resizing) |",
    ):
        assert needle in md, needle
    tex = (report_dir / "report.tex").read_text()
    assert r"\label{tab:iqa-mos}" in tex and r"\label{tab:iqa-mos-types}" in tex
    assert r"\usepackage{graphicx}" in tex and r"\toprule" in tex
    page = (report_dir / "report.html").read_text()
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 3
    assert "<script" not in page.lower() and "Correlation with DMOS" in page
    data = json.loads((report_dir / "summary.json").read_text())
    assert data["mos"]["score"] == "DMOS" and len(data["mos"]["rows"]) == 4


def test_mos_report_tex_compiles_with_pdflatex(report_dir: Path, tmp_path: Path) -> None:
    shutil.copy(report_dir / "report.tex", tmp_path / "report.tex")
    compile_latex(tmp_path / "report.tex")


@pytest.mark.parametrize("stem", ["mos_scatter", "mos_types", "mos_correlations"])
def test_mos_figures_are_non_blank_png_and_pdf(report_dir: Path, stem: str) -> None:
    assert (report_dir / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    with Image.open(report_dir / "figures" / f"{stem}.png") as img:
        assert img.width >= 600 and img.height >= 300
        assert np.asarray(img.convert("L")).std() > 5


def test_resize_setting_is_recorded_in_every_report(tmp_path: Path) -> None:
    metrics = [FakeMOSMetric("l2", "classical", 0.3)]
    run_dir = make_mos_run(tmp_path, resize=224, metrics=metrics)
    folder = write_report(run_dir, tmp_path / "reports", n_boot=100, n_perm=100)
    for name in ("report.md", "report.html", "report.tex"):
        assert "resized to 224x224" in (folder / name).read_text(), name


def test_terminal_summary_lists_correlations_not_2afc(dmos_summary) -> None:
    text = terminal_summary(dmos_summary)
    assert "2AFC avg" not in text and "DMOS: higher = worse quality" in text
    assert re.search(r"^lpips-alex\s+lpips\s+0\.\d{3} ± 0\.\d{3}", text, re.M)


# -- end to end: `make bench DATASET=tid2013` ------------------------------------------------------


def test_bench_tid2013_runs_cheap_metrics_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from iqa_bench.cli import main

    make_tid2013(tmp_path / "data" / "tid2013", types=(1, 8, 10), refs=3, levels=5)
    argv = [
        "bench",
        "--dataset",
        "tid2013",
        "--data-root",
        str(tmp_path / "data"),
        "--metrics",
        "l2,psnr,ssim",
        "--out",
        str(tmp_path / "run"),
        "--reports-dir",
        str(tmp_path / "reports"),
        "--n-boot",
        "100",
        "--n-perm",
        "100",
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "MOS: higher = better quality; 45 images" in out
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "tid2013" and manifest["dataset"]["card_version"] == 1
    assert manifest["dataset"]["mos_higher_is_better"] is True and manifest["resize"] is None
    folder = next((tmp_path / "reports" / "tid2013").iterdir())
    mos = json.loads((folder / "summary.json").read_text())["mos"]
    assert mos["subsets"] == ["gaussian-noise", "gaussian-blur", "jpeg"]
    assert all(r["srcc"]["value"] > 0.5 for r in mos["rows"])  # noise grows, scores fall


def test_bench_offline_fails_saying_where_files_go_and_which_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from iqa_bench.cli import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/tid2013.rar"
    cards = tmp_path / "cards"
    (cards / "metrics").mkdir(parents=True)
    (cards / "datasets").mkdir()
    (cards / "datasets" / "tid2013.yaml").write_text(
        "name: tid2013\nversion: 1\nadapter: tid2013\ndescription: x\ndownload:\n"
        f"  - {{part: all, url: '{url}', extract_to: '', provides: mos_with_names.txt}}\n"
    )
    monkeypatch.setenv("IQA_BENCH_CARDS", str(cards))
    monkeypatch.setattr("iqa_bench.download.time.sleep", lambda s: None)
    argv = ["bench", "--dataset", "tid2013", "--data-root", str(tmp_path / "data"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{url} extracted into {tmp_path / 'data' / 'tid2013'}" in err
    assert "mos_with_names.txt" in err


def test_mos_table_counts_samples_dropped_when_opening_and_failed_while_scoring(
    tmp_path: Path,
) -> None:
    # An older runner's entry has no task: a run with only the mos task can only mean mos.
    bad = [{"sample_id": "jpeg/i999", "path": "/data/i999.bmp", "reason": "not an image"}]
    run_dir = make_mos_run(tmp_path, failed=(0,), bad_samples=bad)
    summary = summarize(load_run(run_dir), **FAST)
    sentence = "2 sample(s) excluded: 1 dropped when opening the dataset, 1 failed while scoring."
    assert sentence in overall_table(summary).caption
    counts = json.loads(json.dumps(summary.to_dict()))["excluded_samples"]["counts"]
    assert counts == [
        {"stage": "opening", "task": "mos", "subset": "", "n": 1},
        {"stage": "scoring", "task": "mos", "subset": TYPES[0], "n": 1},
    ]
    assert "excluded samples: 2 (1 dropped when opening the dataset: mos 1; 1 failed" in (
        terminal_summary(summary)
    )
