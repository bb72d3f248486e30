"""The ``iqa-bench`` command line."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from iqa_bench.cli import main


def test_list_shows_orientation_and_card_version(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lpips-alex" in out and "psnr" in out
    line = next(line for line in out.splitlines() if line.startswith("psnr "))
    assert "higher=better" in line and "v1" in line


def test_score_prints_the_distance_of_two_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    assert main(["score", "--metric", "l2", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 0
    value = float(capsys.readouterr().out)
    want = np.mean((a / 255.0 - b / 255.0) ** 2)
    assert value == pytest.approx(want, abs=1e-6)


def test_score_runs_float32_without_tf32_like_run(tmp_path, capsys, monkeypatch):
    import torch

    import iqa_bench.metrics as metrics

    real = metrics.create_metric
    seen: list[bool] = []

    def spying_metric(*args, **kwargs):
        metric = real(*args, **kwargs)
        forward = metric.forward

        def spy(x, y):
            seen.append(torch.backends.cudnn.allow_tf32)
            return forward(x, y)

        metric.forward = spy
        return metric

    monkeypatch.setattr(metrics, "create_metric", spying_metric)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["score", "--metric", "l2", str(tmp_path / "a.png"), str(tmp_path / "a.png")]) == 0
    assert seen == [False] and torch.backends.cudnn.allow_tf32


def test_score_with_unknown_metric_exits_with_a_clear_error(tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert (
        main(["score", "--metric", "ssim-papr", str(tmp_path / "a.png"), str(tmp_path / "a.png")])
        == 2
    )
    assert "Did you mean 'ssim-paper'" in capsys.readouterr().err


def _parse_error(argv: list[str], capsys) -> str:
    """The message argparse prints when ``argv`` is rejected at parse time (exit status 2)."""
    from iqa_bench.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    return " ".join(capsys.readouterr().err.split())


def test_run_with_negative_workers_stops_before_scoring(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "run",
        "--dataset",
        "synthetic",
        "--metrics",
        "l2",
        "--workers",
        "-1",
        "--out",
        str(out),
    ]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--no-report", "--quiet"])
    assert exc.value.code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "argument --workers: -1 is out of range: give a whole number >= 1" in err


RUN = ["run", "--dataset", "synthetic"]
TRAIN = ["train-lin", "--out", "w.pth"]


@pytest.mark.parametrize(
    ("argv", "option", "value", "accepted"),
    [
        (RUN, "--workers", "0", "1"),
        (RUN, "--resize", "0", "1"),
        (RUN, "--resize", "-64", "1"),
        (RUN, "--batch-size", "0", "1"),
        (RUN, "--chunk-size", "0", "1"),
        (RUN, "--max-batch-pixels", "-1", "1"),
        (["bench"], "--workers", "-1", "1"),
        (RUN, "--n-boot", "0", "100"),
        (RUN, "--n-perm", "99", "100"),
        (RUN, "--seed", "-1", "0"),
        (["report", "runs/x"], "--n-boot", "0", "100"),
        (["compare", "a", "b"], "--n-perm", "0", "100"),
        (["compare", "a", "b"], "--seed", "-1", "0"),
        (TRAIN, "--epochs", "-1", "0"),
        (TRAIN, "--epochs-decay", "-1", "0"),
        (TRAIN, "--batch-size", "0", "1"),
        (TRAIN, "--lr", "0", "1e-9"),
        (TRAIN, "--lr", "inf", "1e-9"),
        (TRAIN, "--beta1", "1", "0"),
        (TRAIN, "--dropout", "1", "0"),
        (TRAIN, "--feature-batch-size", "0", "1"),
        (TRAIN, "--workers", "-1", "1"),
        (TRAIN, "--resize", "0", "1"),
        (TRAIN, "--chn-mid", "0", "1"),
        (TRAIN, "--seed", str(2**32), str(2**32 - 1)),
        (["backbones", "alex"], "--size", "0", "1"),
        (["backbones", "alex"], "--depth", "0", "1"),
    ],
)
def test_numeric_option_out_of_range_is_a_parse_error_naming_it(
    argv, option, value, accepted, capsys
):
    from iqa_bench.cli import build_parser

    err = _parse_error([*argv, option, value], capsys)
    assert f"argument {option}: {value} is out of range: give a" in err
    args = build_parser().parse_args([*argv, option, accepted])  # the bound itself is fine
    assert getattr(args, option[2:].replace("-", "_")) == float(accepted)


def test_numeric_option_that_is_not_a_number_names_the_option(capsys):
    err = _parse_error([*RUN, "--batch-size", "lots"], capsys)
    assert "argument --batch-size: 'lots' is not a whole number >= 1" in err


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"workers": -1}, "workers: -1 is not allowed; give a whole number >= 1, or None"),
        ({"workers": 0}, "workers: 0 is not allowed"),
        ({"resize": 0}, "resize: 0 is not allowed; give a whole number >= 1, or None"),
        ({"batch_size": 0}, "batch_size: 0 is not allowed; give a whole number >= 1."),
        ({"chunk_size": 2.5}, "chunk_size: 2.5 is not allowed"),
        ({"max_batch_pixels": True}, "max_batch_pixels: True is not allowed"),
        ({"dtype": "fp64"}, "dtype: 'fp64' is not one of fp32, tf32, bf16, fp16"),
        ({"device": "gpu"}, "device: 'gpu' is not a torch device name; devices here: cpu"),
    ],
)
def test_run_options_reject_bad_values_when_built(kw, message, monkeypatch):
    import torch

    from iqa_bench.errors import InputError
    from iqa_bench.runner import RunOptions

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # "devices here: cpu" anywhere
    with pytest.raises(InputError, match=re.escape(message)):
        RunOptions(**kw)


DEVICE_COMMANDS = [
    RUN,
    ["bench"],
    ["score", "--metric", "l2", "a.png", "b.png"],
    TRAIN,
]


@pytest.mark.parametrize("argv", DEVICE_COMMANDS, ids=lambda a: a[0])
def test_unknown_device_is_a_parse_error_listing_the_devices(argv, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = _parse_error([*argv, "--device", "foo"], capsys)
    assert (
        "argument --device: 'foo' is not a torch device name; devices here: cpu; pass one of "
        "them, or no device to use cpu." in err
    )


@pytest.mark.parametrize("argv", DEVICE_COMMANDS, ids=lambda a: a[0])
def test_cuda_without_a_gpu_is_a_parse_error_not_a_torch_error(argv, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = _parse_error([*argv, "--device", "cuda"], capsys)
    assert "argument --device: 'cuda' is not available (torch finds no cuda device" in err
    assert "devices here: cpu" in err


def test_cuda_index_beyond_the_gpus_present_is_rejected(monkeypatch):
    import torch

    from iqa_bench.errors import InputError
    from iqa_bench.runner.run import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(InputError, match=r"'cuda:1' is not available \(torch finds 1 cuda dev"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("text", ["", " ", ",", " , ,"])
def test_metrics_naming_nothing_is_an_error_not_all(text, capsys):
    err = _parse_error([*RUN, "--metrics", text], capsys)
    assert f"argument --metrics: {text!r} names no metric" in " ".join(err.split())


def test_metrics_all_still_means_every_metric_and_cannot_mix_with_names(capsys):
    from iqa_bench.cli import _split_metrics, build_parser

    assert _split_metrics(build_parser().parse_args([*RUN, "--metrics", " all "]).metrics) == "all"
    assert _split_metrics(build_parser().parse_args(RUN).metrics) == "all"
    err = _parse_error([*RUN, "--metrics", "all,l2"], capsys)
    assert "'all' already means every metric" in err


def test_run_help_says_which_splits_each_dataset_accepts(capsys):
    from iqa_bench.datasets.mos import NO_SPLIT
    from iqa_bench.datasets.nights import SPLITS

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    split_help = text[text.index("--split SPLIT") :]
    nights = split_help[split_help.index("nights:") :].split(";")[0]
    mos = split_help[split_help.index("MOS sets") :].split(";")[0]
    assert all(name in nights for name in SPLITS), nights
    assert all(name in mos for name in NO_SPLIT), mos
    assert "bapps" in split_help and "train" in split_help


def test_train_lin_with_no_epochs_at_all_names_both_options(tmp_path, capsys):
    argv = [*TRAIN[:-1], str(tmp_path / "w.pth"), "--epochs", "0", "--epochs-decay", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--epochs 0 and --epochs-decay 0 train nothing" in err
    assert not (tmp_path / "w.pth").exists()
