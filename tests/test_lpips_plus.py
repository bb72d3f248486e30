"""Semantic-weighted LPIPS (LPIPS+, pyiqa's ``semantic_weight_layer``): parity with pyiqa's LPIPS
class on real photographs, which argument is the reference, and the named cards."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from skimage import data

import iqa_bench
from iqa_bench.errors import InputError
from iqa_bench.functional import lpips_layer_distances, normalize_features
from iqa_bench.images import read_image_uint8
from iqa_bench.runner import RunOptions, run_benchmark, store
from iqa_bench.weights import lpips_lin_path

#: pyiqa's ``semantic_weight_layer=2`` (default_model_configs: ``lpips+``, ``lpips-vgg+``) is
#: the third tap of each trunk.
CARDS = {"lpips-alex+": ("alex", "features.7"), "lpips-vgg+": ("vgg", "features.15")}


def _photo_pairs(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(distorted, reference) batches of real photographs: noise, blur, a shift and a colour cast."""
    refs = []
    for image in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket()):
        t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
        refs.append(F.interpolate(t, size=size, mode="bilinear", antialias=True).clamp(0, 1))
    ref = torch.cat(refs)
    gen = torch.Generator().manual_seed(0)
    blur = F.avg_pool2d(F.pad(ref, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    dist = torch.cat(
        [
            (ref[:1] + 0.08 * torch.randn(ref[:1].shape, generator=gen)).clamp(0, 1),
            blur[1:2],
            torch.roll(ref[2:3], shifts=(3, -2), dims=(2, 3)),
            (ref[3:] * torch.tensor([1.1, 0.9, 0.8]).view(1, 3, 1, 1)).clamp(0, 1),
        ]
    )
    return dist, ref


def _pyiqa_model(monkeypatch, ours, net: str) -> torch.nn.Module:
    """pyiqa's LPIPS+ built without downloads: its trunk is ``ours``'s, its linear layers the
    official ones from the ``lpips`` package (as pyiqa's own checkpoint holds)."""
    from pyiqa.archs import lpips_arch  # the `dev` extra installs it; importing takes seconds

    name = {"alex": "alexnet", "vgg": "vgg16"}[net]
    build = getattr(torchvision.models, name)
    # pyiqa's trunk classes call torchvision's constructors with ImageNet weights (a download).
    monkeypatch.setattr(torchvision.models, name, lambda *a, **k: build(weights=None))
    model = lpips_arch.LPIPS(pretrained=False, net=net, version="0.1", semantic_weight_layer=2)
    src = ours.trunk.trunk_state_dict()
    model.net.load_state_dict(
        {k: src[re.sub(r"^slice\d+\.", "features.", k)] for k in model.net.state_dict()}
    )
    lin = torch.load(lpips_lin_path(net, "0.1"), map_location="cpu", weights_only=True)
    model.load_state_dict(lin, strict=False)  # lin0..lin4; ``lins`` holds the same modules
    for k, layer in enumerate(model.lins):
        assert torch.equal(layer.model[1].weight.flatten(), getattr(ours, f"lin{k}"))
    return model.eval()


def _check_parity(ours, model) -> None:
    for size in ((64, 64), (96, 128)):
        dist, ref = _photo_pairs(size)
        with torch.no_grad():
            expected, layers = model(dist, ref, retPerLayer=True, normalize=True)
            got = ours(dist, ref)
            got_layers = ours.layer_distances(dist, ref)
        expected_layers = torch.cat([r.flatten(1) for r in layers], dim=1)
        # Measured on this machine: at most 3.7e-8 (float32 summation order; both cards, both
        # sizes), while swapping the reference changes lpips-alex+ by up to 3.5e-3.
        assert torch.allclose(got, expected.flatten(), rtol=0, atol=1e-5)
        assert torch.allclose(got_layers, expected_layers, rtol=0, atol=1e-5)


@pytest.mark.weights
def test_lpips_alex_plus_matches_pyiqa_on_real_photographs(monkeypatch, alex_weights):
    ours = iqa_bench.create_metric("lpips-alex+")
    _check_parity(ours, _pyiqa_model(monkeypatch, ours, "alex"))


@pytest.mark.slow  # 8-12 s: pyiqa builds a whole VGG16 (classifier too) before taking our trunk
def test_lpips_vgg_plus_matches_pyiqa_on_a_shared_random_trunk(monkeypatch):
    torch.manual_seed(0)
    ours = iqa_bench.create_metric("lpips-vgg+", pretrained=False)
    _check_parity(ours, _pyiqa_model(monkeypatch, ours, "vgg"))


def test_lpips_vgg_plus_card_loads_the_real_trunk(monkeypatch):
    """The named card with ImageNet weights; skipped while VGG16's weights are absent."""
    from iqa_bench.errors import WeightsUnavailableError

    try:
        ours = iqa_bench.create_metric("lpips-vgg+")
    except WeightsUnavailableError as exc:
        pytest.skip(f"VGG16 trunk weights absent, so lpips-vgg+ cannot be built: {exc}")
    _check_parity(ours, _pyiqa_model(monkeypatch, ours, "vgg"))


@pytest.mark.weights
def test_lpips_alex_plus_differs_from_lpips_alex_where_the_weighting_matters(alex_weights):
    """Guards the parity test against comparing plain LPIPS with itself: on these photographs
    the two differ by up to 1.6e-2 (measured), three orders above the parity tolerance."""
    plus, plain = iqa_bench.create_metric("lpips-alex+"), iqa_bench.create_metric("lpips-alex")
    dist, ref = _photo_pairs((96, 128))
    with torch.no_grad():
        gap = (plus(dist, ref) - plain(dist, ref)).abs().max()
    assert gap > 1e-3


@pytest.mark.weights
def test_the_reference_is_y_and_swapping_changes_the_score(alex_weights):
    metric = iqa_bench.create_metric("lpips-alex+")
    dist, ref = _photo_pairs((96, 128))
    with torch.no_grad():
        gap = (metric(dist, ref) - metric(ref, dist)).abs().max()
    assert not metric.symmetric and iqa_bench.create_metric("lpips-alex").symmetric
    assert gap > 1e-3  # measured 3.5e-3; the parity tests fail with the arguments swapped


def _tensor(path) -> torch.Tensor:
    return torch.from_numpy(read_image_uint8(path).copy()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.weights
def test_runner_passes_the_2afc_reference_as_y(bapps_layout, tmp_path, alex_weights):
    """Scored beside lpips-alex (same trunk features, another embedding), each stored 2AFC score
    is ``metric(p_i, ref)``, not ``metric(ref, p_i)``."""
    root = bapps_layout({"cnn": 6}, None, seed=4)
    names = ["lpips-alex", "lpips-alex+"]
    opts = RunOptions(progress=False, batch_size=4, chunk_size=8)
    result = run_benchmark(str(root), names, tmp_path / "run", opts, log=lambda m: None)
    from iqa_bench.datasets import open_dataset

    metric = iqa_bench.create_metric("lpips-alex+")
    samples = open_dataset(str(root)).samples("2afc")
    with np.load(store.final_path(result.run_dir, "lpips-alex+", "2afc")) as scores:
        d0 = scores["d0"]
    with torch.no_grad():
        right = [float(metric(_tensor(s.p0), _tensor(s.ref))) for s in samples]
        swapped = [float(metric(_tensor(s.ref), _tensor(s.p0))) for s in samples]
    # Runner vs direct calls: within 1e-5 as in test_runner (float32 convolutions by batch size).
    assert np.allclose(d0, right, rtol=0, atol=1e-5)
    assert not np.allclose(d0, swapped, rtol=0, atol=1e-5)


def test_a_semantic_tap_outside_the_taps_is_an_error_naming_them():
    with pytest.raises(InputError, match="semantic_weight_tap: 'features.8' .*features.7"):
        iqa_bench.create_metric("lpips-alex+", pretrained=False, semantic_weight_tap="features.8")


def test_distance_map_of_a_semantic_card_is_an_error_naming_why_and_the_alternative():
    metric = iqa_bench.create_metric("lpips-alex+", pretrained=False)
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(InputError) as error:
        metric.distance_map(x, x)
    message = str(error.value)
    assert "features.7 resized to that layer and normalised there" in message
    assert "create_metric('lpips-alex+', semantic_weight_tap=None).distance_map(x, y)" in message
    assert "layer_distances(x, y)" in message


@pytest.mark.weights
def test_no_lpips_map_weighted_by_the_reference_averages_to_the_lpips_plus_score(alex_weights):
    """Why ``distance_map`` refuses LPIPS+: the alternative the error names is the per-pixel
    map, and it is the plain LPIPS map (same trunk and linear layers), whose plain mean is the
    LPIPS score, but whose mean weighted by the reference's features (upsampled to the image as
    the score resizes them to each layer) is not the LPIPS+ score."""
    plus = iqa_bench.create_metric("lpips-alex+")
    plain = iqa_bench.create_metric("lpips-alex")
    alternative = iqa_bench.create_metric("lpips-alex+", semantic_weight_tap=None)
    ref = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float()[None] / 255
    ref = F.interpolate(ref, size=(256, 256), mode="bilinear", antialias=True)
    noisy = (ref + 0.1 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))).clamp(
        0, 1
    )
    with torch.no_grad():
        image_map = alternative.distance_map(noisy, ref)
        assert torch.equal(image_map, plain.distance_map(noisy, ref))
        weight = plus.embed(ref).weight
        weight = F.interpolate(weight, size=(256, 256), mode="bilinear", align_corners=False)
        weighted = float((image_map * weight).sum() / weight.sum())
        plain_error = abs(float(image_map.mean() / plain(noisy, ref)) - 1)
        plus_error = abs(weighted / float(plus(noisy, ref)) - 1)
    # Measured on this pair: plus_error 1.4e-2, plain_error 2.7e-5.
    assert plain_error < 1e-3 < plus_error


def test_semantic_and_plain_lpips_never_share_embeddings():
    plus = iqa_bench.create_metric("lpips-alex+", pretrained=False)
    plain = iqa_bench.create_metric("lpips-alex", pretrained=False)
    plain.trunk, plain.weight_hashes = plus.trunk, plus.weight_hashes  # the same trunk
    assert plus.embedding_key != plain.embedding_key


def test_zero_reference_weights_fall_back_to_the_plain_mean():
    """All-zero features at the tap: pyiqa divides 0 by 0; no position is favoured instead."""
    gen = torch.Generator().manual_seed(0)
    f0 = [normalize_features(torch.rand(2, 4, 5, 5, generator=gen)) for _ in range(2)]
    f1 = [normalize_features(torch.rand(2, 4, 5, 5, generator=gen)) for _ in range(2)]
    zero = torch.zeros(2, 1, 3, 3)
    weighted = lpips_layer_distances(f0, f1, None, zero)
    assert torch.allclose(weighted, lpips_layer_distances(f0, f1), rtol=0, atol=1e-6)
