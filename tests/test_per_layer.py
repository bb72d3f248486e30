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
