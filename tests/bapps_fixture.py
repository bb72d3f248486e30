"""Kept while tests move to :mod:`iqa_bench.datasets.bapps_layout`."""

from iqa_bench.datasets.bapps_layout import *  # noqa: F403
from iqa_bench.datasets.bapps_layout import STORED_RESAMPLE, make_bapps_layout  # noqa: F401
