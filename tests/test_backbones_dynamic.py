"""Zoo backbones by name (``torchvision:<model>``, ``timm:<model>``), taps, weights, normalisation."""

from __future__ import annotations

import hashlib
import importlib.util

import pytest
import torch
import torchvision
from torch import nn

from iqa_bench.backbones import (
    BACKBONES,
    BackboneSpec,
    TappedTrunk,
    TrunkWeights,
    describe_backbone,
    min_input_size,
)
from iqa_bench.cli import main
from iqa_bench.config import MetricCard, load_metric_card_file, unregister_metric_card
from iqa_bench.metrics import create_metric
from iqa_bench.metrics.factory import build_metric
from iqa_bench.weights import WeightsUnavailableError
from iqa_bench.zoo import resolve_zoo_backbone, state_digest

R18_TAPS = ["layer1", "layer2", "layer3", "layer4"]
HAS_TIMM = importlib.util.find_spec("timm") is not None


def _card(backbone: str, taps, **params) -> MetricCard:
    params = {"backbone": backbone, "lpips": False, "pretrained": False} | params
    if taps is not None:
        params["taps"] = list(taps)
    return MetricCard("lpips-dyn", 1, "lpips", "deep-baseline", "dynamic backbone", params)


def test_torchvision_name_resolves_weights_url_and_normalisation_from_the_weights_enum():
    spec = BACKBONES.get("torchvision:resnet18")
    entry = torchvision.models.ResNet18_Weights.DEFAULT
    assert spec.weights.url == entry.url
    assert spec.weights.features_file == "resnet18-f37072fd.pth"  # torchvision's own file name
    assert spec.weights.checkpoint_sha256_prefix == "f37072fd"
    assert spec.mean == tuple(entry.transforms().mean) and spec.std == tuple(entry.transforms().std)
    assert spec.taps == ()
    pinned = BACKBONES.get("torchvision:resnet50@IMAGENET1K_V1")
    assert pinned.weights.url == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
    assert pinned.weights.url != BACKBONES.get("torchvision:resnet50").weights.url


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("torchvision:resnet19", "Did you mean 'resnet18'"),
        ("torchvision:resnet50@IMAGENET1K_V9", "IMAGENET1K_V1, IMAGENET1K_V2"),
        ("resnet18", "torchvision:<model>"),
    ],
)
def test_unknown_backbones_fail_with_suggestions(name, match):
    with pytest.raises(ValueError, match=match):
        BACKBONES.get(name)


def test_untrained_torchvision_lpips_works_and_discovers_channels():
    metric = build_metric(_card("torchvision:resnet18", R18_TAPS))
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    d = metric(x, y)
    assert d.shape == (2,) and bool((d > 0).all())
    assert metric(x, x).abs().max() < 1e-6
    assert metric.trunk.channels() == [64, 128, 256, 512]
    mean = torchvision.models.ResNet18_Weights.DEFAULT.transforms().mean
    assert torch.allclose(metric.shift.flatten(), torch.tensor(mean))
    assert metric.to_pm1 is False


def test_random_zoo_trunks_are_never_shared_between_metrics():
    a = build_metric(_card("torchvision:resnet18", R18_TAPS))
    b = build_metric(_card("torchvision:resnet18", R18_TAPS))
    assert a.embedding_key != b.embedding_key


def test_zoo_backbone_without_taps_lists_candidates():
    with pytest.raises(ValueError, match="declares no taps.*layer1, layer2"):
        build_metric(_card("torchvision:resnet18", None))
    with pytest.raises(ValueError, match="Did you mean 'layer4'"):
        build_metric(_card("torchvision:resnet18", ["layer5"]))


def test_a_tap_that_is_not_a_feature_map_is_refused():
    trunk = TappedTrunk(torchvision.models.resnet18(), ["layer1", "fc"])
    with pytest.raises(ValueError, match="'fc' outputs \\(1, 1000\\)"):
        trunk.channels()


def test_channels_fall_back_to_a_real_pass_when_the_trunk_cannot_be_copied(monkeypatch):
    """Older torch (2.2) copies an FX feature extractor without its eval graph."""
    import copy

    trunk = TappedTrunk(torchvision.models.resnet18(), ["layer1", "layer2"])
    assert trunk.extractor is not None  # the FX path, the one that failed to copy
    want = trunk.channels()

    def broken_copy(obj, memo=None):
        raise AttributeError("'GraphModule' object has no attribute 'eval_graph'")

    monkeypatch.setattr(copy, "deepcopy", broken_copy)
    trunk.train()
    assert trunk.channels() == want == [64, 128]
    assert trunk.training  # the real pass leaves the mode as it found it


def test_pretrained_zoo_weights_offline_name_file_url_and_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("IQA_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as info:
        build_metric(_card("torchvision:resnet18", R18_TAPS, pretrained=True))
    message = str(info.value)
    for part in ("resnet18-f37072fd.pth", "download.pytorch.org/models/resnet18", "IQA_BENCH_"):
        assert part in message


def test_local_zoo_checkpoint_with_a_wrong_hash_is_refused(monkeypatch, tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18-f37072fd.pth")
    monkeypatch.setenv("IQA_BENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(ValueError, match="does not start with f37072fd"):
        build_metric(_card("torchvision:resnet18", R18_TAPS, pretrained=True))


def test_whole_checkpoint_weights_load_with_their_hash_recorded(monkeypatch, tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    tmp = tmp_path / "tmp.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp.rename(tmp_path / f"myresnet-{digest[:8]}.pth")
    monkeypatch.setenv("IQA_BENCH_WEIGHTS", str(tmp_path))
    weights = TrunkWeights(stem=f"myresnet-{digest[:8]}", url="https://example.invalid/x.pth")
    spec = BackboneSpec(
        "test-myresnet",
        lambda: torchvision.models.resnet18(),
        tuple(R18_TAPS),
        weights=TrunkWeights(weights.stem, weights.url, keep_prefix=""),
    )
    BACKBONES.add("test-myresnet", spec)
    try:
        metric = build_metric(_card("test-myresnet", None, pretrained=True))
        assert metric.weight_hashes["trunk"] == digest
        loaded = metric.trunk.trunk_state_dict()["layer1.0.conv1.weight"]
        assert torch.equal(loaded, state["layer1.0.conv1.weight"])
    finally:
        BACKBONES.remove("test-myresnet")


class _Untraceable(nn.Module):
    """Data-dependent control flow: the FX tracer cannot trace it, hooks can."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(4, 6, 3)

    def forward(self, x):
        x = torch.relu(self.a(x))
        if x.sum() > 0:
            x = x * 2
        return self.b(x)


def test_untraceable_networks_are_tapped_by_hooks_with_identical_features():
    model = _Untraceable()
    trunk = TappedTrunk(model, ["a", "b"])
    assert type(trunk.extractor).__name__ == "_HookExtractor"
    x = torch.rand(2, 3, 16, 16)
    fa, fb = trunk(x)
    assert torch.equal(fa, model.a(x)) and torch.equal(fb, model(x))
    assert trunk.channels() == [4, 6]
    assert set(trunk.trunk_state_dict()) == set(model.state_dict())
    BACKBONES.add("test-untraceable", BackboneSpec("test-untraceable", _Untraceable, ("a", "b")))
    try:  # the meta-device probe cannot run it; the CPU probe finds two 3x3 convolutions' 5
        assert min_input_size("test-untraceable") == 5
    finally:
        BACKBONES.remove("test-untraceable")


class _StemThenStages(nn.Module):
    """Taps in an ``nn.Sequential`` that does not receive the input (timm's stem + stages)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 5, 3)
        self.stages = nn.Sequential(nn.Conv2d(5, 7, 3), nn.Conv2d(7, 9, 3))

    def forward(self, x):
        return self.stages(self.stem(x))


def test_taps_in_a_sequential_after_a_stem_keep_the_stem():
    model = _StemThenStages()
    trunk = TappedTrunk(model, ["stages.0", "stages.1"])
    x = torch.rand(1, 3, 16, 16)
    f0, f1 = trunk(x)
    assert torch.equal(f0, model.stages[0](model.stem(x))) and torch.equal(f1, model(x))
    assert trunk.channels() == [7, 9]


def test_describe_backbone_and_cli_show_candidate_taps_with_shapes(capsys):
    rows = {name: shape for name, _, shape in describe_backbone("torchvision:resnet18", depth=1)}
    assert rows["layer3"] == (1, 256, 14, 14)
    assert main(["backbones", "torchvision:resnet18", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "layer2" in out and "(1, 128, 28, 28)" in out
    assert main(["backbones"]) == 0
    assert "torchvision:<model>" in capsys.readouterr().out


def test_a_yaml_card_file_makes_a_zoo_backbone_a_named_metric(tmp_path):
    path = tmp_path / "lpips-r18-test.yaml"
    path.write_text(
        "name: lpips-r18-test\nversion: 1\ntype: lpips\ngroup: deep-baseline\n"
        "description: resnet18 untrained features\n"
        "params:\n  backbone: torchvision:resnet18\n  taps: [layer1, layer2]\n"
        "  lpips: false\n  pretrained: false\n"
    )
    try:
        card = load_metric_card_file(path)
        metric = create_metric(card.name)
        assert metric.trunk.taps == ("layer1", "layer2")
        assert load_metric_card_file(path) == card  # registering the same card twice is fine
    finally:
        unregister_metric_card("lpips-r18-test")
    wrong = tmp_path / "other-name.yaml"
    wrong.write_text(path.read_text())
    with pytest.raises(ValueError, match="must equal the file name"):
        load_metric_card_file(wrong)


@pytest.mark.skipif(not HAS_TIMM, reason="timm is not installed (optional: pip install timm)")
def test_timm_backbone_untrained_with_its_own_normalisation():
    spec = BACKBONES.get("timm:resnet18")
    assert spec.pretrained_state is not None and spec.weights is None
    metric = build_metric(_card("timm:resnet18", ["layer1", "layer2"]))
    assert metric.trunk.channels() == [64, 128]
    assert metric(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)).shape == (1,)
    assert torch.allclose(metric.scale.flatten(), torch.tensor(spec.std))


def test_timm_names_without_timm_say_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name == "timm" or name.startswith("timm."):
            raise ImportError("No module named 'timm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    resolve_zoo_backbone.cache_clear()
    try:
        with pytest.raises(ValueError, match="pip install timm"):
            BACKBONES.get("timm:resnet18")
    finally:
        resolve_zoo_backbone.cache_clear()


def test_state_digest_depends_on_values_names_and_dtypes():
    a = {"w": torch.ones(3)}
    assert state_digest(a) == state_digest({"w": torch.ones(3)})
    assert state_digest(a) != state_digest({"w": torch.ones(3) * 2})
    assert state_digest(a) != state_digest({"v": torch.ones(3)})
    assert state_digest(a) != state_digest({"w": torch.ones(3, dtype=torch.float64)})
