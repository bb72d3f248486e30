"""A new trunk in one file: a backbone and a metric card that uses it (a plugin; no other edits).

Load it with ``iqa-bench --plugin tests/plugin_trunk.py list``, ``IQA_BENCH_PLUGINS=...``, or
``iqa_bench.plugins.load_plugin(path)`` in Python. It is written as a user would write theirs.
"""

from __future__ import annotations

from torch import nn

from iqa_bench.backbones import BACKBONES, BackboneSpec
from iqa_bench.config import register_metric_card

BACKBONE = "tiny-plugin-cnn"
METRIC = "lpips-tiny-plugin"


def build_tiny_cnn() -> nn.Module:
    """Three conv stages in an ``nn.Sequential`` (random weights: ``pretrained: false``)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 24, 3, stride=2, padding=1),
        nn.ReLU(),
    )


BACKBONES.add(BACKBONE, BackboneSpec(name=BACKBONE, build=build_tiny_cnn, taps=("1", "3", "5")))
register_metric_card(
    {
        "name": METRIC,
        "version": 1,
        "type": "lpips",
        "group": "custom",
        "description": "Unweighted LPIPS distance on a tiny random plugin CNN (test plugin).",
        "params": {"backbone": BACKBONE, "lpips": False, "pretrained": False},
    }
)
