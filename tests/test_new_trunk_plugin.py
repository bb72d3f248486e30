"""A trunk registered in one file (``tests/plugin_trunk.py``) reaches ``list``, runs and reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iqa_bench.backbones import BACKBONES
from iqa_bench.cli import main
from iqa_bench.config import metric_cards, unregister_metric_card
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.plugins import _LOADED, load_plugin, plugin_refs
from iqa_bench.reports import write_report
from iqa_bench.runner import RunOptions, run_benchmark
from iqa_bench.settings import PLUGINS_ENV

PLUGIN = Path(__file__).with_name("plugin_trunk.py")
BACKBONE, METRIC = "tiny-plugin-cnn", "lpips-tiny-plugin"


@pytest.fixture
def plugin():
    """Load the plugin for one test and undo its registrations afterwards."""
    module = load_plugin(str(PLUGIN))
    yield module
    BACKBONES.remove(BACKBONE)
    unregister_metric_card(METRIC)
    for key in [k for k, v in _LOADED.items() if v is module]:
        del _LOADED[key]
    sys.modules.pop(module.__name__, None)


def test_without_the_plugin_nothing_is_registered():
    assert BACKBONE not in BACKBONES and METRIC not in metric_cards()


def test_plugin_trunk_appears_in_iqa_bench_list(plugin, capsys):
    assert main(["--plugin", str(PLUGIN), "list", "--all"]) == 0
    out = capsys.readouterr().out
    assert METRIC in out and "custom" in out
    assert f"{BACKBONE}: taps 1, 3, 5" in out
    assert load_plugin(str(PLUGIN)) is plugin  # loading again is a no-op, no duplicate error


def test_plugin_trunk_runs_and_appears_in_the_report(plugin, tmp_path):
    root = make_bapps_layout(tmp_path / "data", {"cnn": 6, "traditional": 6}, {"cnn": 6})
    result = run_benchmark(
        str(root),
        ["l2", METRIC],
        tmp_path / "run",
        RunOptions(device="cpu", progress=False),
        log=lambda msg: None,
    )
    entry = result.manifest["metrics"][METRIC]
    assert entry["status"] == "ok" and entry["params"]["backbone"] == BACKBONE
    folder = write_report(result.run_dir, tmp_path / "reports", n_boot=100, n_perm=100)
    assert METRIC in (folder / "report.md").read_text()
    assert METRIC in (folder / "summary.json").read_text()


def test_cli_loads_plugins_from_the_environment_in_a_fresh_process(tmp_path):
    env = dict(os.environ, **{PLUGINS_ENV: str(PLUGIN)})
    out = subprocess.run(
        [sys.executable, "-m", "iqa_bench.cli", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert METRIC in out


def test_plugin_refs_merge_environment_and_options(monkeypatch):
    monkeypatch.setenv(PLUGINS_ENV, f"a.b,c.py{os.pathsep}d")
    assert plugin_refs(["c.py", "e"]) == ["a.b", "c.py", "d", "e"]


def test_bad_plugins_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_plugin(str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match="cannot be imported"):
        load_plugin("no_such_module_for_iqa_bench")
