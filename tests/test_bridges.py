"""Bridged metrics (piq:, torchmetrics:, pyiqa:): resolution, errors, input mapping, sizes, weights,
provenance, and the runner on 64x64 patches."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

import iqa_bench
from iqa_bench import bridge_specs
from iqa_bench.bridge_specs import BRIDGES, bridge_spec
from iqa_bench.catalog import list_metrics
from iqa_bench.config import load_metric_card
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.errors import InputError, MissingExtraError, WeightsUnavailableError
from iqa_bench.metrics.bridges import _base, pyiqa
from iqa_bench.records import parse_manifest
from iqa_bench.runner import RunOptions, run_benchmark

BRIDGED_CARDS = sorted(m.name for m in list_metrics() if m.type in BRIDGES)


def _pair(size: int, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_a_bridged_name_resolves_to_a_card_from_the_table():
    card = load_metric_card("torchmetrics:ms_ssim")
    assert (card.type, card.group, card.params, card.version) == (
        "torchmetrics",
        "classical",
        {"name": "ms_ssim"},
        1,
    )
    assert "torchmetrics" in card.description


def test_an_unknown_bridged_name_lists_close_matches_from_that_library():
    with pytest.raises(InputError, match=r"unknown pyiqa metric 'fsimc'.*'fsim'.*Bridged pyiqa"):
        iqa_bench.create_metric("pyiqa:fsimc")


def test_a_missing_library_names_the_extra_to_install(monkeypatch):
    real = importlib.import_module

    def no_piq(name, *args):
        if name == "piq":
            raise ImportError("No module named 'piq'")
        return real(name, *args)

    monkeypatch.setattr(_base.importlib, "import_module", no_piq)
    with pytest.raises(MissingExtraError, match=r"pip install 'iqa-bench\[piq\]'"):
        iqa_bench.create_metric("piq:haarpsi")


def test_options_may_not_override_the_data_range_the_bridge_sets():
    with pytest.raises(InputError, match="data_range set by the bridge"):
        iqa_bench.create_metric("piq:ssim", options={"data_range": 255})


@pytest.mark.parametrize("name", ["piq:gmsd", "piq:vsi", "torchmetrics:ergas", "pyiqa:nlpd"])
def test_orientation_is_per_card_and_the_listing_agrees(name):
    metric = iqa_bench.create_metric(name)
    library, _, key = name.partition(":")
    assert metric.higher_is_better is bridge_spec(library, key).higher_is_better
    assert metric.library_version == importlib.metadata.version(library)


def test_list_names_the_library_and_version_of_each_bridged_card():
    infos = {m.name: m for m in list_metrics()}
    assert infos["fsimc"].library == f"piq {importlib.metadata.version('piq')}"
    assert infos["ms-ssim"].library == f"pyiqa {importlib.metadata.version('pyiqa')}"
    assert infos["ssim"].library is None


def test_torchmetrics_vif_gets_0_255_values_as_its_noise_variance_assumes():
    from torchmetrics.functional.image import visual_information_fidelity as vif

    ref, dist = _pair(64)
    ours = iqa_bench.create_metric("torchmetrics:vif")(dist, ref)
    assert torch.equal(ours, vif(dist * 255, ref * 255, reduction="none"))
    # Unscaled [0, 1] input makes the fixed sigma_n^2 = 2 swamp the signal: values near 1 for
    # these noisy pairs (measured 0.945 and 0.951; 0.99 on noisy photographs) instead of 0.61.
    assert float(vif(dist, ref, reduction="none").min()) > 0.9 > 0.7 > float(ours.max())


def test_asymmetric_vif_takes_y_as_the_reference_as_the_library_does():
    import piq

    ref, dist = _pair(64)  # dist: ref plus noise
    metric = iqa_bench.create_metric("vif-p")
    ours = metric(dist, ref)
    assert not metric.symmetric  # so the runner passes a task's reference as y
    assert torch.equal(ours, piq.vif_p(dist, ref, data_range=1.0, reduction="none"))
    assert not torch.allclose(ours, piq.vif_p(ref, dist, data_range=1.0, reduction="none"))


def _scores(metric, size: int) -> torch.Tensor | None:
    """The metric's scores at ``size``, or None where the library raises or returns NaN."""
    x, y = _pair(size)
    metric.check_inputs = False
    try:
        out = metric(x, y)
    except (RuntimeError, ValueError, AssertionError, IndexError):
        return None
    return out if bool(torch.isfinite(out).all()) else None


CHEAP = [f"{lib}:{n}" for lib in ("piq", "torchmetrics") for n in BRIDGES[lib]]
PYIQA_PLAIN = [f"pyiqa:{n}" for n, s in BRIDGES["pyiqa"].items() if not s.weights]


@pytest.mark.parametrize(
    "name", CHEAP + [pytest.param(n, marks=pytest.mark.slow) for n in PYIQA_PLAIN]
)
def test_min_size_is_the_smallest_side_the_library_scores(name):
    metric = iqa_bench.create_metric(name)
    assert _scores(metric, metric.min_size) is not None
    if metric.min_size > 1:
        assert _scores(metric, metric.min_size - 1) is None


@pytest.mark.parametrize(
    "name", CHEAP + [pytest.param(n, marks=pytest.mark.slow) for n in PYIQA_PLAIN]
)
def test_a_batch_scores_as_its_pairs_one_by_one(name):
    metric = iqa_bench.create_metric(name)
    x, y = _pair(max(metric.min_size, 32), n=3)
    alone = torch.cat([metric(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    # Measured: equal to the last float32 bit for every bridged metric but pyiqa's MAD
    # (batched convolutions round differently, 1e-6 relative).
    torch.testing.assert_close(metric(x, y), alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["iw_ssim", "srsim"])
def test_piq_metrics_marked_one_by_one_do_depend_on_the_batch(name):
    import piq

    spec = bridge_spec("piq", name)
    fn = getattr(piq, spec.call)
    x, y = _pair(spec.min_size, n=3)
    batched = fn(y, x, **spec.fixed)
    alone = torch.cat([fn(y[i : i + 1], x[i : i + 1], **spec.fixed) for i in range(3)])
    assert not spec.batched
    assert float((batched - alone).abs().max()) > 1e-5  # measured 1.5e-4 and 8.3e-4


def test_pyiqa_weights_missing_offline_are_unavailable_before_any_download(monkeypatch, tmp_path):
    monkeypatch.setattr(pyiqa.torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("IQA_BENCH_OFFLINE", "1")
    calls = []
    monkeypatch.setattr(pyiqa, "import_library", lambda *a: calls.append(a))
    with pytest.raises(WeightsUnavailableError, match=r"LPIPS_v0.1_alex-df73285e.pth"):
        iqa_bench.create_metric("pyiqa:lpips")
    assert calls == []  # pyiqa was not even imported, so it could not start a download


def test_a_failed_pyiqa_download_is_unavailable_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(pyiqa.torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("IQA_BENCH_OFFLINE", raising=False)

    class NoNetwork:
        def InferenceModel(self, *args, **kwargs):
            raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(pyiqa, "import_library", lambda *a: NoNetwork())
    with pytest.raises(WeightsUnavailableError, match="name resolution.*run once online"):
        iqa_bench.create_metric("pyiqa:dists")


def test_specs_are_readable_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, iqa_bench.bridge_specs as b, iqa_bench.config as c; "
        "c.load_metric_card('piq:haarpsi'); sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert bridge_specs.is_bridged_name("piq:x") and not bridge_specs.is_bridged_name("piq")


@pytest.mark.slow
def test_on_64x64_bapps_patches_every_card_scores_or_is_skipped_with_its_reason(tmp_path):
    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 4}, {"cnn": 3})
    opts = RunOptions(progress=False, batch_size=4)
    result = run_benchmark(str(root), BRIDGED_CARDS, tmp_path / "run", opts, log=lambda m: None)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    parse_manifest(manifest, result.run_dir / "manifest.json")  # the contract holds
    for name in BRIDGED_CARDS:
        entry = manifest["metrics"][name]
        card = load_metric_card(name)
        assert entry["library"] == card.type
        assert entry["library_version"] == importlib.metadata.version(card.type)
        min_size = bridge_spec(card.type, card.params["name"]).min_size
        if min_size > 64:
            assert entry["status"] == "skipped", name
            assert f"at least {min_size}x{min_size}" in entry["reason"]
        else:
            assert entry["status"] == "ok" and entry["reason"] is None, name
    assert manifest["failed_samples"] == []  # a skipped metric's samples exclude nothing else
    assert manifest["metrics"]["fsimc"]["timings"]["2afc"] > 0


def test_a_manifest_from_before_bridges_reads_library_as_none(tmp_path):
    from tests.run_fixture import make_run

    run_dir = make_run(tmp_path)
    data = json.loads((run_dir / "manifest.json").read_text())
    for entry in data["metrics"].values():
        assert entry.pop("library") is None and entry.pop("library_version") is None
    manifest = parse_manifest(data, run_dir / "manifest.json")
    assert all(m.library is None for m in manifest.metrics.values())


def test_iqa_bench_list_says_which_library_computes_each_metric(capsys):
    from iqa_bench.cli import main

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "computed by" in lines[0]
    vsi = next(line for line in lines if line.startswith("vsi "))
    ssim = next(line for line in lines if line.startswith("ssim "))
    assert f"piq {importlib.metadata.version('piq')}" in vsi and "native" in ssim


def test_a_rerun_keeps_a_metric_named_through_a_bridge(tmp_path):
    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 2}, None)
    opts = RunOptions(progress=False, batch_size=4)
    run_benchmark(str(root), ["piq:psnr"], tmp_path / "run", opts, log=lambda m: None)
    logs: list[str] = []
    result = run_benchmark(str(root), ["piq:gmsd"], tmp_path / "run", opts, log=logs.append)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["metrics"]["piq:psnr"]["status"] == "ok", logs


def test_scores_of_another_library_release_are_not_reused(tmp_path, monkeypatch):
    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 2}, None)
    opts = RunOptions(progress=False, batch_size=4)
    logs: list[str] = []
    run_benchmark(str(root), ["piq:gmsd"], tmp_path / "run", opts, log=logs.append)
    run_benchmark(str(root), ["piq:gmsd"], tmp_path / "run", opts, log=logs.append)
    assert "2afc: reusing finished scores of piq:gmsd" in logs  # the same release: reused
    logs.clear()
    monkeypatch.setattr(_base, "library_version", lambda library: "99.0")
    result = run_benchmark(str(root), ["piq:gmsd"], tmp_path / "run", opts, log=logs.append)
    assert not any("reusing" in line for line in logs), logs
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["metrics"]["piq:gmsd"]["library_version"] == "99.0"


def test_an_earlier_bridged_metric_stays_in_the_manifest_with_its_own_release(tmp_path):
    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 2}, None)
    opts = RunOptions(progress=False, batch_size=4)
    run_benchmark(str(root), ["piq:gmsd"], tmp_path / "run", opts, log=lambda m: None)
    result = run_benchmark(str(root), ["l2"], tmp_path / "run", opts, log=lambda m: None)
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    entry = manifest["metrics"]["piq:gmsd"]
    assert entry["status"] == "ok" and entry["library_version"] == importlib.metadata.version("piq")


@pytest.mark.slow
def test_the_classical_set_runs_on_synthetic_from_the_cli_and_fills_the_report(
    tmp_path, monkeypatch
):
    import csv

    from iqa_bench.cli import main

    monkeypatch.setenv("IQA_BENCH_DATA", str(tmp_path / "data"))
    names = ["fsimc", "ms-ssim", "gmsd", "vif-p", "piq:haarpsi", "torchmetrics:ssim"]
    argv = ["run", "--dataset", "synthetic", "--metrics", ",".join(names), "--quiet"]
    out = ["--out", str(tmp_path / "run"), "--reports-dir", str(tmp_path / "reports")]
    assert main([*argv, *out, "--workers", "1", "--n-boot", "100"]) == 0
    metrics = json.loads((tmp_path / "run" / "manifest.json").read_text())["metrics"]
    # The synthetic crops are 64x64: MS-SSIM's five scales need 161 px, so it is skipped with that.
    assert metrics["ms-ssim"]["status"] == "skipped"
    assert "at least 161x161" in metrics["ms-ssim"]["reason"]
    scored = [n for n in names if n != "ms-ssim"]
    assert all(metrics[n]["status"] == "ok" for n in scored)
    report_dir = next((tmp_path / "reports").rglob("report.md")).parent
    with open(report_dir / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for task in ("2afc", "jnd"):
        assert set(scored) <= {r["metric"] for r in rows if r["task"] == task}, task
    report = (report_dir / "report.md").read_text()
    assert all(f"| {n} " in report for n in scored)
    assert "ms-ssim" in report and "161x161" in report  # the skip and its reason are in the report
    assert any((report_dir / "figures").glob("*.png"))
