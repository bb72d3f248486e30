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
    assert "argument --workers: '-1' is not a whole number >= 1" in err


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
    assert f"argument {option}: {value!r} is not a" in err
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


@pytest.fixture
def broken_list(monkeypatch):
    """Make ``iqa-bench list`` raise the exception given to the returned function."""
    import iqa_bench.cli as cli

    def breaks_with(exc: BaseException) -> None:
        def command(args):
            raise exc

        monkeypatch.setattr(cli, "_cmd_list", command)

    return breaks_with


@pytest.mark.parametrize(
    "bug",
    [
        ValueError("operands could not be broadcast together with shapes (3,) (4,)"),
        IndexError("index 3 is out of bounds for axis 0 with size 3"),
        FileNotFoundError("[Errno 2] No such file or directory: '/tmp/x.npz'"),
        OSError("[Errno 28] No space left on device"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_internal_bug_propagates_from_main_instead_of_exit_2(bug, broken_list, capsys):
    broken_list(bug)
    with pytest.raises(type(bug)) as raised:
        main(["list"])
    assert raised.value is bug
    assert "iqa-bench: error" not in capsys.readouterr().err


def test_an_internal_bug_prints_its_traceback_and_exits_1(tmp_path):
    import subprocess
    import sys

    plugin = tmp_path / "bug.py"
    plugin.write_text(
        "import iqa_bench.catalog\n"
        "def list_metrics():\n"
        "    raise IndexError('index 3 is out of bounds for axis 0 with size 3')\n"
        "iqa_bench.catalog.list_metrics = list_metrics\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "iqa_bench.cli", "--plugin", str(plugin), "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "IndexError: index 3 is out of bounds" in done.stderr
    assert "iqa-bench: error" not in done.stderr


def _user_errors():
    from iqa_bench.archives import ArchiveError
    from iqa_bench.errors import (
        DataNotFoundError,
        DownloadError,
        InputError,
        RunDirBusyError,
        WeightsUnavailableError,
    )

    return [
        InputError("--batch-size: 0 is not allowed; give 1 or more."),
        DataNotFoundError("no BAPPS data in /data/bapps: run `iqa-bench download bapps`."),
        DownloadError("download of https://x/y.tar.gz failed; place it at /d/y.tar.gz."),
        RunDirBusyError("runs/x is being written by process 123; wait or choose --out."),
        WeightsUnavailableError("trunk weights alexnet.pth unavailable; set IQA_BENCH_WEIGHTS."),
        ArchiveError("archive /d/y.tar.gz is damaged; delete it and download again."),
    ]


@pytest.mark.parametrize("error", _user_errors(), ids=lambda e: type(e).__name__)
def test_each_user_facing_error_exits_2_with_its_message_only(error, broken_list, capsys):
    broken_list(error)
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err == f"iqa-bench: error: {error}\n"


def test_a_plain_error_a_results_module_raises_for_a_user_mistake_exits_2(tmp_path, capsys):
    # iqa_bench.results still raises FileNotFoundError for a folder without manifest.json.
    assert main(["report", str(tmp_path)]) == 2
    assert "manifest.json is missing" in capsys.readouterr().err


def test_an_error_raised_inside_the_package_names_what_to_fix_and_exits_2(tmp_path, capsys):
    assert main(["run", "--dataset", str(tmp_path / "nowhere" / "study.csv")]) == 2
    assert "does not exist; check the path" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["download", "bapps"], RUN, ["bench"]], ids=lambda a: a[0])
@pytest.mark.parametrize(("value", "accepted"), [("0", "0.5"), ("-1", "1"), ("nan", "300")])
def test_stall_timeout_uses_the_shared_positive_number_check(argv, value, accepted, capsys):
    from iqa_bench.cli import build_parser

    err = _parse_error([*argv, "--stall-timeout", value], capsys)
    assert f"argument --stall-timeout: {value!r} is not a positive number of seconds; give" in err
    args = build_parser().parse_args([*argv, "--stall-timeout", accepted])
    assert args.stall_timeout == float(accepted)


@pytest.fixture
def study_card(tmp_path):
    """A dataset card file for a 5-triplet BAPPS-layout study under ``tmp_path/data``."""
    from iqa_bench.config import unregister_dataset_card
    from iqa_bench.datasets.bapps_layout import make_bapps_layout

    make_bapps_layout(tmp_path / "data" / "lab-study", {"faces": 5}, None, size=16)
    card = tmp_path / "lab-study.yaml"
    card.write_text(
        "name: lab-study\nversion: 3\nadapter: bapps\n"
        "description: our lab's 2AFC study\nparams: {load_size: null}\n"
    )
    yield card
    unregister_dataset_card("lab-study")


def test_run_with_a_dataset_card_scores_its_dataset(study_card, tmp_path, capsys):
    import json

    out = tmp_path / "run"
    argv = ["run", "--dataset-card", str(study_card), "--data-root", str(tmp_path / "data")]
    assert main([*argv, "--metrics", "l2", "--out", str(out), "--no-report", "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["name"] == "lab-study"
    assert manifest["dataset"]["card_version"] == 3
    assert manifest["tasks"]["2afc"]["n"] == 5


def test_dataset_card_and_another_dataset_is_an_error_naming_both(study_card, capsys):
    assert main(["run", "--dataset", "bapps", "--dataset-card", str(study_card)]) == 2
    err = capsys.readouterr().err
    assert "--dataset bapps and --dataset-card" in err and "'lab-study'" in err


def test_run_without_any_dataset_says_how_to_give_one(capsys):
    assert main(["run", "--metrics", "l2"]) == 2
    assert "--dataset: none given" in capsys.readouterr().err
