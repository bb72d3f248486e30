"""`iqa-bench table`: several runs side by side, in Markdown, LaTeX, tidy CSV and HTML."""

from __future__ import annotations

import csv
import io
import re
import shutil
from contextlib import redirect_stdout
from html.parser import HTMLParser
from pathlib import Path

import pytest

from iqa_bench.cli import main
from iqa_bench.reports import summarize
from iqa_bench.reports.cross_table import CROSS_CSV_COLUMNS, cross_table
from iqa_bench.results import load_run
from iqa_bench.stats import StatsOptions
from tests.conftest import compile_latex
from tests.mos_fixture import make_mos_run, make_tid2013
from tests.run_fixture import FakeMetric, make_run

FAST = ["--n-boot", "200"]
OPTIONS = StatsOptions(n_boot=200)
BAPPS = "bapps v1, val: 2AFC avg (%)"
SYNTH_2AFC = "synthetic v1, val (synthetic): 2AFC avg (%)"
SYNTH_JND = "synthetic v1, val (synthetic): JND mAP (%)"
TID_SRCC = "tid2013 v1, all: SRCC"
TID_PLCC = "tid2013 v1, all: PLCC"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2AFC run (human judgments, lpips-vgg skipped), a synthetic 2AFC+JND run with two
    classical metrics, and a TID2013 MOS run with a metric no other run has."""
    root = tmp_path_factory.mktemp("runs")
    jnd_metrics = (
        FakeMetric("l2", "classical", 0.6),
        FakeMetric("ssim", "classical", 0.3, higher_is_better=True),
    )
    return {
        "2afc": make_run(
            root, run_id="bapps-run", dataset="bapps", synthetic=False, jnd_subsets=()
        ),
        "jnd": make_run(root, run_id="jnd-run", metrics=jnd_metrics, skipped={}),
        "mos": make_mos_run(root, run_id="tid-run", failed=(4,)),
    }


@pytest.fixture(scope="module")
def written(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("table")
    argv = ["table", str(runs["2afc"]), str(runs["jnd"]), str(runs["mos"]), "--out", str(out)]
    assert main([*argv, *FAST]) == 0
    return out


def _markdown_grid(text: str) -> dict[str, dict[str, str]]:
    """Metric -> column header -> cell text of the Markdown table."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [h.strip() for h in lines[0].strip("| ").split(" | ")]
    grid = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("| ").split(" | ")]
        grid[cells[1]] = dict(zip(header, cells, strict=True))
    return grid


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


class _Cells(HTMLParser):
    """Collects every table row's cells as ``(text, class)`` and checks tags are balanced."""

    VOID = {"meta", "br", "img"}

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str]]] = []
        self.open: list[str] = []
        self.cell: list[str] | None = None
        self.cls = ""
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.open.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.cell, self.cls = [], dict(attrs).get("class") or ""

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"
        if tag in ("td", "th"):
            self.rows[-1].append(("".join(self.cell or []), self.cls))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def _html_grid(page: str) -> tuple[_Cells, dict[str, list[tuple[str, str]]]]:
    parser = _Cells()
    parser.feed(page)
    parser.close()
    body = {r[0][0]: r[1:] for r in parser.rows[2:] if len(r) > 1}
    return parser, body


def _printed(argv: list[str]) -> str:
    """What ``iqa-bench ARGV`` prints (it must succeed)."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


def _shown(score: float, half: float, digits: int) -> str:
    return f"{score:.{digits}f} ± {half:.{digits}f}"


# -- the three task kinds in every format ------------------------------------------------------


def test_table_of_a_2afc_a_jnd_and_a_mos_run_writes_all_four_formats(written: Path) -> None:
    assert sorted(p.name for p in written.iterdir()) == [
        "table.csv",
        "table.html",
        "table.md",
        "table.tex",
    ]
    grid = _markdown_grid((written / "table.md").read_text())
    assert list(grid["l2"])[2:] == [BAPPS, SYNTH_2AFC, SYNTH_JND, TID_SRCC, TID_PLCC]
    # Rows grouped classical -> deep baseline -> LPIPS -> custom, as the report groups them.
    assert list(grid) == [
        "l2",
        "ssim",
        "lpips-vgg-baseline",
        "lpips-alex",
        "lpips-vgg",
        "my_metric",
        "backwards",
    ]


def test_every_cell_is_the_runs_own_summary_number(runs: dict[str, Path], written: Path) -> None:
    grid = _markdown_grid((written / "table.md").read_text())
    rows = _csv_rows((written / "table.csv").read_text())
    checked = 0
    for column, run_dir, task in [
        (BAPPS, runs["2afc"], "2afc"),
        (SYNTH_2AFC, runs["jnd"], "2afc"),
        (SYNTH_JND, runs["jnd"], "jnd"),
    ]:
        summary = summarize(load_run(run_dir), OPTIONS)
        for row in summary.tasks[task].rows:
            avg = row.avg
            assert grid[row.metric][column].strip("*") == _shown(avg.score, avg.half_width, 1)
            (tidy,) = [
                r
                for r in rows
                if r["metric"] == row.metric and r["run_id"] == summary.run_id and r["task"] == task
            ]
            assert float(tidy["value"]) == round(avg.score, 4)
            assert (float(tidy["ci_low"]), float(tidy["ci_high"])) == (
                round(avg.ci_low, 4),
                round(avg.ci_high, 4),
            )
            assert int(tidy["n"]) == avg.n
            checked += 1
    mos = summarize(load_run(runs["mos"]), OPTIONS).mos
    for row in mos.rows:
        for column, e in ((TID_SRCC, row.srcc), (TID_PLCC, row.plcc)):
            assert grid[row.metric][column].strip("*") == _shown(e.value, (e.high - e.low) / 2, 3)
            checked += 1
    assert checked == 5 + 2 + 2 + 2 * 4


def test_a_cell_equals_the_number_iqa_bench_report_prints(
    runs: dict[str, Path], written: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid = _markdown_grid((written / "table.md").read_text())
    for run_dir, metric, columns in [
        (runs["jnd"], "ssim", [SYNTH_2AFC, SYNTH_JND]),
        (runs["mos"], "ssim", [TID_SRCC, TID_PLCC]),
    ]:
        capsys.readouterr()
        argv = ["report", str(run_dir), "--reports-dir", str(tmp_path), "--n-perm", "200"]
        assert main([*argv, *FAST]) == 0
        (line,) = [
            line for line in capsys.readouterr().out.splitlines() if line.startswith(metric + " ")
        ]
        printed = re.findall(r"-?\d+\.\d+ ± \d+\.\d+", line)
        # The terminal shows SRCC, KRCC, PLCC for MOS runs; the table keeps SRCC and PLCC.
        printed = [printed[0], printed[2]] if run_dir == runs["mos"] else printed
        assert [grid[metric][c].strip("*") for c in columns] == printed


def test_best_metric_per_column_is_bold(written: Path) -> None:
    grid = _markdown_grid((written / "table.md").read_text())
    bold = {c: [m for m in grid if grid[m][c].startswith("**")] for c in grid["l2"]}
    # lpips-alex has the least noise in the fixtures; ssim beats l2 where lpips-alex is absent.
    assert bold[BAPPS] == ["lpips-alex"]
    assert bold[SYNTH_2AFC] == bold[SYNTH_JND] == ["ssim"]
    assert bold[TID_SRCC] == bold[TID_PLCC] == ["lpips-alex"]
    _, html_rows = _html_grid((written / "table.html").read_text())
    best = {
        m: [i for i, (_, cls) in enumerate(cells) if "best" in cls]
        for m, cells in html_rows.items()
    }
    assert best["lpips-alex"] == [0, 3, 4] and best["ssim"] == [1, 2] and best["l2"] == []
    tex = (written / "table.tex").read_text()
    (alex,) = [line for line in tex.splitlines() if line.startswith("lpips-alex &")]
    assert alex.count(r"\textbf") == 3


def test_metrics_tied_at_the_printed_precision_are_all_bold(tmp_path: Path) -> None:
    # Without noise both metrics rank every triplet alike: the same 2AFC avg.
    twins = (FakeMetric("a", "classical", 0.0), FakeMetric("b", "classical", 0.0))
    run_dir = make_run(tmp_path, metrics=(*twins, FakeMetric("c", "classical", 0.5)), skipped={})
    grid = _markdown_grid(_printed(["table", str(run_dir), *FAST]))
    column = "synthetic v1, val (synthetic): 2AFC avg (%)"
    assert grid["a"][column] == grid["b"][column]
    assert [m for m in grid if grid[m][column].startswith("**")] == ["a", "b"]


def test_missing_metrics_say_whether_skipped_or_not_run(written: Path) -> None:
    text = (written / "table.md").read_text()
    grid = _markdown_grid(text)
    assert grid["lpips-vgg"][BAPPS] == "—†"
    assert grid["backwards"][BAPPS] == "—" and grid["my_metric"][TID_SRCC] == "—"
    assert "- † lpips-vgg in bapps-run (bapps): trunk weights vgg16" in text
    assert "—† = the metric was skipped in that run" in text
    assert "— = the metric is not in that run" in text
    statuses = {
        (r["metric"], r["run_id"], r["statistic"]): (r["status"], r["value"])
        for r in _csv_rows((written / "table.csv").read_text())
    }
    assert statuses["lpips-vgg", "bapps-run", "2AFC avg (%)"] == ("skipped", "")
    assert statuses["backwards", "bapps-run", "2AFC avg (%)"] == ("not run", "")
    assert statuses["lpips-alex", "bapps-run", "2AFC avg (%)"][0] == "ok"


def test_csv_is_tidy_one_row_per_metric_and_column(written: Path) -> None:
    text = (written / "table.csv").read_text()
    assert text.splitlines()[0] == ",".join(CROSS_CSV_COLUMNS)
    rows = _csv_rows(text)
    keys = [(r["metric"], r["run_id"], r["task"], r["statistic"]) for r in rows]
    assert len(keys) == len(set(keys)) == 7 * 5  # 7 metrics x 5 columns
    for r in rows:
        if r["status"] == "ok":
            assert float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])
    (srcc,) = [r for r in rows if r["metric"] == "l2" and r["statistic"] == "SRCC"]
    assert (srcc["dataset"], srcc["split"], srcc["task"], srcc["n"]) == (
        "tid2013",
        "all",
        "mos",
        "89",
    )


def test_notes_give_the_ci_level_resamples_exclusions_and_runs(
    runs: dict[str, Path], written: Path
) -> None:
    text = (written / "table.md").read_text()
    assert "95% percentile bootstrap CI (200 resamples, seed 0)" in text
    assert "bapps-run (bapps): 1 sample(s) excluded: 0 dropped when opening the dataset, 1 " in text
    assert "tid-run (tid2013): 1 sample(s) excluded" in text
    for run_dir in runs.values():
        assert f"{run_dir} (iqa-bench 0.1.0, commit abc123def456)" in text


def test_synthetic_judgments_carry_their_warning_in_every_format(written: Path) -> None:
    warning = "synthetic v1, val: SYNTHETIC judgments, not human"
    assert f"> **WARNING: {warning}" in (written / "table.md").read_text()
    assert f"WARNING: {warning}" in (written / "table.tex").read_text()
    page = (written / "table.html").read_text()
    assert re.search(rf'<p class="warning" role="alert">WARNING: {warning}', page)
    assert "bapps v1, val (synthetic)" not in page  # only the synthetic columns are marked


def test_latex_table_compiles_with_pdflatex(written: Path, tmp_path: Path) -> None:
    shutil.copy(written / "table.tex", tmp_path / "table.tex")
    compile_latex(tmp_path / "table.tex")


def test_html_is_one_standalone_page_that_parses(written: Path) -> None:
    page = (written / "table.html").read_text()
    parser, rows = _html_grid(page)
    assert parser.open == [] and parser.tags[:2] == ["html", "head"]
    assert not {"script", "link", "img", "iframe"} & set(parser.tags)
    assert "http" not in page and "<style>" in page
    assert [text for text, _ in parser.rows[0][1:]] == [
        "bapps v1, val",
        "synthetic v1, val (synthetic)",
        "tid2013 v1, all",
    ]
    assert [text for text, _ in rows["lpips-vgg"]][:2] == ["—†", "—"]


# -- options and refusals ----------------------------------------------------------------------


def test_markdown_goes_to_stdout_and_format_picks_another(runs: dict[str, Path]) -> None:
    run = str(runs["jnd"])
    assert _printed(["table", run, *FAST]).startswith("**Agreement with human judgments")
    assert _printed(["table", run, "--format", "csv", *FAST]).startswith("dataset,")
    assert _printed(["table", run, "--format", "tex", *FAST]).startswith(r"\documentclass")
    assert _printed(["table", run, "--format", "html", *FAST]).startswith("<!DOCTYPE html>")


def test_metrics_option_keeps_the_named_metrics_in_grouped_order(
    runs: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    argv = ["table", str(runs["2afc"]), str(runs["mos"]), "--metrics", "backwards,l2", *FAST]
    grid = _markdown_grid(_printed(argv))
    assert list(grid) == ["l2", "backwards"]
    assert main(["table", str(runs["2afc"]), "--metrics", "l2,nope", *FAST]) == 2
    err = capsys.readouterr().err
    assert "--metrics: nope not in any of the runs; they have l2, ssim," in err


def test_two_runs_of_one_dataset_and_task_are_refused_naming_both(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    again = make_run(tmp_path, run_id="bapps-again", dataset="bapps", synthetic=False)
    assert main(["table", str(runs["2afc"]), str(again), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"{runs['2afc']} and {again} both score 2afc on bapps v1, val" in err
    assert "score every metric into one run" in err


def test_a_headline_lost_to_failures_is_marked_undefined(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, failed=[("2afc", i) for i in range(40)], jnd_subsets=())
    table = cross_table([run_dir], OPTIONS)
    (l2,) = [r for r in table.rows if r.metric == "l2"]
    assert l2.entries[0].status == "undefined" and not l2.bold[0]
    text = _printed(["table", str(run_dir), *FAST])
    assert _markdown_grid(text)["l2"][SYNTH_2AFC] == "n/a"
    assert "n/a = undefined: the metric lost every sample of a subset" in text


# -- runs the runner wrote ---------------------------------------------------------------------


@pytest.mark.slow  # two runner passes: about 13 s on the 2-core machine
def test_table_of_runs_the_runner_scored(bapps_layout, tmp_path: Path) -> None:
    bapps = bapps_layout({"cnn": 6, "traditional": 6}, {"cnn": 6}, seed=3)
    tid = make_tid2013(tmp_path / "tid2013", types=(1, 8), refs=2, levels=3)
    run_dirs = []
    for name, data in (("bapps", bapps), ("tid", tid)):
        out = tmp_path / "runs" / name
        argv = ["run", "--dataset", str(data), "--metrics", "l2,psnr,ssim", "--out", str(out)]
        assert main([*argv, "--no-report", "--quiet", "--workers", "1"]) == 0
        run_dirs.append(next(p.parent for p in out.rglob("manifest.json")))
    rows = _csv_rows(_printed(["table", *map(str, run_dirs), "--format", "csv", *FAST]))
    assert {(r["task"], r["statistic"]) for r in rows} == {
        ("2afc", "2AFC avg (%)"),
        ("jnd", "JND mAP (%)"),
        ("mos", "SRCC"),
        ("mos", "PLCC"),
    }
    bapps_summary = summarize(load_run(run_dirs[0]), OPTIONS)
    tid_summary = summarize(load_run(run_dirs[1]), OPTIONS)
    for r in rows:
        if r["task"] == "mos":
            e = getattr(tid_summary.mos.row(r["metric"]), r["statistic"].lower())
            expected = (e.value, e.low, e.high)
        else:
            cell = bapps_summary.tasks[r["task"]].row(r["metric"]).avg
            expected = (cell.score, cell.ci_low, cell.ci_high)
        shown = (float(r["value"]), float(r["ci_low"]), float(r["ci_high"]))
        assert shown == tuple(round(v, 4) for v in expected), r
    assert {r["n"] for r in rows if r["task"] == "2afc"} == {"12"}
