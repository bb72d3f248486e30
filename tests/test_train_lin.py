"""``train-lin``: learning LPIPS linear weights on 2AFC judgments, and using them as a metric.

The headline test trains alex-lin from scratch (real alex trunk from ``IQA_BENCH_WEIGHTS``) on a
generated BAPPS-layout set whose judgments come from a hidden observer, the official LPIPS v0.1
alex metric, through five virtual raters; a held-out split must then score better than
``lpips-alex-baseline``. The other tests use small random trunks and need no weights.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from scipy import ndimage

from iqa_bench.cli import main
from iqa_bench.config import load_metric_card_file, unregister_metric_card
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.images import write_png
from iqa_bench.metrics import create_metric
from iqa_bench.reports import write_report
from iqa_bench.results import load_run
from iqa_bench.runner import RunOptions, run_benchmark
from iqa_bench.stats import twoafc_credit
from iqa_bench.training import TrainLinConfig, train_lin
from iqa_bench.weights import load_lin_weights, sha256_file
from tests.conftest import weights_file

ALEX_FILE = "alexnet-owt-7be5be79-features.pth"
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "grass", "brick")
KINDS = ("blur", "noise", "jpeg", "color", "contrast", "pixelate")


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)


def _distort(x: np.ndarray, kind: str, t: float, rng: np.random.Generator) -> np.ndarray:
    if kind == "blur":
        y = ndimage.gaussian_filter(x, (0.3 + 2.5 * t, 0.3 + 2.5 * t, 0))
    elif kind == "noise":
        y = x + rng.normal(0.0, 0.2 * t, x.shape)
    elif kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(_u8(x)).save(buffer, format="JPEG", quality=round(90 - 85 * t))
        y = np.asarray(Image.open(buffer).convert("RGB")) / 255.0
    elif kind == "color":
        direction = rng.normal(size=3)
        direction -= direction.mean()
        y = x + direction / np.linalg.norm(direction) * 0.25 * t
    elif kind == "contrast":
        y = (x - x.mean()) * (1 - 0.7 * t) + x.mean()
    else:
        side = x.shape[0]
        small = Image.fromarray(_u8(x)).resize((max(2, round(side / (1 + 6 * t))),) * 2)
        y = np.asarray(small.resize((side, side), Image.Resampling.NEAREST)) / 255.0
    return np.clip(y, 0.0, 1.0)


def write_observer_split(root, split: str, n: int, seed: int, observer, size: int = 64) -> None:
    """``n`` triplets of two different distortions of a photo crop; ``h`` = 5 virtual raters
    voting with P(p1 closer) = sigmoid((d0 - d1) / (0.05 std)) under the observer's distances."""
    rng = np.random.default_rng(seed)
    photos = []
    for name in SOURCES:
        img = np.asarray(getattr(skimage.data, name)(), dtype=np.float64) / 255.0
        photos.append(np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3])
    triplets = []
    for _ in range(n):
        photo = photos[rng.integers(len(photos))]
        y, x = (rng.integers(0, photo.shape[i] - size) for i in (0, 1))
        ref = photo[y : y + size, x : x + size]
        k0, k1 = rng.choice(KINDS, 2, replace=False)
        p0, p1 = (_distort(ref, k, rng.uniform(0.2, 1.0), rng) for k in (k0, k1))
        triplets.append((_u8(ref), _u8(p0), _u8(p1)))
    batch = [
        torch.from_numpy(np.stack(t)).permute(0, 3, 1, 2).float() / 255 for t in zip(*triplets)
    ]
    with torch.inference_mode():
        e_ref = observer.embed(batch[0])
        d0 = observer.compare(e_ref, observer.embed(batch[1])).numpy()
        d1 = observer.compare(e_ref, observer.embed(batch[2])).numpy()
    prob = 1 / (1 + np.exp(-(d0 - d1) / (0.05 * np.std(d0 - d1))))
    h = rng.binomial(5, prob) / 5
    folder = root / "2afc" / split / "mixed"
    for role in ("ref", "p0", "p1", "judge"):
        (folder / role).mkdir(parents=True, exist_ok=True)
    for i, (ref, p0, p1) in enumerate(triplets):
        stem = f"{i:06d}"
        for role, img in (("ref", ref), ("p0", p0), ("p1", p1)):
            write_png(folder / role / f"{stem}.png", img)
        np.save(folder / "judge" / f"{stem}.npy", np.array([h[i]], dtype=np.float64))


@pytest.fixture(scope="module")
def observer_data(tmp_path_factory):
    weights_file(ALEX_FILE)
    root = tmp_path_factory.mktemp("observer")
    observer = create_metric("lpips-alex")
    write_observer_split(root, "train", 1000, seed=1, observer=observer)
    write_observer_split(root, "val", 500, seed=101, observer=observer)
    return root


@pytest.fixture(scope="module")
def trained_alex(observer_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "alex-lin-test.pth"
    # 1,000 triplets give 20 steps an epoch (BAPPS train: ~3,000); hence lr 1e-3, not the paper's.
    config = TrainLinConfig(dataset=str(observer_data), split="train", val_split="val", lr=1e-3)
    return train_lin(config, out, progress=False)


@pytest.mark.slow  # 7-20 s on a 2-core CPU
def test_trained_alex_lin_beats_the_unweighted_baseline_on_a_held_out_split(
    trained_alex, observer_data, tmp_path
):
    card = load_metric_card_file(trained_alex.outputs.card)
    try:
        result = run_benchmark(
            str(observer_data),
            ["lpips-alex-baseline", card.name],
            tmp_path / "run",
            RunOptions(device="cpu", progress=False),
            split="val",
            log=lambda msg: None,
        )
        run = load_run(result.run_dir)
        score = {}
        for name in ("lpips-alex-baseline", card.name):
            data = run.twoafc(name)
            score[name] = float(twoafc_credit(data.d0, data.d1, data.h).mean())
        assert score[card.name] > score["lpips-alex-baseline"] + 0.005, score
        # The held-out score seen while training is the one the runner measures.
        last = trained_alex.manifest["history"][-1]["val_2afc"]
        assert last == pytest.approx(score[card.name], abs=2e-3)
        report = write_report(result.run_dir, tmp_path / "reports", n_boot=100, n_perm=100)
        text = (report / "report.md").read_text()
        assert card.name in text and "lpips-alex-baseline" in text
        assert trained_alex.manifest["weights_sha256"] in text  # provenance: lin weights hash
    finally:
        unregister_metric_card(card.name)


def test_trained_weights_are_non_negative_and_in_the_lpips_file_format(trained_alex):
    path = trained_alex.outputs.weights
    state = torch.load(path, weights_only=True)
    assert sorted(state) == [f"lin{k}.weight" for k in range(5)]
    weights = load_lin_weights(path, 5)
    assert [w.numel() for w in weights] == [64, 192, 384, 256, 256]
    assert all(bool((w >= 0).all()) for w in weights)
    assert all(bool((w > 0).any()) for w in weights)


def test_manifest_records_trunk_data_hyperparameters_and_history(trained_alex):
    manifest = json.loads(trained_alex.outputs.manifest.read_text())
    assert manifest["kind"] == "iqa-bench train-lin"
    assert manifest["trunk"]["backbone"] == "alex"
    assert manifest["trunk"]["weights_sha256"] == sha256_file(weights_file(ALEX_FILE))
    assert manifest["weights_sha256"] == sha256_file(trained_alex.outputs.weights)
    assert manifest["dataset"]["split"] == "train" and manifest["dataset"]["n"] == 1000
    assert manifest["val"]["n"] == 500 and 0.5 < manifest["val"]["baseline_2afc"] < 1
    hyper = manifest["hyperparameters"]
    assert (hyper["lr"], hyper["beta1"], hyper["batch_size"]) == (1e-3, 0.5, 50)
    assert [round(r["lr"] / 1e-3, 6) for r in manifest["history"]] == [1] * 6 + [0.8, 0.6, 0.4, 0.2]
    assert "git_commit" in manifest["package"]
    assert manifest["deviations"]  # no dropout with cached features, said so
    assert len(list(trained_alex.outputs.checkpoints.glob("epoch-*.pt"))) == 10


def test_features_are_cached_and_reused_across_runs(trained_alex, observer_data, tmp_path):
    config = TrainLinConfig(dataset=str(observer_data), split="train", n_epochs=1, n_epochs_decay=0)
    result = train_lin(config, tmp_path / "again.pth", progress=False)
    assert result.manifest["features"]["cached"] is True
    assert result.manifest["features"]["key"] == trained_alex.manifest["features"]["key"]


def _tiny(tmp_path):
    root = make_bapps_layout(tmp_path / "tiny", {"cnn": 24, "traditional": 16}, None, "train")
    make_bapps_layout(root, {"cnn": 12}, None, "val", seed=3)
    return root


def _tiny_config(root, **kw):
    base = dict(
        backbone="squeezenet1_1", pretrained=False, dataset=str(root), split="train",
        batch_size=8, n_epochs=2, n_epochs_decay=1, lr=1e-3,
    )  # fmt: skip
    return TrainLinConfig(**(base | kw))


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    root = _tiny(tmp_path)
    torch.manual_seed(0)  # the random trunk must be the same in every run
    full = train_lin(_tiny_config(root), tmp_path / "full.pth", progress=False)
    torch.manual_seed(0)
    part = train_lin(_tiny_config(root), tmp_path / "part.pth", progress=False)
    for epoch in (2, 3):  # as if it had stopped after epoch 1
        part.outputs.checkpoint(epoch).unlink()
    torch.manual_seed(0)
    resumed = train_lin(_tiny_config(root), tmp_path / "part.pth", resume=True, progress=False)
    assert [r["epoch"] for r in resumed.manifest["history"]] == [1, 2, 3]
    for a, b in zip(full.lin_weights, resumed.lin_weights):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="other settings"):
        train_lin(_tiny_config(root, lr=5e-4), tmp_path / "part.pth", resume=True, progress=False)


def test_training_without_cache_applies_reference_dropout(tmp_path):
    root = _tiny(tmp_path)
    config = _tiny_config(root, features="none", dropout=0.5, n_epochs=1, n_epochs_decay=0)
    result = train_lin(config, tmp_path / "drop.pth", progress=False)
    assert result.manifest["features"]["mode"] == "none" and not result.manifest["deviations"]
    assert all(bool((w >= 0).all()) for w in result.lin_weights)


@pytest.mark.parametrize("features", ["memory", "none"])
def test_training_on_named_bapps_decodes_at_the_reference_load_size(
    tmp_path, monkeypatch, features
):
    """Cached features and per-epoch trunk passes both see the images the scorer sees."""
    import iqa_bench.training.features as features_module
    import iqa_bench.training.loop as loop

    make_bapps_layout(tmp_path / "data" / "bapps", {"cnn": 8}, None, "train", size=256)
    shapes: set[tuple[int, ...]] = set()
    for module in (features_module, loop):
        real = module.decoded_batches

        def spy(*args, _real=real, **kwargs):
            for batch in _real(*args, **kwargs):
                shapes.update(a.shape[1:] for a in batch.images.values())
                yield batch

        monkeypatch.setattr(module, "decoded_batches", spy)
    config = _tiny_config(
        "bapps", data_root=str(tmp_path / "data"), features=features, n_epochs=1, n_epochs_decay=0
    )
    train_lin(config, tmp_path / "named.pth", progress=False)
    assert shapes == {(64, 64, 3)}


def test_training_features_use_ieee_float32_not_tf32(tmp_path, monkeypatch):
    """On CUDA PyTorch would run the trunk's float32 convolutions in TF32; train-lin, like
    `run --dtype fp32`, switches that off while it runs and restores it after."""
    import iqa_bench.training.loop as loop

    root = _tiny(tmp_path)
    real = loop.triplet_features
    seen: list[tuple[bool, bool]] = []

    def spy(*args, **kwargs):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "triplet_features", spy)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    config = _tiny_config(root, n_epochs=1, n_epochs_decay=0)
    train_lin(config, tmp_path / "ieee.pth", progress=False)
    assert seen and all(flags == (False, False) for flags in seen)
    assert torch.backends.cudnn.allow_tf32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dropout": 0.5}, "--features none"),
        ({"lr": 0.0}, "lr: must be positive"),
        ({"n_epochs": 0, "n_epochs_decay": 0}, "must be >= 1"),
        ({"features": "ram"}, "features: 'ram'"),
    ],
)
def test_bad_settings_are_refused_naming_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainLinConfig(**kwargs)


def test_output_names_are_checked(tmp_path):
    root = _tiny(tmp_path)
    with pytest.raises(ValueError, match=r"must end in \.pth"):
        train_lin(_tiny_config(root), tmp_path / "weights.json", progress=False)
    with pytest.raises(ValueError, match="exists already"):
        train_lin(_tiny_config(root), tmp_path / "lpips-alex.pth", progress=False)
    with pytest.raises(FileNotFoundError, match="2afc/test"):
        train_lin(_tiny_config(root, split="test"), tmp_path / "x.pth", progress=False)


def test_cli_trains_a_torchvision_backbone_and_runs_it_with_its_card(tmp_path, capsys):
    root = _tiny(tmp_path)
    out = tmp_path / "resnet18-lin.pth"
    code = main(
        ["train-lin", "--backbone", "torchvision:resnet18", "--taps", "layer1,layer2,layer3",
         "--no-pretrained", "--dataset", str(root), "--val-split", "val", "--out", str(out),
         "--epochs", "1", "--epochs-decay", "1", "--batch-size", "10", "--quiet"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "held-out 2AFC" in printed and "--metric-card" in printed
    card = out.with_suffix(".yaml")
    try:
        code = main(
            ["run", "--dataset", str(root), "--metrics", "l2", "--metric-card", str(card),
             "--out", str(tmp_path / "run"), "--no-report", "--quiet", "--device", "cpu"]
        )  # fmt: skip
        assert code == 0
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        entry = manifest["metrics"]["resnet18-lin"]
        assert entry["status"] == "ok" and entry["group"] == "custom"
        assert entry["params"]["lin_weights"] == str(out.resolve())
        assert set(entry["weight_hashes"]) == {"lin"}  # a random trunk has no weights file
    finally:
        unregister_metric_card("resnet18-lin")
