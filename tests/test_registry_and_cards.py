"""The generic registry, strict YAML cards, and the backbone/tap machinery."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import yaml

import iqa_bench
from iqa_bench.backbones import BACKBONES, BackboneSpec, TappedTrunk, min_input_size
from iqa_bench.config import MetricCard, from_mapping, metric_cards
from iqa_bench.metrics import METRIC_TYPES
from iqa_bench.registry import Registry


def test_registry_rejects_duplicate_names():
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a")(2)


def test_registry_suggests_close_names():
    reg: Registry[int] = Registry("widget")
    reg.add("squeezenet1_1", 1)
    with pytest.raises(
        ValueError, match=r"unknown widget 'squeezenet'\. Did you mean 'squeezenet1_1'"
    ):
        reg.get("squeezenet")


@dataclass(frozen=True)
class _Cfg:
    size: int
    name: str = "x"


def test_cards_reject_unknown_missing_and_mistyped_keys():
    with pytest.raises(ValueError, match=r"f.yaml: unknown key 'sise'.*Did you mean 'size'"):
        from_mapping(_Cfg, {"sise": 1}, "f.yaml")
    with pytest.raises(ValueError, match="missing required key 'size'"):
        from_mapping(_Cfg, {}, "f.yaml")
    with pytest.raises(ValueError, match=r"key 'size': expected an integer, got '3'"):
        from_mapping(_Cfg, {"size": "3"}, "f.yaml")


def test_every_metric_card_names_a_registered_type_with_valid_params():
    cards = metric_cards()
    assert len(cards) >= 16
    for card in cards.values():
        cls = METRIC_TYPES.get(card.type)
        from_mapping(cls.Config, card.params, card.name)


def test_card_name_must_match_its_file(tmp_path, monkeypatch):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "datasets").mkdir()
    card = {"name": "other", "version": 1, "type": "l2", "group": "classical", "description": "d"}
    (tmp_path / "metrics" / "mine.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("IQA_BENCH_CARDS", str(tmp_path))
    with pytest.raises(ValueError, match="name 'other' must equal the file name 'mine'"):
        metric_cards()


def test_list_metrics_reports_orientation_and_version():
    infos = {m.name: m for m in iqa_bench.list_metrics()}
    assert infos["psnr"].higher_is_better and infos["ssim-paper"].higher_is_better
    assert not infos["lpips-alex"].higher_is_better
    assert all(m.version >= 1 for m in infos.values())


@pytest.mark.parametrize(
    ("backbone", "channels"),
    [
        ("alex", [64, 192, 384, 256, 256]),
        ("vgg16", [64, 128, 256, 512, 512]),
        ("squeezenet1_1", [64, 128, 256, 384, 384, 512, 512]),
    ],
)
def test_backbone_taps_give_the_lpips_channel_counts(backbone, channels):
    spec = BACKBONES.get(backbone)
    with torch.device("meta"):
        trunk = TappedTrunk(spec.build(), spec.taps)
    assert trunk.channels() == channels


def test_tapped_trunk_returns_the_named_module_outputs():
    torch.manual_seed(0)
    model = BACKBONES.get("alex").build().eval()
    trunk = TappedTrunk(model, ("features.1", "features.4"))
    x = torch.rand(1, 3, 64, 64)
    got = trunk(x)
    want = model.features[:2](x)
    assert torch.equal(got[0], want)
    assert torch.equal(got[1], model.features[2:5](want))


def test_non_sequential_trunks_are_tapped_through_fx():
    import torchvision

    model = torchvision.models.resnet18(weights=None).eval()
    trunk = TappedTrunk(model, ("layer1", "layer2"))
    feats = trunk(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [64, 128]


def test_unknown_tap_name_is_an_error_with_suggestion():
    with pytest.raises(ValueError, match=r"taps: module 'features\.99' is not in the network"):
        TappedTrunk(BACKBONES.get("alex").build(), ("features.1", "features.99"))


def test_new_backbone_registered_in_one_place_works_as_lpips_trunk():
    spec = BackboneSpec(
        name="tiny-test",
        build=lambda: torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3), torch.nn.ReLU()
        ),
        taps=("1", "3"),
    )
    BACKBONES.add("tiny-test", spec)
    try:
        card = MetricCard(
            name="lpips-tiny",
            version=1,
            type="lpips",
            group="custom",
            description="test",
            params={"backbone": "tiny-test", "lpips": False, "pretrained": False},
        )
        from iqa_bench.metrics.factory import build_metric

        metric = build_metric(card)
        x = torch.rand(2, 3, 16, 16)
        assert metric(x, x).abs().max() < 1e-6
        assert metric(x, torch.rand(2, 3, 16, 16)).min() > 0
        assert min_input_size("tiny-test") == 5
    finally:
        BACKBONES.remove("tiny-test")
