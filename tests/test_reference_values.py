"""LPIPS with the real ImageNet trunks: published values and the reference package with the same weights."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

import iqa_bench
from tests.conftest import reference_dir, weights_file

pytestmark = pytest.mark.weights

FILES = {
    "alex": "alexnet-owt-7be5be79-features.pth",
    "squeeze": "squeezenet1_1-b8a52dc0-features.pth",
}


def _load(path) -> torch.Tensor:
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"), dtype=np.uint8)  # writable, as torch wants
    return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255


def _expected_table() -> list[tuple[str, str, bool, float, float]]:
    """Rows of the table in the reference README: net, version, lpips, d(ref,p0), d(ref,p1)."""
    text = (reference_dir() / "README.md").read_text()
    rows = []
    for m in re.finditer(
        r"^\|\s*(\w+)\s*\|\s*([\d.]+)\s*\|\s*(True|False)[^|]*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|$",
        text,
        re.M,
    ):
        rows.append((m[1], m[2], m[3] == "True", float(m[4]), float(m[5])))
    assert len(rows) >= 8, "the reference README's table was not found"
    return rows


def _metric_name(net: str, version: str, lin: bool) -> str:
    if not lin:
        return f"lpips-{net}-baseline"
    return f"lpips-{net}" + ("-v0.0" if version == "0.0" else "")


@pytest.mark.parametrize("net", ["alex", "squeeze"])
def test_lpips_matches_published_reference_values(net):
    weights_file(FILES[net])
    imgs = reference_dir() / "imgs"
    ref, p0, p1 = (_load(imgs / f"ex_{n}.png") for n in ("ref", "p0", "p1"))
    rows = [r for r in _expected_table() if r[0] == net]
    assert rows
    for _, version, lin, want0, want1 in rows:
        metric = iqa_bench.create_metric(_metric_name(net, version, lin), version=version)
        with torch.no_grad():
            got0, got1 = float(metric(ref, p0)), float(metric(ref, p1))
        assert round(got0, 4) == pytest.approx(want0, abs=1e-4), (net, version, lin)
        assert round(got1, 4) == pytest.approx(want1, abs=1e-4), (net, version, lin)


@pytest.mark.parametrize("net", ["alex", "squeeze"])
def test_lpips_matches_reference_package_with_real_trunks(net):
    import lpips

    state = torch.load(weights_file(FILES[net]), weights_only=True)
    ours = iqa_bench.create_metric(f"lpips-{net}")
    ref = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
    ref.net.load_state_dict(
        {k: state[re.sub(r"^slice\d+\.", "features.", k)] for k in ref.net.state_dict()}
    )
    imgs = reference_dir() / "imgs"
    x = torch.cat([_load(imgs / "ex_dir0" / f) for f in ("0.png", "1.png")])
    y = torch.cat([_load(imgs / "ex_dir1" / f) for f in ("0.png", "1.png")])
    with torch.no_grad():
        assert torch.allclose(ours(x, y), ref(x, y, normalize=True).flatten(), atol=1e-5)


def test_vgg_real_weights_load_when_present():
    weights_file("vgg16-397923af-features.pth")
    metric = iqa_bench.create_metric("lpips-vgg")
    x = torch.rand(1, 3, 64, 64)
    assert float(metric(x, x)) == pytest.approx(0.0, abs=1e-6)
