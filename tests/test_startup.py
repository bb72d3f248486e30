"""Start-up: what the scoring and listing paths import, and the torchvision-free trunks they build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from iqa_bench import trunks
from iqa_bench.backbones import (
    BACKBONES,
    TappedTrunk,
    _dry_run_sizes,
    _sequential_sizes,
)
from iqa_bench.bridge_specs import BRIDGES
from iqa_bench.catalog import BUILTIN_HIGHER_IS_BETTER, list_metrics
from iqa_bench.config import load_metric_card
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.errors import WeightsUnavailableError
from iqa_bench.metrics import METRIC_TYPES
from iqa_bench.metrics.trunk import build_trunk
from iqa_bench.weights import lpips_lin_path

from .conftest import REPO

#: Modules the issue names as not needed to score a pair with the built-in metrics.
HEAVY = ("torchvision", "lpips", "torch._dynamo", "pandas", "matplotlib", "scipy", "seaborn")


def _modules_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; returns its JSON output and which HEAVY it imported."""
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps({{"loaded": [m for m in {HEAVY!r} + ("torch",) if m in sys.modules],
                          "out": out}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slow
def test_scoring_lpips_alex_and_l2_imports_no_heavy_module(alex_weights, tmp_path):
    rng = np.random.default_rng(0)
    paths = [str(tmp_path / f"{i}.png") for i in range(2)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    result = _modules_after(f"""
        from iqa_bench.cli import main
        out = [main(["score", "--metric", m, *{paths!r}]) for m in ("lpips-alex", "l2")]
    """)
    assert result["out"] == [0, 0]
    assert result["loaded"] == ["torch"]


@pytest.mark.slow
def test_a_run_without_report_imports_no_heavy_module(alex_weights, tmp_path):
    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 4}, {"cnn": 4})
    argv = ["run", "--dataset", str(root), "--metrics", "lpips-alex,l2"]
    argv += ["--out", str(tmp_path / "out"), "--no-report", "--quiet"]
    result = _modules_after(f"""
        from iqa_bench.cli import main
        out = main({argv!r})
    """)
    assert result["out"] == 0
    assert result["loaded"] == ["torch"]


def test_import_and_listing_need_no_torch():
    result = _modules_after("""
        import iqa_bench
        out = len(iqa_bench.list_metrics())
    """)
    # Every card file is listed (this process's registry may hold cards other tests registered).
    assert result["out"] == len(list((REPO / "metrics").glob("*.yaml"))) > 10
    assert result["loaded"] == []


def test_builtin_orientations_match_the_registered_classes():
    assert {
        name: METRIC_TYPES.get(name).higher_is_better for name in BUILTIN_HIGHER_IS_BETTER
    } == BUILTIN_HIGHER_IS_BETTER
    types = {m.type for m in list_metrics()}
    # every shipped card lists without torch: built-in types here, bridged ones per card
    assert types <= set(BUILTIN_HIGHER_IS_BETTER) | set(BRIDGES)


def test_bridged_card_orientations_match_the_built_metrics():
    for info in list_metrics():
        if info.type in BRIDGES:
            metric = METRIC_TYPES.get(info.type)(
                METRIC_TYPES.get(info.type).Config(**info.params), load_metric_card(info.name)
            )
            assert metric.higher_is_better == info.higher_is_better, info.name


BUILDERS = [
    (trunks.alexnet, torchvision.models.alexnet),
    (trunks.squeezenet1_1, torchvision.models.squeezenet1_1),
    (trunks.vgg16, torchvision.models.vgg16),
]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [*BUILDERS[:2], pytest.param(*BUILDERS[2], marks=pytest.mark.slow)],  # vgg16: 12 s here
    ids=lambda f: f.__name__,
)
def test_trunks_match_torchvision_layout_and_seeded_initialisation(ours, theirs):
    torch.manual_seed(0)
    reference = theirs(weights=None)
    torch.manual_seed(0)
    mine = ours()
    ref_state, my_state = reference.state_dict(), mine.state_dict()
    assert [(k, v.shape) for k, v in my_state.items()] == [
        (k, v.shape) for k, v in ref_state.items()
    ]
    # Same random draws in the same order: seeded random trunks are torchvision's.
    assert all(torch.equal(my_state[k], ref_state[k]) for k in ref_state)
    assert [type(m).__name__ for m in mine.modules()] == [
        type(m).__name__ for m in reference.modules()
    ]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [*BUILDERS[:2], pytest.param(*BUILDERS[2], marks=pytest.mark.slow)],
    ids=lambda f: f.__name__,
)
def test_torchvision_state_dict_loads_strictly_and_gives_equal_outputs(ours, theirs):
    torch.manual_seed(1)
    reference = theirs(weights=None).eval()
    mine = ours().eval()
    mine.load_state_dict(reference.state_dict(), strict=True)
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(mine(x), reference(x))
        assert torch.equal(mine.features(x), reference.features(x))


@pytest.mark.parametrize("backbone", ["alex", "squeezenet1_1", "vgg16"])
def test_min_input_size_by_shape_arithmetic_equals_dry_runs(backbone):
    spec = BACKBONES.get(backbone)
    for k in range(1, len(spec.taps) + 1):
        with torch.device("meta"):
            trunk = TappedTrunk(spec.build(), spec.taps[:k]).eval()
        computed, probed = _sequential_sizes(trunk), _dry_run_sizes(trunk, spec, spec.taps[:k])
        assert computed is not None
        assert [s for s in range(1, 80) if computed(s) != probed(s)] == []  # minimum: 16 to 31


@pytest.mark.parametrize(
    "layers",
    [
        [nn.Conv2d(3, 4, 5, stride=3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(3, 2)],
        [nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), nn.Conv2d(3, 4, (3, 7), stride=(1, 2))],
        [nn.AvgPool2d(4, 3, ceil_mode=True), nn.BatchNorm2d(3), nn.MaxPool2d(2, 2, ceil_mode=True)],
    ],
)
def test_shape_arithmetic_follows_pytorch_for_padding_dilation_and_ceil_mode(layers):
    trunk = TappedTrunk(nn.Sequential(*layers), [str(len(layers) - 1)]).to("meta").eval()
    computed = _sequential_sizes(trunk)
    probed = _dry_run_sizes(trunk, None, None)
    assert [s for s in range(1, 120) if computed(s) != probed(s)] == []


def test_unknown_layers_fall_back_to_dry_runs():
    trunk = TappedTrunk(nn.Sequential(nn.Conv2d(3, 3, 3), nn.Upsample(scale_factor=2)), ["1"])
    assert _sequential_sizes(trunk) is None


def test_pretrained_trunk_holds_the_weights_file_tensors(alex_weights):
    _, trunk, hashes = build_trunk("alex", None, pretrained=True)
    state = torch.load(alex_weights, map_location="cpu", weights_only=True)
    mine = trunk.trunk_state_dict()
    assert set(mine) == {k for k in state if int(k.split(".")[1]) <= 11}
    assert all(torch.equal(mine[k], state[k]) and mine[k].device.type == "cpu" for k in mine)
    assert not any(p.requires_grad for p in trunk.parameters()) and hashes["trunk"]


def test_assigned_weights_take_the_trunk_dtype():
    with torch.device("meta"):
        trunk = TappedTrunk(trunks.alexnet(), ["features.1"])
    state = {
        "features.0.weight": torch.ones(64, 3, 11, 11).half(),
        "features.0.bias": torch.ones(64),
    }
    trunk.load_trunk_state_dict(state, assign=True)
    assert trunk.layers[0].weight.dtype == torch.float32 and not trunk.layers[0].weight.is_meta


@pytest.mark.parametrize("version", ["0.1", "0.0"])
@pytest.mark.parametrize("name", ["alex", "squeeze", "vgg"])
def test_lpips_weights_are_the_installed_package_files(name, version):
    lpips = pytest.importorskip("lpips")
    expected = os.path.join(
        os.path.dirname(lpips.__file__), "weights", f"v{version}", f"{name}.pth"
    )
    assert str(lpips_lin_path(name, version)) == expected


def test_missing_lpips_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(WeightsUnavailableError, match="pip install lpips"):
        lpips_lin_path("alex", "0.1")
