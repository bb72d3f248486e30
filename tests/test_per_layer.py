"""Per-layer LPIPS distances: ``metric.layer_distances``, ``score --per-layer``, and the stored
per-layer scores behind ``report --per-layer``."""

from __future__ import annotations

import pytest
import torch

import iqa_bench
from iqa_bench.cli import main
from iqa_bench.config import (
    load_metric_card,
    metric_aliases,
    register_metric_card,
    unregister_metric_card,
)
from iqa_bench.errors import InputError

#: Every LPIPS-family card on trunks cheap enough to build at random here (VGG16's cards run the
#: same code on another trunk).
CARDS = [
    "lpips-alex",
    "lpips-alex-v0.0",
    "lpips-alex-baseline",
    "lpips-alex+",
    "lpips-squeeze",
    "lpips-squeeze-v0.0",
    "lpips-squeeze-baseline",
]


@pytest.mark.parametrize("name", CARDS)
def test_layer_distances_sum_to_the_metric(name):
    torch.manual_seed(0)
    metric = iqa_bench.create_metric(name, pretrained=False)
    gen = torch.Generator().manual_seed(1)
    for n, h, w in [(3, 64, 64), (2, 64, 96)]:
        x = torch.rand(n, 3, h, w, generator=gen)
        y = (x + 0.3 * torch.rand(n, 3, h, w, generator=gen)).clamp(0, 1)
        with torch.no_grad():
            per_layer, total = metric.layer_distances(x, y), metric(x, y)
        assert per_layer.shape == (n, len(metric.taps))
        assert (per_layer > 0).all()  # every layer contributes: no column left at zero
        # Measured: at most 3.0e-8 over these cards, shapes and all three VGG16 cards.
        assert torch.allclose(per_layer.sum(dim=1), total, rtol=0, atol=1e-6)


def test_layer_distances_check_their_inputs():
    metric = iqa_bench.create_metric("lpips-alex", pretrained=False)
    with pytest.raises(InputError, match="values must lie in"):
        metric.layer_distances(torch.full((1, 3, 64, 64), 2.0), torch.rand(1, 3, 64, 64))


@pytest.mark.weights
def test_score_per_layer_prints_each_tap_and_they_sum_to_the_score(tmp_path, capsys, alex_weights):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    paths = []
    for k in range(2):
        array = (torch.rand(64, 64, 3, generator=gen) * 255).to(torch.uint8).numpy()
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(array).save(paths[-1])
    assert main(["score", "--metric", "lpips+", "--per-layer", *map(str, paths)]) == 0
    lines = capsys.readouterr().out.splitlines()
    taps = iqa_bench.create_metric("lpips-alex+").taps
    assert [line.split(":")[0].strip() for line in lines[1:]] == list(taps)
    layers = [float(line.split(":")[1]) for line in lines[1:]]
    assert sum(layers) == pytest.approx(float(lines[0]), abs=1e-5)  # printed to 6 decimals


def test_score_per_layer_of_a_metric_without_layers_names_the_fix(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "a.png"
    Image.fromarray((torch.rand(16, 16, 3) * 255).to(torch.uint8).numpy()).save(path)
    assert main(["score", "--metric", "ssim", "--per-layer", str(path), str(path)]) == 2
    assert "--per-layer: 'ssim' has no per-layer distances" in capsys.readouterr().err


def test_pyiqa_names_resolve_to_the_cards_and_list_shows_them(capsys):
    assert load_metric_card("lpips+").name == "lpips-alex+"
    assert load_metric_card("lpips-vgg+").name == "lpips-vgg+"
    assert metric_aliases()["lpips+"] == "lpips-alex+"
    assert iqa_bench.create_metric("lpips+", pretrained=False).name == "lpips-alex+"
    assert main(["list"]) == 0
    assert "lpips-alex+ (lpips+)" in capsys.readouterr().out


def test_aliases_do_not_enter_the_numbers_identity():
    """Adding an alias to a card must not invalidate its stored results."""
    card = load_metric_card("lpips-alex+")
    assert "aliases" not in card.identity() and card.identity()["params"] == card.params


def test_an_alias_that_is_another_cards_name_is_an_error_naming_both():
    register_metric_card(
        {
            "name": "my-lpips",
            "version": 1,
            "type": "lpips",
            "group": "custom",
            "description": "d",
            "aliases": ["lpips-alex"],
        }
    )
    try:
        with pytest.raises(InputError, match="'my-lpips': alias 'lpips-alex' is already"):
            metric_aliases()
    finally:
        unregister_metric_card("my-lpips")


def _run(root, out, names, **options):
    from iqa_bench.runner import RunOptions, run_benchmark

    opts = RunOptions(progress=False, batch_size=4, chunk_size=4, **options)
    return run_benchmark(str(root), names, out, opts, log=lambda m: None)


@pytest.mark.weights
def test_run_per_layer_stores_layers_that_sum_to_unchanged_scores(
    bapps_layout, tmp_path, alex_weights
):
    """Scores are those of a run without --per-layer, bit for bit; only LPIPS-family metrics
    get layers; a run without them is scored again, not reused, when they are asked for."""
    import numpy as np

    from iqa_bench.runner import store

    root = bapps_layout({"cnn": 6, "traditional": 5}, {"cnn": 4}, seed=4)
    names = ["lpips-alex", "lpips+", "ssim"]
    plain = _run(root, tmp_path / "run", names)
    before = {
        n: dict(np.load(store.final_path(plain.run_dir, n, "2afc")))
        for n in ("lpips-alex", "lpips-alex+")
    }
    layered = _run(root, tmp_path / "run", names, per_layer=True)
    for name in ("lpips-alex", "lpips-alex+"):
        for task, fields in (("2afc", ("d0", "d1")), ("jnd", ("d",))):
            with np.load(store.final_path(layered.run_dir, name, task)) as data:
                assert list(data["taps"]) == list(iqa_bench.create_metric(name).taps)
                for f in fields:
                    assert data[f"{f}_layers"].shape == (len(data[f]), 5)
                    # Measured: at most 4.8e-8 (float32 summation order).
                    assert np.allclose(data[f"{f}_layers"].sum(axis=1), data[f], rtol=0, atol=1e-6)
                    if task == "2afc":
                        assert np.array_equal(data[f], before[name][f])
                        assert data["fingerprint"] != before[name]["fingerprint"]
    with np.load(store.final_path(layered.run_dir, "ssim", "2afc")) as data:
        assert "d0_layers" not in data.files and "taps" not in data.files


@pytest.mark.slow  # writes a whole report (figures too): 12-20 s here
@pytest.mark.weights
def test_report_per_layer_table_is_the_2afc_score_of_each_tap(
    bapps_layout, tmp_path, alex_weights, capsys
):
    import numpy as np

    from iqa_bench.results import load_run
    from iqa_bench.stats import twoafc_scores

    root = bapps_layout({"cnn": 6, "traditional": 5}, None, seed=4)
    run = _run(root, tmp_path / "run", ["lpips-alex", "l2"], per_layer=True).run_dir
    argv = ["report", str(run), "--per-layer", "--reports-dir", str(tmp_path / "rep")]
    assert main([*argv, "--n-boot", "200", "--n-perm", "500"]) == 0
    assert "per-layer 2AFC (%)" in capsys.readouterr().out
    folder = next((tmp_path / "rep").glob("*/*"))
    assert "## Per-layer 2AFC agreement" in (folder / "report.md").read_text()
    assert r"\label{tab:iqa-per-layer}" in (folder / "report.tex").read_text()
    assert "<h2>Per-layer 2AFC agreement</h2>" in (folder / "report.html").read_text()
    rows = (folder / "per_layer_2afc.csv").read_text().splitlines()
    data = load_run(run).twoafc("lpips-alex")
    layers = load_run(run).layer_distances("lpips-alex").data.distances
    expected = twoafc_scores(layers["d0"][:, 2], layers["d1"][:, 2], data.h, data.subset)
    row = next(r for r in rows if r.startswith("lpips-alex,features.7,avg,"))
    assert float(row.split(",")[3]) == pytest.approx(expected.mean, abs=1e-12)
    assert not any(r.startswith("l2,") for r in rows)
    assert np.allclose(sum(layers["d0"].T), data.d0, rtol=0, atol=1e-6)


def test_report_per_layer_without_stored_layers_names_the_fix(bapps_layout, tmp_path, capsys):
    root = bapps_layout({"cnn": 6}, None, seed=4)
    run = _run(root, tmp_path / "run", ["l2"]).run_dir
    argv = ["report", str(run), "--per-layer", "--reports-dir", str(tmp_path / "rep")]
    assert main(argv) == 2
    assert "run --per-layer" in capsys.readouterr().err


# -- The per-layer table's CIs and renderings, on a fabricated run (no weights needed) --------

LAYER_OPTIONS = {"n_boot": 200, "n_perm": 500, "seed": 3, "confidence": 0.9}


def _layered_run(tmp_path):
    """A fabricated run whose ``lpips-alex`` stores three taps: ``a`` = 0.3 x its own distance
    (so it ranks, and scores, as the metric does), ``b`` = ``my_metric``'s stored distance (a tap
    that is another metric of the run) and ``c`` = 0.7 x its own distance."""
    import numpy as np

    from tests.run_fixture import make_run

    run_dir = make_run(tmp_path)
    path = run_dir / "scores" / "lpips-alex" / "2afc.npz"
    with np.load(path) as alex, np.load(run_dir / "scores" / "my_metric" / "2afc.npz") as mine:
        stored = dict(alex)
        assert np.array_equal(alex["sample_id"], mine["sample_id"])
        for field in ("d0", "d1"):
            d = alex[field]
            stored[f"{field}_layers"] = np.column_stack([0.3 * d, mine[field], 0.7 * d])
    np.savez(path, **stored, taps=np.array(["a", "b", "c"]))
    return run_dir


def test_a_taps_cells_are_the_main_tables_cells_of_a_metric_with_its_distances(tmp_path):
    """Same scores, CI bounds and n as the main table gives a metric whose distances are that
    tap's, and as ``stats.bootstrap_twoafc`` gives on the stored layer column itself."""
    import numpy as np

    from iqa_bench.reports import StatsOptions, summarize
    from iqa_bench.reports.layers import layer_table
    from iqa_bench.results import load_run
    from iqa_bench.stats import bootstrap_twoafc

    run = load_run(_layered_run(tmp_path))
    options = StatsOptions(**LAYER_OPTIONS)
    table = layer_table(run, options)
    main = summarize(run, options).tasks["2afc"]
    rows = {r.tap: r.row for r in table.rows}
    assert [r.metric for r in table.rows] == ["lpips-alex"] * 3
    assert rows["b"].subsets == main.row("my_metric").subsets  # Cells compare exactly
    assert rows["b"].avg == main.row("my_metric").avg
    assert rows["a"].subsets == main.row("lpips-alex").subsets
    assert rows["a"].avg == main.row("lpips-alex").avg
    layers = run.layer_distances("lpips-alex").data
    d0, d1 = layers.distances["d0"][:, 1], layers.distances["d1"][:, 1]
    direct = bootstrap_twoafc(
        d0, d1, layers.judgment, layers.subset, n_boot=200, confidence=0.9, seed=3
    )
    for subset, (low, high) in direct.intervals.items():
        cell = rows["b"].subsets[subset]
        assert (cell.ci_low, cell.ci_high) == (100 * low, 100 * high)
    assert (rows["b"].avg.ci_low, rows["b"].avg.ci_high) == tuple(
        100 * v for v in direct.mean_interval
    )
    assert rows["b"].avg.n == len(d0) == int(np.isfinite(d0).sum())
    assert set(table.missing) == {"l2", "my_metric", "ssim", "lpips-vgg-baseline"}


def test_per_layer_csv_has_ci_columns_and_bold_marks_each_metrics_best_tap(tmp_path):
    from iqa_bench.reports import StatsOptions
    from iqa_bench.reports.layers import LAYER_CSV_COLUMNS, layer_csv, layer_markdown, layer_table
    from iqa_bench.results import load_run

    table = layer_table(load_run(_layered_run(tmp_path)), StatsOptions(**LAYER_OPTIONS))
    lines = layer_csv(table).splitlines()
    assert lines[0] == ",".join(LAYER_CSV_COLUMNS) == "metric,tap,subset,score,ci_low,ci_high,n"
    b_avg = next(line.split(",") for line in lines if line.startswith("lpips-alex,b,avg,"))
    avg = next(r.row.avg for r in table.rows if r.tap == "b")
    assert [float(v) for v in b_avg[3:6]] == pytest.approx(
        [avg.score / 100, avg.ci_low / 100, avg.ci_high / 100], abs=1e-15
    )
    # Taps a and c rank every pair alike, so they tie and are both bold wherever they win.
    best = dict(zip((r.tap for r in table.rows), table.best(), strict=True))
    assert best["a"] == best["c"]
    for column in range(len(table.subsets) + 1):
        shown = [round(r.cells(table.subsets)[column].score, 1) for r in table.rows]
        assert [best[r.tap][column] for r in table.rows] == [s == max(shown) for s in shown]
    text = layer_markdown(table)
    assert "±" in text and "**" in text


def test_per_layer_table_is_in_the_tex_and_html_reports_and_the_tex_compiles(tmp_path):

    from iqa_bench.reports import StatsOptions, summarize
    from iqa_bench.reports.documents import latex_report, markdown_report
    from iqa_bench.reports.html import render_html
    from iqa_bench.reports.layers import layer_table
    from iqa_bench.results import load_run
    from tests.conftest import compile_latex

    run = load_run(_layered_run(tmp_path))
    summary = summarize(run, StatsOptions(**LAYER_OPTIONS))
    table = layer_table(run, summary.options)
    page = render_html(summary, {}, table)
    assert "<h2>Per-layer 2AFC agreement</h2>" in page and 'class="num best"' in page
    assert "Bold = the best tap of each metric" in page
    assert "<code>iqa-bench run --per-layer</code> stores them" in page
    assert "Per-layer" not in render_html(summary, {})
    assert "Per-layer" not in latex_report(summary) and "Per-layer" not in markdown_report(summary)
    assert "## Per-layer 2AFC agreement" in markdown_report(summary, None, table)
    tex = latex_report(summary, table)
    assert r"\label{tab:iqa-per-layer}" in tex and r"\texttt{iqa-bench run -{}-per-layer}" in tex
    (tmp_path / "report.tex").write_text(tex, encoding="utf-8")
    compile_latex(tmp_path / "report.tex")


def test_a_layer_table_with_other_resampling_settings_than_the_report_is_refused(tmp_path):
    from iqa_bench.reports import StatsOptions, summarize, write_report
    from iqa_bench.reports.layers import layer_table
    from iqa_bench.results import load_run

    run = load_run(_layered_run(tmp_path))
    summary = summarize(run, StatsOptions(**LAYER_OPTIONS))
    table = layer_table(run, StatsOptions(n_boot=100))
    with pytest.raises(InputError, match="layer_table\\(run, summary.options\\)"):
        write_report(run.path, tmp_path / "rep", summary=summary, layers=table)
    assert not (tmp_path / "rep").exists()


def test_per_layer_report_of_a_run_without_2afc_says_the_table_is_2afc_only(tmp_path):
    from iqa_bench.reports.layers import layer_table
    from iqa_bench.results import load_run
    from tests.mos_fixture import make_mos_run

    with pytest.raises(InputError, match="has no 2afc task \\(tasks: mos\\).*layer_distances"):
        layer_table(load_run(make_mos_run(tmp_path)))


def test_run_per_layer_on_a_mos_dataset_stores_layers_and_says_the_table_is_2afc_only(
    tmp_path, capsys, alex_weights
):
    from iqa_bench.cli import main
    from iqa_bench.results import load_run
    from tests.mos_fixture import make_tid2013

    make_tid2013(tmp_path / "data" / "tid2013", types=(1, 8), refs=2, levels=2)
    argv = ["run", "--dataset", "tid2013", "--data-root", str(tmp_path / "data"), "--metrics",
            "lpips-alex", "--out", str(tmp_path / "run"), "--reports-dir", str(tmp_path / "rep"),
            "--per-layer", "--resize", "64", "--n-boot", "100", "--n-perm", "100", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "the per-layer table scores 2AFC agreement and this run has none" in (
        capsys.readouterr().out
    )
    layers = load_run(tmp_path / "run").layer_distances("lpips-alex", "mos")
    assert layers is not None and len(layers.taps) == 5
