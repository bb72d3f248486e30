"""Metric types computed by other libraries: ``piq:<name>``, ``torchmetrics:<name>``,
``pyiqa:<name>`` (tables in :mod:`iqa_bench.bridge_specs`; each library is imported on first use)."""

from ._base import BridgeConfig, BridgedMetric
from .piq import PiqMetric
from .pyiqa import PyiqaMetric
from .torchmetrics import TorchmetricsMetric

__all__ = ["BridgeConfig", "BridgedMetric", "PiqMetric", "PyiqaMetric", "TorchmetricsMetric"]
