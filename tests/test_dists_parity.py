"""DISTS parity with the reference ``DISTS_pytorch`` package on a random VGG16 trunk shared by both,
and how the metric behaves in batches, under autograd, at its minimum size and in a run."""

from __future__ import annotations

import copy
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from DISTS_pytorch import DISTS_pt

import iqa_bench
from iqa_bench import trunks
from iqa_bench.errors import InputError, WeightsUnavailableError
from iqa_bench.metrics import dists as dists_module
from iqa_bench.metrics.trunk import normalise_input
from iqa_bench.reports import summarize, write_report
from iqa_bench.results import load_run
from iqa_bench.runner.task_run import SharedEmbeddings, feature_providers
from tests.conftest import weights_file
from tests.mos_fixture import FakeMOSMetric, make_mos_run
from tests.run_fixture import FakeMetric, make_run

# Small images: a VGG16 pass is the cost, and every size here reaches all five L2 poolings.
SHAPES = [(1, 32, 32), (3, 24, 24), (2, 16, 40), (4, 20, 18), (2, 1, 1), (1, 7, 5)]
# Largest difference from the reference measured over SHAPES on this 2-core CPU: 1.2e-7 (float32
# rounding of the channel sums), for scores of 0.02-0.09 on this random trunk; 1e-6 (tighter than
# the 1e-5 asked of parity) leaves room for other BLAS builds.
ATOL = 1e-6


@pytest.fixture(scope="module")
def pair():
    """Our ``dists`` on a seeded random trunk, and the reference given the same convolutions.

    The reference builds ``torchvision.models.vgg16(pretrained=True)``; its ``models`` is replaced
    by one whose VGG16 holds our trunk's weights, and its weights loader (which reads
    ``sys.prefix/weights.pt``) is pointed at the package's own file.
    """
    torch.manual_seed(0)
    ours = iqa_bench.create_metric("dists", pretrained=False)
    features = trunks._vgg_features(trunks._VGG16_STAGES)  # max-pooled, as torchvision's
    state = ours.trunk.trunk_state_dict()
    features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    package_dir = str(dists_module.dists_weights_path().parent)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            DISTS_pt,
            "models",
            SimpleNamespace(vgg16=lambda **_: SimpleNamespace(features=features)),
        )
        mp.setattr(sys, "prefix", package_dir)
        ref = DISTS_pt.DISTS(load_weights=True).eval()
    return ours, ref, features


def _images(n: int, h: int, w: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 3, h, w, generator=gen)
    return x, (x + 0.2 * torch.rand(n, 3, h, w, generator=gen)).clamp(0, 1)


@pytest.mark.parametrize(("n", "h", "w"), SHAPES)
def test_dists_matches_reference_on_random_trunk(pair, n, h, w):
    ours, ref, _ = pair
    gen = torch.Generator().manual_seed(h * w + n)
    x, near = _images(n, h, w, gen)
    far = torch.rand(n, 3, h, w, generator=gen)
    for y in (near, far, x):
        with torch.no_grad():
            expected = ref(x, y).reshape(-1)
            got = ours(x, y)
        assert got.shape == (n,)
        assert torch.allclose(got, expected, rtol=0, atol=ATOL), (got - expected).abs().max()


def test_published_weights_are_loaded_and_change_the_score(pair):
    """Guards the parity test against comparing two models with the same wrong weights."""
    ours, ref, _ = pair
    assert torch.equal(ours.alpha, ref.alpha.flatten()) and torch.equal(
        ours.beta, ref.beta.flatten()
    )
    assert ours.weight_hashes["alpha_beta"] == dists_module.DISTS_WEIGHTS_SHA256
    x, y = _images(2, 32, 32, torch.Generator().manual_seed(3))
    uniform = torch.ones_like(ours.alpha)
    with torch.no_grad():
        feats = ours.embed(x), ours.embed(y)
        published = ours.compare(*feats)
        flat = iqa_bench.functional.dists_distance(*feats, uniform, uniform)
    assert (published - flat).abs().min() > 1e-3, (published, flat)


def test_batch_scores_equal_single_image_scores(pair):
    ours, _, _ = pair
    x, y = _images(4, 20, 18, torch.Generator().manual_seed(4))
    with torch.no_grad():
        batch = ours(x, y)
        single = torch.cat([ours(x[i : i + 1], y[i : i + 1]) for i in range(4)])
    # Measured largest difference 6e-8 (batched convolutions round differently).
    assert torch.allclose(batch, single, rtol=0, atol=ATOL), (batch - single).abs().max()


def test_channels_last_trunk_gives_the_same_scores(pair):
    """The runner puts trunks in channels-last layout (``Metric.use_channels_last``)."""
    ours, _, _ = pair
    fast = copy.deepcopy(ours)
    fast.use_channels_last()
    x, y = _images(2, 32, 32, torch.Generator().manual_seed(9))
    with torch.no_grad():
        # Measured largest difference 6e-8 (convolutions in another layout round differently).
        assert torch.allclose(fast(x, y), ours(x, y), rtol=0, atol=ATOL)


def test_gradients_flow_and_match_the_reference(pair):
    ours, ref, _ = pair
    x, y = _images(2, 32, 32, torch.Generator().manual_seed(5))
    grads = []
    for score in (lambda a: ours(a, y), lambda a: ref(a, y, require_grad=True)):
        a = x.clone().requires_grad_(True)
        score(a).sum().backward()
        grads.append(a.grad)
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    # Measured largest difference 4e-9, for gradients of mean size 2e-4 (largest 1.4e-3).
    assert torch.allclose(grads[0], grads[1], rtol=0, atol=1e-7), (grads[0] - grads[1]).abs().max()


def test_min_size_is_one_pixel_as_in_the_reference(pair):
    """L2 pooling (3 taps, stride 2, padding 1) never empties a map: every side of 1+ works."""
    ours, ref, _ = pair
    assert ours.min_size == 1
    x, y = _images(1, 1, 1, torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(ours(x, y), ref(x, y).reshape(-1), rtol=0, atol=ATOL)


def test_l2_pooled_trunk_equals_vgg16_only_before_the_first_pooling(pair):
    """Why DISTS shares no trunk pass with the max-pooled vgg16 metrics beyond relu1_2."""
    ours, _, maxpooled = pair
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        inp = normalise_input(ours, x)
        relu1_2, relu2_2 = ours.trunk(inp)[:2]
        assert torch.equal(relu1_2, maxpooled[:4](inp))
        assert relu2_2.shape == maxpooled[:9](inp).shape
        assert not torch.allclose(relu2_2, maxpooled[:9](inp), atol=1e-3)


@pytest.mark.slow  # two VGG16 initialisations (138M parameters each): 8-20 s here
def test_l2_pooled_vgg16_has_vgg16s_modules_and_seeded_weights():
    """Why VGG16's weights file loads unchanged, and a seeded random DISTS trunk is VGG16's."""
    torch.manual_seed(0)
    plain = trunks.vgg16().features.state_dict()
    torch.manual_seed(0)
    pooled = trunks.vgg16_l2pool().features.state_dict()
    assert list(pooled) == list(plain)
    assert all(torch.equal(pooled[k], plain[k]) for k in plain)


def test_runner_shared_trunk_pass_gives_the_forward_scores(pair):
    """The runner's path: one trunk pass over all image fields, the raw image carried along."""
    ours, _, _ = pair
    gen = torch.Generator().manual_seed(7)
    tensors = {k: torch.rand(2, 3, 32, 32, generator=gen) for k in ("ref", "p0", "p1")}
    providers = feature_providers([ours])
    assert list(providers) == [ours.features_key] and ours.features_key[0] == "dists"
    shared = SharedEmbeddings(providers)
    with torch.no_grad():
        for a, b in (("ref", "p0"), ("ref", "p1")):
            got = ours.compare(shared.embed(ours, tensors, a), shared.embed(ours, tensors, b))
            expected = ours(tensors[a], tensors[b])
            assert torch.allclose(got, expected, rtol=0, atol=ATOL)


def test_without_vgg16_weights_the_card_is_skipped_with_its_reason(tmp_path, monkeypatch):
    from iqa_bench.runner import run as run_module

    monkeypatch.setenv("IQA_BENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("IQA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("IQA_BENCH_OFFLINE", "1")
    cards = run_module.metric_cards()
    assert cards["dists"].group == "lpips" and cards["dists"].version == 1
    # "all" builds every card; only dists and a cheap one are needed here.
    monkeypatch.setattr(run_module, "metric_cards", lambda: {k: cards[k] for k in ("dists", "l2")})
    metrics, skipped = run_module.build_metrics("all", torch.device("cpu"), log=lambda _: None)
    assert list(metrics) == ["l2"]
    assert "vgg16-397923af-features.pth unavailable" in skipped["dists"]
    assert "IQA_BENCH_WEIGHTS" in skipped["dists"]
    with pytest.raises(WeightsUnavailableError, match="vgg16-397923af-features.pth"):
        run_module.build_metrics(["dists"], torch.device("cpu"), log=lambda _: None)


@pytest.mark.weights
@pytest.mark.slow  # torchvision's VGG16 initialises 138M parameters: 12 s here
def test_real_vgg16_weights_match_the_reference():
    weights_file("vgg16-397923af-features.pth")  # skips, saying why, where the file is absent
    ours = iqa_bench.create_metric("dists")
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.vgg16()
    state = ours.trunk.trunk_state_dict()
    net.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DISTS_pt, "models", SimpleNamespace(vgg16=lambda **_: net))
        mp.setattr(sys, "prefix", str(dists_module.dists_weights_path().parent))
        ref = DISTS_pt.DISTS(load_weights=True).eval()
    x, y = _images(2, 64, 64, torch.Generator().manual_seed(8))
    with torch.no_grad():
        # Not measured here (no VGG16 weights on the development machine): the 1e-5.
        assert torch.allclose(ours(x, y), ref(x, y).reshape(-1), rtol=0, atol=1e-5)


def test_a_weights_file_that_is_not_the_published_one_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    shutil.copyfile(dists_module.dists_weights_path(), path)
    with path.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(InputError, match="not that of the published DISTS weights"):
        dists_module.load_dists_weights(path)


def test_without_the_package_its_weights_are_unavailable_with_the_fix(monkeypatch):
    monkeypatch.setattr(dists_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsUnavailableError, match="pip install DISTS_pytorch"):
        dists_module.dists_weights_path()


def test_the_dists_trunk_taps_the_channels_of_the_published_weights(pair):
    ours, _, _ = pair
    assert (3, *ours.trunk.channels()) == dists_module.DISTS_CHANNELS
    assert sum(dists_module.DISTS_CHANNELS) == ours.alpha.numel() == 1475


def test_a_backbone_with_other_channels_is_refused_by_name():
    with pytest.raises(InputError, match="backbone 'alex'.*use backbone vgg16-l2pool"):
        iqa_bench.create_metric("dists", backbone="alex", pretrained=False)


def test_reports_show_dists_in_the_lpips_group(tmp_path: Path):
    metrics = [
        FakeMetric("l2", "classical", 0.6, type="l2"),
        FakeMetric("lpips-alex", "lpips", 0.05, type="lpips"),
        FakeMetric("dists", "lpips", 0.08, type="dists"),
    ]
    run_dir = make_run(tmp_path / "runs", metrics=metrics, skipped={})
    summary = summarize(load_run(run_dir), n_boot=100, n_perm=200)
    for task in ("2afc", "jnd"):  # the rows every table and figure of the task is drawn from
        assert summary.tasks[task].row("dists").group == "lpips"
    assert "dists" in summary.significance.names
    out = write_report(run_dir, tmp_path / "reports", n_boot=100, n_perm=200)
    md, tex = (out / "report.md").read_text(), (out / "report.tex").read_text()
    row = r"^\| Learned \(LPIPS, DISTS\) \| dists \| \S"
    assert len(re.findall(row, md, re.M)) == 2  # 2AFC and JND tables
    assert len(re.findall(r"^dists & ", tex, re.M)) == 2
    assert "| dists | lpips | ok | 1 | lower=better |" in md  # the metric cards table
    assert "dists" in (out / "report.html").read_text()
    csv = (out / "results.csv").read_text()
    assert ",2afc,dists,lpips,avg," in csv and ",jnd,dists,lpips,avg," in csv


def test_mos_report_shows_dists_in_the_lpips_group(tmp_path: Path):
    metrics = [FakeMOSMetric("l2", "classical", 0.4), FakeMOSMetric("dists", "lpips", 0.05)]
    run_dir = make_mos_run(tmp_path / "runs", metrics=metrics)
    out = write_report(run_dir, tmp_path / "reports", n_boot=100, n_perm=200)
    md = (out / "report.md").read_text()
    assert re.search(r"^\| Learned \(LPIPS, DISTS\) \| dists \| ", md, re.M), md
    assert ",mos-srcc,dists,lpips,all," in (out / "results.csv").read_text()
