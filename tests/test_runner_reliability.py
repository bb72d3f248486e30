"""Runner results a user can trust: changed data recomputes, failures are retried, concurrent
runs into one folder are refused, torn files are recomputed, too-small images are recorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import iqa_bench.runner.batches as batches_module
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.errors import InputError, RunDirBusyError
from iqa_bench.images import read_image_uint8
from iqa_bench.results import load_run
from iqa_bench.runner import RunOptions, run_benchmark, store

FIELDS = {"2afc": ("d0", "d1"), "jnd": ("d",)}


def _opts(**kw) -> RunOptions:
    return RunOptions(progress=False, batch_size=4, chunk_size=6, **kw)


def _run(root, metrics, out, messages=None, **kw):
    log = messages.append if messages is not None else (lambda m: None)
    return run_benchmark(str(root), metrics, out, _opts(**kw), log=log)


def _scores(run_dir, metric, task="2afc") -> dict[str, np.ndarray]:
    with np.load(store.final_path(run_dir, metric, task)) as data:
        return {f: data[f] for f in FIELDS[task]}


def _assert_same_scores(a, b, metric, tasks=("2afc", "jnd")) -> None:
    for task in tasks:
        for field, values in _scores(a, metric, task).items():
            assert np.array_equal(values, _scores(b, metric, task)[field], equal_nan=True)


# 1. Stale scores after the data changes


def test_rerun_after_editing_an_image_recomputes_and_equals_a_fresh_run(bapps_root, tmp_path):
    """The hardest edit to notice: same pixel size, same file length, mtime set back."""
    path = bapps_root / "2afc" / "val" / "cnn" / "p0" / "000001.png"
    pixels = read_image_uint8(path)
    # Uncompressed PNGs of one image size have one length, so the edit keeps the file size.
    Image.fromarray(pixels).save(path, compress_level=0)
    _run(bapps_root, ["l2"], tmp_path / "run")
    before = _scores(tmp_path / "run", "l2")["d0"].copy()
    st = path.stat()
    Image.fromarray(255 - pixels).save(path, compress_level=0)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    messages: list[str] = []
    _run(bapps_root, ["l2"], tmp_path / "run", messages)
    fresh = _run(bapps_root, ["l2"], tmp_path / "fresh", decode_cache=False)
    _assert_same_scores(tmp_path / "run", fresh.run_dir, "l2")
    after = _scores(tmp_path / "run", "l2")["d0"]
    assert after[1] != before[1]
    assert np.array_equal(np.delete(after, 1), np.delete(before, 1))
    assert any("reusing finished scores of l2" in m for m in messages)  # JND is untouched


def test_an_edit_rescores_only_the_chunk_holding_the_image(bapps_root, tmp_path, monkeypatch):
    _run(bapps_root, ["l2"], tmp_path / "run", decode_cache=False)
    path = bapps_root / "2afc" / "val" / "cnn" / "p1" / "000008.png"
    Image.fromarray(255 - read_image_uint8(path)).save(path)
    reads: list[str] = []
    real = batches_module.read_image_uint8
    monkeypatch.setattr(
        batches_module, "read_image_uint8", lambda p, *a: reads.append(str(p)) or real(p, *a)
    )
    _run(bapps_root, ["l2"], tmp_path / "run", decode_cache=False)
    assert len(reads) == 3 * 4  # 10 triplets in chunks of 6: only the second chunk (4) again
    monkeypatch.undo()
    fresh = _run(bapps_root, ["l2"], tmp_path / "fresh", decode_cache=False)
    _assert_same_scores(tmp_path / "run", fresh.run_dir, "l2")


def test_another_folder_with_the_same_sample_ids_is_recomputed(tmp_path):
    first = make_bapps_layout(tmp_path / "a" / "bapps", {"cnn": 10}, {"cnn": 5}, seed=2)
    other = make_bapps_layout(tmp_path / "b" / "bapps", {"cnn": 10}, {"cnn": 5}, seed=7)
    _run(first, ["l2"], tmp_path / "run")
    messages: list[str] = []
    result = _run(other, ["l2"], tmp_path / "run", messages)
    assert not any("reusing" in m for m in messages)
    fresh = _run(other, ["l2"], tmp_path / "fresh")
    _assert_same_scores(result.run_dir, fresh.run_dir, "l2")
    judged = load_run(result.run_dir).judgments("2afc")
    with np.load(fresh.run_dir / "judgments" / "2afc.npz") as want:
        assert np.array_equal(judged[2], want["h"])  # judgments come from the new folder


def test_a_change_of_the_decoding_rules_recomputes_scores_and_decoded_images(
    bapps_root, tmp_path, monkeypatch
):
    """Files decode to other pixels when images.DECODING_VERSION is bumped (e.g. 16-bit PNGs)."""
    import iqa_bench.images as images_module

    _run(bapps_root, ["l2"], tmp_path / "run")
    reads: list[str] = []
    real = batches_module.read_image_uint8
    monkeypatch.setattr(
        batches_module, "read_image_uint8", lambda p, *a: reads.append(str(p)) or real(p, *a)
    )
    monkeypatch.setattr(images_module, "DECODING_VERSION", images_module.DECODING_VERSION + 1)
    messages: list[str] = []
    _run(bapps_root, ["l2"], tmp_path / "run", messages)
    assert not any("reusing" in m for m in messages)
    assert len(reads) == 3 * 10 + 2 * 5  # decoded again, not read from the decoded-image cache


# 2. Failures are retried, never replayed


def test_a_failed_sample_is_retried_on_the_next_run_and_the_finished_file_updated(
    bapps_root, tmp_path, monkeypatch
):
    flaky = str(bapps_root / "2afc" / "val" / "cnn" / "p1" / "000002.png")
    real = batches_module.read_image_uint8

    def failing_once(path, *args):
        if str(path) == flaky:
            raise ValueError(f"{path}: simulated read error (e.g. a network file system)")
        return real(path, *args)

    monkeypatch.setattr(batches_module, "read_image_uint8", failing_once)
    first = _run(bapps_root, ["l2"], tmp_path / "run", skip_bad=True)
    assert [f["sample_id"] for f in first.manifest["failed_samples"]] == ["val/cnn/000002"]
    assert np.isnan(_scores(first.run_dir, "l2")["d1"][2])
    reads: list[str] = []
    monkeypatch.setattr(
        batches_module, "read_image_uint8", lambda p, *a: reads.append(str(p)) or real(p, *a)
    )
    second = _run(bapps_root, ["l2"], tmp_path / "run", skip_bad=True)
    assert second.manifest["failed_samples"] == []
    assert len(reads) == 3 * 6  # only the chunk holding the failed sample is scored again
    fresh = _run(bapps_root, ["l2"], tmp_path / "fresh")
    _assert_same_scores(second.run_dir, fresh.run_dir, "l2")


def test_the_decode_cache_does_not_replay_a_skip_bad_failure(bapps_root, tmp_path):
    bad = bapps_root / "2afc" / "val" / "cnn" / "p1" / "000002.png"
    bad.write_bytes(b"not a png")
    recorded = _run(bapps_root, ["l2"], tmp_path / "a", skip_bad=True)
    assert [f["sample_id"] for f in recorded.manifest["failed_samples"]] == ["val/cnn/000002"]
    with pytest.raises(ValueError, match="000002.png"):
        _run(bapps_root, ["l2"], tmp_path / "b")
    again = _run(bapps_root, ["l2"], tmp_path / "c", skip_bad=True)
    assert [f["sample_id"] for f in again.manifest["failed_samples"]] == ["val/cnn/000002"]


# 3. Concurrent runs into one --out, and metrics of earlier runs


def test_temporary_files_of_two_writers_of_one_file_do_not_collide(tmp_path, monkeypatch):
    """A second writer finishing while the first is still writing (the reported crash: "No such
    file ... .tmp.npz")."""
    target = tmp_path / "scores" / "x.npz"
    real = np.savez
    nested = {"done": False}

    def interleaved(file, *args, **kwargs):
        real(file, *args, **kwargs)
        if not nested["done"]:
            nested["done"] = True
            store._save_npz(target, fingerprint=np.array("second"))
        return None

    monkeypatch.setattr(np, "savez", interleaved)
    store._save_npz(target, fingerprint=np.array("first"))
    with np.load(target) as data:
        assert str(data["fingerprint"]) == "first"  # the later rename wins; no crash
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.npz"]


def test_a_run_into_a_folder_another_process_is_writing_names_it(bapps_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from iqa_bench.runner.store import RunDirLock
                with RunDirLock(Path({str(out)!r}), "2026-12-03T10:00:00+00:00"):
                    print("locked", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirBusyError) as err:
            _run(bapps_root, ["l2"], out)
        message = str(err.value)
        assert f"process {holder.pid} on " in message and "2026-12-03T10:00:00" in message
        assert str(out) in message and "another --out" in message
        assert not (out / "manifest.json").exists()
    finally:
        holder.communicate("\n", timeout=30)
    _run(bapps_root, ["l2"], out)  # the holder exited: the lock is free again
    assert (out / "manifest.json").is_file()


def test_a_held_lock_stops_a_run_and_a_finished_run_releases_it(bapps_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    busy = pytest.raises(RunDirBusyError, match=f"process {os.getpid()} on ")
    with store.RunDirLock(out, "2026-12-03T10:00:00+00:00"), busy:
        _run(bapps_root, ["l2"], out)
    _run(bapps_root, ["l2"], out)
    with store.RunDirLock(out, "later"):  # not left held by the finished run
        pass


@pytest.mark.parametrize(("first", "second"), [("l2", "psnr"), ("psnr", "l2")])
def test_metrics_of_earlier_runs_into_the_same_out_stay_in_the_manifest(
    bapps_root, tmp_path, first, second
):
    out = tmp_path / "run"
    _run(bapps_root, [first], out)
    messages: list[str] = []
    result = _run(bapps_root, [second], out, messages)
    assert {first, second} <= set(result.manifest["metrics"])
    run = load_run(out)
    assert set(run.metric_names()) == {first, second}
    assert np.isfinite(run.twoafc(first).d0).all()
    assert any(f"kept the finished results of earlier runs for {first}" in m for m in messages)
    # Once the data changes, the earlier metric's files no longer describe it: dropped.
    path = bapps_root / "jnd" / "val" / "cnn" / "p1" / "000000.png"
    Image.fromarray(255 - read_image_uint8(path)).save(path)
    messages.clear()
    result = _run(bapps_root, [second], out, messages)
    assert first not in result.manifest["metrics"]
    assert set(load_run(out).metric_names()) == {second}
    assert any(m.startswith(f"dropped {first} of earlier runs") for m in messages)


# 4. Resume robustness


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.5, 0.0])  # BadZipFile, EOFError from numpy
def test_a_truncated_finished_scores_file_is_recomputed(bapps_root, tmp_path, keep):
    run = _run(bapps_root, ["l2"], tmp_path / "run")
    _truncate(store.final_path(run.run_dir, "l2", "2afc"), keep)
    _run(bapps_root, ["l2"], tmp_path / "run")
    fresh = _run(bapps_root, ["l2"], tmp_path / "fresh")
    _assert_same_scores(run.run_dir, fresh.run_dir, "l2")


def test_a_truncated_chunk_of_a_killed_run_is_recomputed(bapps_root, tmp_path, monkeypatch):
    import iqa_bench.runner.task_run as task_run

    real = task_run._score_with_backoff
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # batches of 4 and 2 = the first chunk of 6, then "killed"
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(task_run, "_score_with_backoff", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(bapps_root, ["l2"], tmp_path / "run")
    chunk = store.chunk_path(tmp_path / "run", "l2", "2afc", 0)
    assert chunk.is_file()
    _truncate(chunk)
    monkeypatch.undo()
    _run(bapps_root, ["l2"], tmp_path / "run")
    fresh = _run(bapps_root, ["l2"], tmp_path / "fresh")
    _assert_same_scores(tmp_path / "run", fresh.run_dir, "l2")


@pytest.mark.parametrize("content", [b'{"schema": 1, "metr', b"\xff\xfe not text", b"[1, 2]"])
def test_a_corrupt_manifest_on_resume_names_the_file_and_the_fix(bapps_root, tmp_path, content):
    out = tmp_path / "run"
    _run(bapps_root, ["l2"], out)
    (out / "manifest.json").write_bytes(content)
    with pytest.raises(InputError) as err:
        _run(bapps_root, ["l2"], out)
    assert str(out / "manifest.json") in str(err.value)
    assert "delete it" in str(err.value) and "another --out" in str(err.value)
    result = _run(bapps_root, ["l2"], out, reuse=False)  # --recompute writes a new one
    assert load_run(result.run_dir).metric_names() == ["l2"]


# 5. --skip-bad on images smaller than a metric accepts


def _shrink_sample(root, index: int, side: int) -> None:
    for field in ("ref", "p0", "p1"):
        path = root / "2afc" / "val" / "cnn" / field / f"{index:06d}.png"
        Image.fromarray(read_image_uint8(path)[:side, :side]).save(path)


def test_skip_bad_records_images_smaller_than_a_metric_accepts_for_that_metric(
    bapps_root, tmp_path
):
    _shrink_sample(bapps_root, 3, 8)  # SSIM needs at least 11x11, l2 takes any size
    with pytest.raises(InputError, match=r"000003.*8x8 are smaller than 'ssim' accepts"):
        _run(bapps_root, ["l2", "ssim"], tmp_path / "strict")
    result = _run(bapps_root, ["l2", "ssim"], tmp_path / "run", skip_bad=True)
    (entry,) = result.manifest["failed_samples"]
    assert entry["sample_id"] == "val/cnn/000003" and entry["metrics"] == ["ssim"]
    assert entry["reason"] == "images of 8x8 are smaller than 'ssim' accepts (at least 11x11)"
    ssim, l2 = _scores(result.run_dir, "ssim")["d0"], _scores(result.run_dir, "l2")["d0"]
    assert np.isnan(ssim[3]) and np.isfinite(np.delete(ssim, 3)).all() and np.isfinite(l2).all()
    again = _run(bapps_root, ["l2", "ssim"], tmp_path / "run", skip_bad=True)
    assert again.manifest["failed_samples"] == result.manifest["failed_samples"]
    from iqa_bench.reports import summarize
    from iqa_bench.reports.documents import excluded_examples

    examples = excluded_examples(summarize(result.run_dir, n_boot=100, n_perm=100))
    assert examples[0][2:] == ("val/cnn/000003", entry["reason"] + " (ssim only)")
