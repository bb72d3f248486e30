"""Tests for iqa_bench.reports: summary numbers, tables, CSV, figures, HTML and compare."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iqa_bench.reports import (
    CSV_COLUMNS,
    compare_data,
    compare_runs,
    summarize,
    terminal_summary,
    write_report,
)
from iqa_bench.reports.html import write_html
from iqa_bench.reports.summary import HUMAN
from iqa_bench.reports.tables import (
    csv_text,
    latex_escape,
    latex_table,
    markdown_table,
    score_table,
)
from iqa_bench.results import load_run
from iqa_bench.stats import human_ceiling, jnd_map, twoafc_scores
from tests.conftest import compile_latex
from tests.mos_fixture import make_mos_run
from tests.run_fixture import FakeMetric, make_run

FAST = {"n_boot": 200, "n_perm": 500}
METRICS = ["l2", "ssim", "lpips-vgg-baseline", "lpips-alex", "my_metric"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def summary(run_dir: Path):
    return summarize(load_run(run_dir), **FAST)


@pytest.fixture(scope="module")
def report_dir(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(run_dir, tmp_path_factory.mktemp("reports"), **FAST)


def _parse_markdown_table(text: str) -> pd.DataFrame:
    lines = [ln for ln in text.splitlines() if ln.startswith("|") and not ln.startswith("| :--")]
    df = pd.read_csv(io.StringIO("\n".join(lines)), sep="|", dtype=str)
    df = df.loc[:, [c for c in df.columns if not c.startswith("Unnamed")]]
    df.columns = [c.strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


# -- summary numbers --------------------------------------------------------------------------


def test_twoafc_scores_are_percent_of_the_stats_result(run_dir: Path, summary) -> None:
    data = load_run(run_dir).twoafc("lpips-alex")
    expected = twoafc_scores(data.d0, data.d1, data.h, data.subset)
    row = summary.tasks["2afc"].row("lpips-alex")
    assert row.avg.score == pytest.approx(100 * expected.mean)
    assert row.subsets["cnn"].score == pytest.approx(100 * expected.scores["cnn"])
    assert row.subsets["traditional"].n == 39 and row.n_failed == 1


def test_jnd_scores_are_percent_map(run_dir: Path, summary) -> None:
    data = load_run(run_dir).jnd("l2")
    expected = jnd_map(data.d, data.same, data.subset)
    assert summary.tasks["jnd"].row("l2").avg.score == pytest.approx(100 * expected.mean)


def test_cis_bracket_their_scores(summary) -> None:
    for task in summary.tasks.values():
        for row in task.rows:
            for cell in [*row.subsets.values(), row.avg]:
                assert cell.ci_low <= cell.score <= cell.ci_high
                assert cell.ci_high > cell.ci_low


def test_less_noisy_metric_scores_higher_and_similarity_is_oriented(summary) -> None:
    two = summary.tasks["2afc"]
    assert two.row("lpips-alex").avg.score > two.row("l2").avg.score + 5
    # Unoriented, a similarity would land far below 50%.
    assert two.row("ssim").avg.score > 60


def test_human_ceiling_row_matches_stats(run_dir: Path, summary) -> None:
    _, subset, h = load_run(run_dir).judgments("2afc")
    human = summary.tasks["2afc"].human
    assert human.metric == HUMAN
    assert human.avg.score == pytest.approx(100 * human_ceiling(h, subset).mean)
    assert summary.tasks["jnd"].human is None


def test_preference_correlation_is_reported_per_metric(summary) -> None:
    assert list(summary.preference) == METRICS
    assert summary.preference["lpips-alex"].spearman > summary.preference["l2"].spearman > 0


def test_significance_matrix_covers_ok_metrics_on_common_samples(summary) -> None:
    sig = summary.significance
    assert sig.names == tuple(METRICS)
    assert summary.significance_n == 119  # one sample failed
    i, j = METRICS.index("lpips-alex"), METRICS.index("l2")
    assert sig.difference[i, j] > 0 and sig.p_holm[i, j] < 0.05
    assert np.all(
        sig.p_holm[~np.eye(len(METRICS), dtype=bool)] >= sig.p_value[~np.eye(5, dtype=bool)]
    )


def test_single_metric_run_has_no_significance_matrix(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, metrics=[FakeMetric("l2", "classical", 0.5)], skipped={}))
    assert summarize(run, **FAST).significance is None


# -- terminal summary and compare ---------------------------------------------------------------


def test_terminal_summary_lists_metrics_skipped_failed_and_synthetic_banner(summary) -> None:
    text = terminal_summary(summary)
    assert "SYNTHETIC judgments, not human" in text
    for name in METRICS:
        line = rf"^{re.escape(name)}\s+\S+\s+\d+\.\d ± \d+\.\d\s+\d+\.\d ± "
        assert re.search(line, text, re.M)
    assert "skipped lpips-vgg: trunk weights" in text
    assert "excluded samples: 1 (1 failed while scoring: 2afc 1)" in text


def test_terminal_summary_has_no_synthetic_banner_for_human_data(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, synthetic=False, dataset="bapps"))
    assert "SYNTHETIC" not in terminal_summary(summarize(run, **FAST))


def test_compare_runs_on_same_samples_is_paired_and_shows_differences(
    run_dir: Path, tmp_path: Path
) -> None:
    worse = [FakeMetric("lpips-alex", "lpips", 0.6), FakeMetric("l2", "classical", 0.6)]
    other = make_run(tmp_path, run_id="other", metrics=worse, metric_seed=7)
    cmp = compare_data(run_dir, other, **FAST)
    assert cmp.paired
    assert [r.metric for r in cmp.rows] == ["l2", "lpips-alex"]
    alex = cmp.rows[1]
    assert alex.difference > 5 and alex.p_value < 0.05 and alex.ci_low > 0
    assert cmp.only_a == ("ssim", "lpips-vgg-baseline", "my_metric")
    text = compare_runs(run_dir, other, **FAST)
    assert "paired by sample_id" in text
    assert re.search(r"^lpips-alex .* \+\d+\.\d .* 0\.0\d+", text, re.M)


def test_compare_runs_with_different_samples_falls_back_to_unpaired_ci(
    run_dir: Path, tmp_path: Path
) -> None:
    other = make_run(tmp_path, run_id="other", id_prefix="x", judgment_seed=5)
    cmp = compare_data(run_dir, other, **FAST)
    assert not cmp.paired
    assert all(r.p_value is None and r.ci_low < r.ci_high for r in cmp.rows)
    text = compare_runs(run_dir, other, **FAST)
    assert "UNPAIRED" in text and "samples do not match" in text


# -- tables and CSV -----------------------------------------------------------------------------


def test_markdown_table_round_trips_through_pandas(summary) -> None:
    df = _parse_markdown_table(markdown_table(score_table(summary, "2afc")))
    assert list(df.columns) == ["Group", "Metric", "traditional", "cnn", "superres", "Avg"]
    assert df["Metric"].tolist() == [*METRICS, HUMAN]
    avg = df["Avg"].str.replace("**", "", regex=False).str.split(" ± ", expand=True).astype(float)
    for name, (score, half) in zip(df["Metric"], avg.to_numpy(), strict=True):
        row = summary.tasks["2afc"].human if name == HUMAN else summary.tasks["2afc"].row(name)
        assert score == pytest.approx(round(row.avg.score, 1))
        assert half == pytest.approx(round(row.avg.half_width, 1))


def test_markdown_bolds_best_metric_per_column_never_human(summary) -> None:
    df = _parse_markdown_table(markdown_table(score_table(summary, "2afc")))
    for column in ["traditional", "cnn", "superres", "Avg"]:
        bold = df.loc[df[column].str.startswith("**"), "Metric"].tolist()
        values = {
            r.metric: r.avg if column == "Avg" else r.subsets[column]
            for r in summary.tasks["2afc"].rows
        }
        best = max(round(c.score, 1) for c in values.values())
        assert bold == [m for m, c in values.items() if round(c.score, 1) == best]
        assert HUMAN not in bold


def test_markdown_table_states_ci_and_synthetic_data(summary) -> None:
    text = markdown_table(score_table(summary, "jnd"))
    assert "95% bootstrap CI" in text and "SYNTHETIC judgments" in text
    assert HUMAN not in text


def test_latex_table_uses_booktabs_bold_pm_and_escapes(summary) -> None:
    tex = latex_table(score_table(summary, "2afc"))
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\textbf{", r"$\pm$"):
        assert command in tex
    assert r"my\_metric" in tex and "my_metric" not in tex
    assert r"\multicolumn{5}{l}{\emph{Deep baseline}}" in tex


def test_latex_escape_handles_special_characters() -> None:
    assert latex_escape("a_b & 5% #1 {x} $") == r"a\_b \& 5\% \#1 \{x\} \$"


def test_csv_has_exactly_the_documented_columns_and_rows(summary) -> None:
    df = pd.read_csv(io.StringIO(csv_text(summary)))
    assert tuple(df.columns) == CSV_COLUMNS
    assert CSV_COLUMNS == (
        "dataset",
        "task",
        "metric",
        "group",
        "subset",
        "score",
        "ci_low",
        "ci_high",
        "n",
    )
    # 2AFC: 5 metrics + human, 3 subsets + avg; JND: 5 metrics, 2 subsets + avg.
    assert len(df) == 6 * 4 + 5 * 3
    avg = df[(df.task == "2afc") & (df.metric == "lpips-alex") & (df.subset == "avg")].iloc[0]
    row = summary.tasks["2afc"].row("lpips-alex").avg
    assert avg.score == pytest.approx(row.score, abs=1e-4) and avg.n == 119
    assert set(df.group) == {"classical", "deep-baseline", "lpips", "custom", "human"}


# -- written report -----------------------------------------------------------------------------


def test_write_report_writes_every_artifact_under_dataset_and_run_id(report_dir: Path) -> None:
    assert report_dir.parts[-2:] == ("synthetic", "20261126-131500-synthetic")
    for name in ("report.md", "report.tex", "results.csv", "report.html", "summary.json"):
        assert (report_dir / name).stat().st_size > 0, name
    for stem in ("twoafc_subsets", "twoafc_vs_jnd", "significance"):
        assert (report_dir / "figures" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("stem", ["twoafc_subsets", "twoafc_vs_jnd", "significance"])
def test_figures_are_non_blank_png_images(report_dir: Path, stem: str) -> None:
    with Image.open(report_dir / "figures" / f"{stem}.png") as img:
        assert img.format == "PNG"
        assert img.width >= 600 and img.height >= 400
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 5  # not one flat colour


def test_summary_json_is_strict_json_with_the_numbers(report_dir: Path, summary) -> None:
    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    data = json.loads((report_dir / "summary.json").read_text(), parse_constant=reject)
    rows = {r["metric"]: r for r in data["tasks"]["2afc"]["rows"]}
    assert rows["l2"]["scores"]["avg"]["score"] == pytest.approx(
        summary.tasks["2afc"].row("l2").avg.score
    )
    assert data["significance"]["names"] == METRICS
    assert data["skipped"][0]["metric"] == "lpips-vgg"


def test_markdown_report_states_dataset_cards_provenance_skipped_and_figures(
    report_dir: Path,
) -> None:
    text = (report_dir / "report.md").read_text()
    assert "WARNING: SYNTHETIC judgments, not human" in text
    assert "dataset synthetic (card v1, split val; SYNTHETIC judgments)" in text
    for needle in (
        "abc123def456",
        "iqa-bench 0.1.0",
        "cpu / fp32 / 64",
        "sha256:abab",
        "| lpips-alex | lpips | ok | 1 |",
        "**lpips-vgg**: trunk weights",
        "](figures/significance.png)",
        "## Significance of 2AFC differences",
        "val/traditional/000003",
    ):
        assert needle in text, needle


def test_html_is_self_contained_without_scripts_or_remote_resources(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    images = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="[^"]+"', page)
    assert len(images) == 3


def test_html_has_warning_tables_skipped_failed_and_provenance(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    assert 'class="warning"' in page and "SYNTHETIC judgments, not human" in page
    assert "<b>lpips-vgg</b>: trunk weights vgg16-397923af-features.pth" in page
    assert "1 sample(s) excluded: 0 dropped when opening the dataset, 1 failed while" in page
    for needle in (
        "abc123def456",
        "Card version",
        "sha256:abab",
        "Human (ceiling)",
        'class="num best"',
        "Significance of 2AFC differences",
    ):
        assert needle in page, needle


def test_html_for_human_judgments_has_no_synthetic_warning(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, synthetic=False, dataset="bapps"))
    page = write_html(summarize(run, **FAST), {}, tmp_path / "r.html").read_text()
    assert 'class="warning"' not in page and "human judgments" in page


def test_write_html_with_missing_figure_names_it(summary, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="figure 'x' at .* does not exist"):
        write_html(summary, {"x": tmp_path / "x.png"}, tmp_path / "r.html")


def test_report_of_a_2afc_only_run_leaves_out_jnd(tmp_path: Path) -> None:
    folder = write_report(make_run(tmp_path, jnd_subsets=()), tmp_path / "reports", **FAST)
    assert sorted(p.stem for p in (folder / "figures").glob("*.png")) == [
        "significance",
        "twoafc_subsets",
    ]
    assert "## JND" not in (folder / "report.md").read_text()


def test_report_tex_compiles_with_pdflatex(report_dir: Path, tmp_path: Path) -> None:
    shutil.copy(report_dir / "report.tex", tmp_path / "report.tex")
    compile_latex(tmp_path / "report.tex")


def test_metric_that_lost_a_whole_subset_gets_no_avg(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, failed=[("2afc", i) for i in range(40)])  # all "traditional"
    summary = summarize(load_run(run_dir), **FAST)
    row = summary.tasks["2afc"].row("l2")
    assert "traditional" not in row.subsets and np.isnan(row.avg.score)
    df = _parse_markdown_table(markdown_table(score_table(summary, "2afc")))
    assert df.loc[df["Metric"] == "l2", ["traditional", "Avg"]].values.tolist() == [["-", "-"]]
    folder = write_report(run_dir, tmp_path / "reports", **FAST)
    assert (
        json.loads((folder / "summary.json").read_text())["tasks"]["2afc"]["rows"][0]["scores"][
            "avg"
        ]["score"]
        is None
    )


@pytest.mark.parametrize(
    ("load_size", "resize", "text"),
    [
        (None, None, "native resolution (no resizing)"),
        (64, None, "loaded at 64 px (shorter side; PIL bilinear, as the reference loader)"),
        (None, 224, "resized to 224x224 (bilinear, antialiased) before scoring"),
        (64, 224, "loaded at 64 px (shorter side; PIL bilinear, as the reference loader), then "
         "resized to 224x224 (bilinear, antialiased) before scoring"),
    ],
)  # fmt: skip
def test_image_size_line_states_the_load_size_and_the_resize(load_size, resize, text) -> None:
    from iqa_bench.reports.documents import resize_text

    manifest = {"dataset": {"name": "bapps", "load_size": load_size}, "resize": resize}
    assert resize_text(manifest) == text


_UNIQUE_RUNS = {
    "2afc-and-jnd": lambda root: make_run(root),
    "2afc-subset-named-avg": lambda root: make_run(
        root, twoafc_subsets=("avg", "cnn"), jnd_subsets=("avg", "cnn")
    ),
    "mos-with-types": lambda root: make_mos_run(root),
    # A MOS CSV without a type column: the adapter labels every image "all".
    "mos-without-types": lambda root: make_mos_run(root, types=("all",)),
    "mos-type-all-beside-others": lambda root: make_mos_run(root, types=("all", "jpeg")),
}


@pytest.mark.parametrize("kind", list(_UNIQUE_RUNS))
def test_results_csv_rows_are_unique_by_their_key_columns(tmp_path: Path, kind: str) -> None:
    run_dir = _UNIQUE_RUNS[kind](tmp_path)
    df = pd.read_csv(io.StringIO(csv_text(summarize(load_run(run_dir), n_boot=100, n_perm=100))))
    assert len(df) > 0
    duplicated = df[df.duplicated(["dataset", "task", "metric", "subset"], keep=False)]
    assert duplicated.empty, duplicated.to_string()
    if kind == "mos-without-types":
        # Only the overall rows remain: one per metric and statistic.
        assert set(df["subset"]) == {"all"}


def test_every_excluded_sample_is_counted_by_stage_task_and_subset_in_every_report(
    tmp_path: Path,
) -> None:
    bad = [
        {
            "task": "2afc",
            "subset": "cnn",
            "sample_id": "val/cnn/broken",
            "path": "/data/broken.png",
            "reason": "truncated PNG",
        },
        # An older runner's entry: no task, no subset (the run has two tasks).
        {"sample_id": "val/old", "path": "/data/old.png", "reason": "unreadable judgment"},
    ]
    # Index 3 of 2AFC and 0 of JND are in the first subset, "traditional".
    run_dir = make_run(tmp_path / "runs", failed=(("2afc", 3), ("jnd", 0)), bad_samples=bad)
    summary = summarize(load_run(run_dir), n_boot=100, n_perm=100)
    assert terminal_summary(summary).splitlines()[-1] == (
        "excluded samples: 4 (2 dropped when opening the dataset: 2afc 1, task unknown 1; "
        "2 failed while scoring: 2afc 1, jnd 1)"
    )
    folder = write_report(run_dir, tmp_path / "reports", summary=summary)
    excluded = json.loads((folder / "summary.json").read_text())["excluded_samples"]
    assert excluded["total"] == 4
    assert excluded["by_stage"] == {"opening": 2, "scoring": 2}
    assert excluded["counts"] == [
        {"stage": "opening", "task": "2afc", "subset": "cnn", "n": 1},
        {"stage": "opening", "task": "task unknown", "subset": "", "n": 1},
        {"stage": "scoring", "task": "2afc", "subset": "traditional", "n": 1},
        {"stage": "scoring", "task": "jnd", "subset": "traditional", "n": 1},
    ]
    sentence = "4 sample(s) excluded: 2 dropped when opening the dataset, 2 failed while scoring."
    markdown = (folder / "report.md").read_text()
    assert sentence in markdown
    assert "| dropped when opening the dataset | 2afc | cnn | 1 |" in markdown
    assert "| dropped when opening the dataset | task unknown | (unknown) | 1 |" in markdown
    assert "| failed while scoring | jnd | traditional | 1 |" in markdown
    assert "- dropped when opening the dataset, 2afc `val/cnn/broken`: truncated PNG" in markdown
    # Where the score is read: each task's table says what it lost.
    twoafc = markdown_table(score_table(summary, "2afc"))
    assert (
        "3 sample(s) excluded: 2 dropped when opening the dataset, 1 failed while scoring (1 of "
        "them of unknown task, counted under every task)." in twoafc
    )
    assert sentence in (folder / "report.html").read_text()
    assert latex_escape(sentence) in (folder / "report.tex").read_text()
