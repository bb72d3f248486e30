"""LPIPS parity with the reference ``lpips`` package on random trunks shared by both."""

from __future__ import annotations

import re

import lpips as lpips_ref
import pytest
import torch

import iqa_bench

NETS = {"alex": "alex", "vgg16": "vgg", "squeezenet1_1": "squeeze"}
CASES = [(bb, v, lin) for bb in NETS for v in ("0.1", "0.0") for lin in (True, False)]
SHAPES = [(1, 64, 64), (3, 64, 64), (2, 64, 96), (4, 48, 40)]


def _copy_trunk_into_reference(ours, ref) -> None:
    """The reference splits ``features`` into slices that keep the original indices."""
    src = ours.trunk.trunk_state_dict()
    dst = ref.net.state_dict()
    mapped = {k: src[re.sub(r"^slice\d+\.", "features.", k)] for k in dst}
    ref.net.load_state_dict(mapped)


@pytest.fixture(scope="module")
def model_pairs():
    cache = {}

    def get(backbone: str, version: str, lin: bool):
        key = (backbone, version, lin)
        if key not in cache:
            torch.manual_seed(0)
            name = f"lpips-{NETS[backbone]}" + ("" if lin else "-baseline")
            ours = iqa_bench.create_metric(name, pretrained=False, version=version, lpips=lin)
            ref = lpips_ref.LPIPS(
                net=NETS[backbone], version=version, lpips=lin, pnet_rand=True, verbose=False
            ).eval()
            _copy_trunk_into_reference(ours, ref)
            cache[key] = (ours, ref)
        return cache[key]

    return get


@pytest.mark.parametrize(("backbone", "version", "lin"), CASES)
@pytest.mark.parametrize("spatial", [False, True])
def test_lpips_matches_reference_on_random_trunk(model_pairs, backbone, version, lin, spatial):
    ours, ref = model_pairs(backbone, version, lin)
    ref.spatial = spatial
    gen = torch.Generator().manual_seed(1)
    for n, h, w in SHAPES:
        x = torch.rand(n, 3, h, w, generator=gen)
        y = (x + 0.2 * torch.rand(n, 3, h, w, generator=gen)).clamp(0, 1)
        with torch.no_grad():
            expected = ref(x, y, normalize=True)
            got = ours.distance_map(x, y) if spatial else ours(x, y)
        if spatial:
            assert got.shape == (n, 1, h, w)
        else:
            assert got.shape == (n,)
            expected = expected.flatten()
        assert torch.allclose(got, expected, rtol=0, atol=1e-5), (got - expected).abs().max()


def test_lpips_official_linear_weights_differ_from_baseline(model_pairs):
    """Guards the parity test against comparing two unweighted models by accident."""
    ours_lin, _ = model_pairs("alex", "0.1", True)
    ours_base, _ = model_pairs("alex", "0.1", False)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(ours_lin(x, y), ours_base(x, y), atol=1e-3)
    assert ours_lin.weight_hashes["lin"] and "lin" not in ours_base.weight_hashes
