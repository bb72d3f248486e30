"""``train-lin --mode lin|tune|scratch`` end to end: one epoch each on a tiny BAPPS-layout split,
then the written card scores a held-out split through ``iqa-bench run``.

The alex trunk's ImageNet weights come from ``IQA_BENCH_WEIGHTS`` (``tune`` and ``lin`` start
from them); one-step agreement with the reference trainer is in ``test_train_modes_parity.py``.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from iqa_bench.cli import main
from iqa_bench.config import MetricCard, unregister_metric_card
from iqa_bench.metrics.factory import build_metric
from iqa_bench.results import load_run
from iqa_bench.stats import twoafc_credit
from iqa_bench.training import TrainLinConfig, feature_metric, train_lin
from iqa_bench.training.tune import TrunkOptions, TrunkTrainer
from iqa_bench.weights import lpips_lin_path, sha256_file

SEED = 3


@pytest.fixture
def tiny_split(bapps_layout):
    """16 training triplets (two subsets) and a held-out split of 12, 64 x 64."""
    root = bapps_layout({"cnn": 8, "traditional": 8}, None, name="tiny", split="train")
    bapps_layout({"cnn": 12}, None, name="tiny", split="val", seed=5)
    return root


def _start_trunk(mode: str, alex_weights) -> dict[str, torch.Tensor]:
    """The trunk each mode starts from: ImageNet weights, or the random trunk of the seed."""
    if mode != "scratch":
        return torch.load(alex_weights, map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        metric = feature_metric("alex", None, "0.1", pretrained=False)
    return metric.trunk.trunk_state_dict()


def _train(mode: str, root, tmp_path) -> tuple:
    out = tmp_path / f"alex-{mode}-test.pth"
    args = ["train-lin", "--mode", mode, "--dataset", str(root), "--val-split", "val",
            "--out", str(out), "--epochs", "1", "--epochs-decay", "0", "--batch-size", "8",
            "--lr", "1e-3", "--seed", str(SEED), "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--device", "cpu"]  # fmt: skip
    if mode == "scratch":
        args.append("--no-pretrained")
    assert main(args) == 0
    return out, json.loads(out.with_suffix(".json").read_text())


def _run_card(card, root, run_dir):
    assert main(
        ["run", "--dataset", str(root), "--split", "val", "--metrics", "l2",
         "--metric-card", str(card), "--out", str(run_dir), "--no-report", "--quiet",
         "--device", "cpu"]
    ) == 0  # fmt: skip
    return json.loads((run_dir / "manifest.json").read_text()), load_run(run_dir)


@pytest.mark.slow  # 3-13 s per mode on a 2-core CPU (quiet vs shared)
@pytest.mark.parametrize("mode", ["lin", "tune", "scratch"])
def test_one_epoch_of_each_mode_gives_a_card_that_run_scores(
    mode, tiny_split, tmp_path, alex_weights
):
    out, manifest = _train(mode, tiny_split, tmp_path)
    state = torch.load(out, map_location="cpu", weights_only=True)
    trunk = {k.removeprefix("trunk."): v for k, v in state.items() if k.startswith("trunk.")}
    start = _start_trunk(mode, alex_weights)
    assert manifest["mode"] == mode and f"mode {mode}" in out.with_suffix(".yaml").read_text()
    if mode == "lin":
        assert not trunk and manifest["features"]["mode"] == "disk"
    else:
        assert manifest["features"] == manifest["features"] | {"mode": "none", "key": None}
        assert "no feature cache" in manifest["features"]["note"]
        assert sorted(trunk) == sorted(start)
        moved = {k: float((trunk[k] - start[k]).abs().max()) for k in start}
        assert all(m > 0 for m in moved.values()), moved  # every layer trained by default
    name = out.stem
    try:
        run_manifest, run = _run_card(out.with_suffix(".yaml"), tiny_split, tmp_path / "run")
        entry = run_manifest["metrics"][name]
        assert entry["status"] == "ok", entry
        expected = sha256_file(alex_weights) if mode == "lin" else sha256_file(out)
        assert entry["weight_hashes"]["trunk"] == expected
        data = run.twoafc(name)
        held_out = float(twoafc_credit(data.d0, data.d1, data.h).mean())
        # The score seen after the epoch is the one the runner measures with the card (the
        # history averages float32 credits: 2.2e-9 off here, 12 samples).
        assert held_out == pytest.approx(manifest["history"][-1]["val_2afc"], abs=1e-7)
    finally:
        unregister_metric_card(name)


def _trained_file(tmp_path, backbone: str = "alex"):
    """A weights file holding lin and trunk, as --mode scratch writes it (no training)."""
    metric = feature_metric(backbone, None, "0.1", pretrained=False)
    path = tmp_path / f"{backbone}-scratch.pth"
    torch.save(TrunkTrainer(metric, TrunkOptions()).file_state(), path)
    return path


def _card(params: dict) -> MetricCard:
    return MetricCard(
        name="trained", version=1, type="lpips", group="custom", description="", params=params
    )


def test_trained_trunk_is_loaded_and_hashed_from_trunk_weights(tmp_path):
    path = _trained_file(tmp_path)
    state = torch.load(path, weights_only=True)
    params = {"lin_weights": str(path), "trunk_weights": str(path), "pretrained": False}
    metric = build_metric(_card(params), "cpu")
    loaded = metric.trunk.trunk_state_dict()
    assert all(torch.equal(loaded[k], state[f"trunk.{k}"]) for k in loaded)
    assert metric.weight_hashes["trunk"] == sha256_file(path)
    assert sha256_file(path) in str(metric.features_key)  # never shared with another trunk


def test_a_trained_trunk_is_not_silently_dropped_or_put_on_another_backbone(tmp_path):
    path = _trained_file(tmp_path)
    with pytest.raises(ValueError, match=r"also holds the trunk.*set trunk_weights"):
        build_metric(_card({"lin_weights": str(path), "pretrained": False}), "cpu")
    other = _trained_file(tmp_path, "squeezenet1_1")
    params = {"backbone": "alex", "lin_weights": str(path), "trunk_weights": str(other)}
    with pytest.raises(
        ValueError, match=r"trunk_weights: .*squeezenet1_1-scratch\.pth does not fit"
    ):
        build_metric(_card(params), "cpu")
    with pytest.raises(FileNotFoundError, match="trunk_weights: .*missing.pth does not exist"):
        build_metric(_card(params | {"trunk_weights": str(tmp_path / "missing.pth")}), "cpu")


def test_linear_weights_in_the_reference_legacy_file_format_still_load():
    path = lpips_lin_path("alex", "0.1")  # torch's pre-zip format, which cannot be memory-mapped
    metric = build_metric(_card({"lin_weights": str(path), "pretrained": False}), "cpu")
    assert metric.weight_hashes["lin"] == sha256_file(path) and "trunk" not in metric.weight_hashes


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "scratch", "pretrained": True}, "mode 'scratch' starts from a random trunk"),
        ({"mode": "tune", "pretrained": False}, "use mode 'scratch'"),
        ({"mode": "tune", "features": "disk"}, "features: 'disk' caches trunk features"),
        ({"trunk_lr": 1e-5}, "need mode 'tune' or 'scratch'"),
        ({"mode": "fine"}, "mode: 'fine' is not one of lin, tune, scratch"),
    ],
)
def test_settings_that_contradict_the_mode_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainLinConfig(**kwargs)


def test_each_mode_resolves_the_reference_defaults():
    lin, tune, scratch = (TrainLinConfig(mode=m, lr=2e-4) for m in ("lin", "tune", "scratch"))
    assert (lin.pretrained, lin.features, lin.dropout, lin.trunk_lr) == (True, "disk", 0.0, None)
    assert (tune.pretrained, tune.features, tune.dropout) == (True, "none", 0.5)
    assert (tune.trunk_lr, tune.trunk_train) == (2e-4, ("*",))
    assert (scratch.pretrained, scratch.features, scratch.dropout) == (False, "none", 0.5)


@pytest.mark.slow  # 30-100 s on a 2-core CPU: three short trainings
def test_resumed_scratch_training_ends_with_the_same_trunk_and_weights(tiny_split, tmp_path):
    config = TrainLinConfig(
        mode="scratch", backbone="squeezenet1_1", dataset=str(tiny_split), split="train",
        batch_size=8, n_epochs=1, n_epochs_decay=1, lr=1e-3, seed=SEED, device="cpu",
    )  # fmt: skip
    full = train_lin(config, tmp_path / "full.pth", progress=False)
    part = train_lin(config, tmp_path / "part.pth", progress=False)
    part.outputs.checkpoint(2).unlink()  # as if it had stopped after epoch 1
    resumed = train_lin(config, tmp_path / "part.pth", resume=True, progress=False)
    assert [r["epoch"] for r in resumed.manifest["history"]] == [1, 2]
    a = torch.load(full.outputs.weights, weights_only=True)
    b = torch.load(resumed.outputs.weights, weights_only=True)
    assert sorted(a) == sorted(b) and any(k.startswith("trunk.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # squeezenet's Fire modules have 1x1 convolutions, which the reference would clamp.
    assert any("1x1" in d for d in full.manifest["deviations"])


# The settings a lin checkpoint's fingerprint covered before the training modes existed (release
# of 2026-12-03), and that fingerprint's recipe: frozen here so those checkpoints keep resuming.
LEGACY_LIN_SETTINGS = {
    "backbone": "alex", "taps": None, "version": "0.1", "pretrained": True, "dataset": "bapps",
    "split": "train", "val_split": None, "lr": 0.0001, "beta1": 0.5, "batch_size": 50,
    "n_epochs": 5, "n_epochs_decay": 5, "chn_mid": 32, "init": "random", "dropout": 0.0,
    "features": "disk", "seed": 0, "resize": None,
}  # fmt: skip


def test_a_lin_checkpoint_from_before_the_modes_still_resumes():
    from iqa_bench.training.loop import _fingerprint

    ids = ["cnn/000000", "cnn/000001"]
    blob = {
        "hyperparameters": LEGACY_LIN_SETTINGS,
        "trunk": "abc",
        "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
    }
    legacy = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:24]
    assert _fingerprint(TrainLinConfig(), "abc", ids) == legacy
    # The trunk-training settings do count once the trunk trains.
    assert _fingerprint(TrainLinConfig(mode="tune"), "abc", ids) != _fingerprint(
        TrainLinConfig(mode="tune", trunk_lr=1e-5), "abc", ids
    )
