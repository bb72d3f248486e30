"""Runner efficiency features: decoded-image cache, shared trunk embeddings, forced recompute."""

from __future__ import annotations

import time
import weakref

import numpy as np
import pytest

import iqa_bench.runner.batches as batches_module
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.runner import RunOptions, run_benchmark, store


def _opts(**kw) -> RunOptions:
    return RunOptions(progress=False, batch_size=4, chunk_size=6, **kw)


def test_second_run_reads_decoded_images_from_the_cache_without_decoding(
    bapps_root, tmp_path, monkeypatch
):
    first = run_benchmark(str(bapps_root), ["l2"], tmp_path / "a", _opts(), log=lambda m: None)
    assert first.manifest["timings"]["decode_cache_chunks_reused"] == 0

    def no_decoding(path, *args):
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(batches_module, "read_image_uint8", no_decoding)
    second = run_benchmark(
        str(bapps_root), ["l2", "psnr"], tmp_path / "b", _opts(), log=lambda m: None
    )
    assert second.manifest["timings"]["decode_cache_chunks_reused"] == 3  # 2 + 1 chunks of 6
    for task, field in (("2afc", "d0"), ("2afc", "d1"), ("jnd", "d")):
        a = np.load(store.final_path(first.run_dir, "l2", task))[field]
        b = np.load(store.final_path(second.run_dir, "l2", task))[field]
        assert np.array_equal(a, b)


def test_manifest_counts_the_cpu_time_of_decoding_threads(bapps_root, tmp_path, monkeypatch):
    """Decoding runs in worker threads while the metrics run, so waiting time understates its
    cost; the manifest also records the threads' CPU time, which a cached run no longer spends."""
    real_read = batches_module.read_image_uint8
    spin_s = 0.01

    def costly_read(path, *args):
        start = time.thread_time()
        while time.thread_time() - start < spin_s:  # CPU work, like decoding a large PNG
            pass
        return real_read(path, *args)

    monkeypatch.setattr(batches_module, "read_image_uint8", costly_read)
    cold = run_benchmark(str(bapps_root), ["l2"], tmp_path / "a", _opts(), log=lambda m: None)
    images = 3 * 10 + 2 * 5
    timings = cold.manifest["timings"]
    assert timings["decode_cpu_s"] >= images * spin_s
    assert timings["cpu_s"] >= timings["decode_cpu_s"]
    warm = run_benchmark(str(bapps_root), ["l2"], tmp_path / "b", _opts(), log=lambda m: None)
    assert warm.manifest["timings"]["decode_cache_chunks_reused"] == 3
    assert warm.manifest["timings"]["decode_cpu_s"] < images * spin_s / 4


def test_a_changed_image_file_is_decoded_again(bapps_root, tmp_path):
    run_benchmark(str(bapps_root), ["l2"], tmp_path / "a", _opts(), log=lambda m: None)
    changed = bapps_root / "2afc" / "val" / "cnn" / "p0" / "000001.png"
    other = bapps_root / "2afc" / "val" / "cnn" / "p1" / "000001.png"
    changed.write_bytes(other.read_bytes())
    result = run_benchmark(str(bapps_root), ["l2"], tmp_path / "b", _opts(), log=lambda m: None)
    assert result.manifest["timings"]["decode_cache_chunks_reused"] == 2  # the edited chunk is not
    d = np.load(store.final_path(result.run_dir, "l2", "2afc"))
    assert d["d0"][1] == pytest.approx(d["d1"][1])


def test_disabled_decode_cache_decodes_every_run(bapps_root, tmp_path):
    run_benchmark(
        str(bapps_root), ["l2"], tmp_path / "a", _opts(decode_cache=False), log=lambda m: None
    )
    again = run_benchmark(
        str(bapps_root), ["l2"], tmp_path / "b", _opts(decode_cache=False), log=lambda m: None
    )
    assert again.manifest["timings"]["decode_cache_chunks_reused"] == 0


@pytest.mark.weights
def test_metrics_sharing_a_trunk_compute_it_once_per_image(
    bapps_root, tmp_path, monkeypatch, alex_weights
):
    import iqa_bench.metrics.lpips as lpips_module

    calls = {"n": 0}
    real = lpips_module.LPIPS.features

    def counting(self, x):
        calls["n"] += x.shape[0]
        return real(self, x)

    monkeypatch.setattr(lpips_module.LPIPS, "features", counting)
    names = ["lpips-alex", "lpips-alex-baseline"]
    shared = run_benchmark(str(bapps_root), names, tmp_path / "shared", _opts(), log=lambda m: None)
    assert calls["n"] == 3 * 10 + 2 * 5, "one trunk pass per image for both metrics"
    calls["n"] = 0
    alone = run_benchmark(
        str(bapps_root), ["lpips-alex-baseline"], tmp_path / "alone", _opts(), log=lambda m: None
    )
    assert calls["n"] == 3 * 10 + 2 * 5
    a = np.load(store.final_path(shared.run_dir, "lpips-alex-baseline", "2afc"))["d0"]
    b = np.load(store.final_path(alone.run_dir, "lpips-alex-baseline", "2afc"))["d0"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.weights
def test_one_trunk_pass_covers_all_image_fields_of_a_batch_within_the_pixel_budget(
    bapps_root, tmp_path, monkeypatch, alex_weights
):
    import iqa_bench.metrics.lpips as lpips_module

    passes: list[int] = []
    real = lpips_module.LPIPS.features

    def recording(self, x):
        passes.append(x.shape[0])
        return real(self, x)

    monkeypatch.setattr(lpips_module.LPIPS, "features", recording)
    runs = {}
    # 4 triplets of 64x64 a batch: 16,384 pixels per field, 49,152 for ref + p0 + p1.
    for label, budget in (("joint", 64 * 256 * 256), ("per-field", 20_000)):
        passes.clear()
        runs[label] = run_benchmark(
            str(bapps_root),
            ["lpips-alex"],
            tmp_path / label,
            _opts(max_batch_pixels=budget),
            log=lambda m: None,
        )
        runs[label + " passes"] = list(passes)
    # 10 triplets in chunks of 6: batches of 4, 2, 4; 5 JND pairs: 4, 1.
    assert runs["joint passes"] == [12, 6, 12, 8, 2]
    # Over the budget, fields go one by one until the rest fit together (p0 + p1 of 2 triplets).
    assert runs["per-field passes"] == [4, 4, 4, 2, 4, 4, 4, 4, 4, 4, 2]
    assert all(n * 64 * 64 <= 20_000 for n in runs["per-field passes"])
    for task, field in (("2afc", "d0"), ("2afc", "d1"), ("jnd", "d")):
        joint, single = (
            np.load(store.final_path(runs[k].run_dir, "lpips-alex", task))[field]
            for k in ("joint", "per-field")
        )
        np.testing.assert_allclose(joint, single, rtol=1e-5, atol=1e-7)


def test_recompute_ignores_finished_results(bapps_root, tmp_path):
    run = tmp_path / "run"
    run_benchmark(str(bapps_root), ["l2"], run, _opts(), log=lambda m: None)
    before = store.final_path(run, "l2", "2afc").stat().st_mtime_ns
    messages: list[str] = []
    run_benchmark(str(bapps_root), ["l2"], run, _opts(reuse=False), log=messages.append)
    assert store.final_path(run, "l2", "2afc").stat().st_mtime_ns != before
    assert not any("reusing" in m for m in messages)


def test_out_of_memory_halves_the_batch_until_it_fits(bapps_root, tmp_path, monkeypatch):
    import torch

    import iqa_bench.metrics.pixel as pixel

    real = pixel.L2.compare
    sizes: list[int] = []
    failed_attempts: list[weakref.ref] = []
    still_held: list[int] = []

    def small_memory(self, ex, ey):
        # A retry must not run while the failed attempt's memory is still referenced.
        still_held.append(sum(ref() is not None for ref in failed_attempts))
        sizes.append(ex.shape[0])
        if ex.shape[0] > 1:
            activations = torch.empty(ex.shape[0], 1024)
            failed_attempts.append(weakref.ref(activations))
            raise torch.cuda.OutOfMemoryError("simulated: batch too large")  # as CUDA raises
        return real(self, ex, ey)

    reference = run_benchmark(
        str(bapps_root), ["l2"], tmp_path / "ref", _opts(), log=lambda m: None
    )
    monkeypatch.setattr(pixel.L2, "compare", small_memory)
    result = run_benchmark(
        str(bapps_root), ["l2"], tmp_path / "oom", _opts(decode_cache=False), log=lambda m: None
    )
    assert 4 in sizes and 2 in sizes and 1 in sizes
    assert failed_attempts and still_held and max(still_held) == 0
    for task, field in (("2afc", "d0"), ("2afc", "d1"), ("jnd", "d")):
        a = np.load(store.final_path(reference.run_dir, "l2", task))[field]
        b = np.load(store.final_path(result.run_dir, "l2", task))[field]
        assert np.array_equal(a, b)


def test_large_images_are_scored_in_batches_within_the_pixel_budget(tmp_path, monkeypatch):
    import iqa_bench.metrics.pixel as pixel

    root = make_bapps_layout(tmp_path / "big", twoafc={"cnn": 7}, jnd=None, size=160, seed=4)
    real = pixel.L2.compare
    sizes: list[int] = []

    def spy(self, ex, ey):
        sizes.append(ex.shape[0])
        return real(self, ex, ey)

    reference = run_benchmark(str(root), ["l2"], tmp_path / "ref", _opts(), log=lambda m: None)
    monkeypatch.setattr(pixel.L2, "compare", spy)
    budget = 2 * 160 * 160  # two images per batch
    result = run_benchmark(
        str(root), ["l2"], tmp_path / "small", _opts(max_batch_pixels=budget), log=lambda m: None
    )
    # chunks of 6 and 1 samples, batches of 4 cut to 2: every batch holds at most 2 images
    assert sizes and max(sizes) == 2 and sum(sizes) == 2 * 7  # d0 and d1 per triplet
    assert result.manifest["max_batch_pixels"] == budget
    seen = len(sizes)
    for field in ("d0", "d1"):
        a = np.load(store.final_path(reference.run_dir, "l2", "2afc"))[field]
        b = np.load(store.final_path(result.run_dir, "l2", "2afc"))[field]
        assert np.array_equal(a, b)
    resized = run_benchmark(
        str(root),
        ["l2"],
        tmp_path / "resized",
        _opts(max_batch_pixels=budget, resize=64),
        log=lambda m: None,
    )
    # 64x64 after resizing: 12 images fit the budget, so the batch size of 4 is kept
    assert resized.manifest["resize"] == 64 and max(sizes[seen:]) == 4


@pytest.mark.parametrize(("cores", "expected"), [(None, 2), (1, 2), (2, 2), (6, 6), (16, 8)])
def test_default_decoding_threads_follow_the_cores(monkeypatch, cores, expected):
    from iqa_bench import device

    monkeypatch.setattr(device.os, "cpu_count", lambda: cores)
    assert device.default_workers() == expected


def test_manifest_records_the_decoding_threads_used(bapps_root, tmp_path):
    result = run_benchmark(str(bapps_root), ["l2"], tmp_path / "a", _opts(), log=lambda m: None)
    from iqa_bench.device import default_workers

    assert result.manifest["workers"] == default_workers()
    result = run_benchmark(
        str(bapps_root), ["l2"], tmp_path / "b", _opts(workers=3), log=lambda m: None
    )
    assert result.manifest["workers"] == 3


@pytest.mark.weights
def test_a_perceptual_loss_on_an_lpips_tap_reuses_the_lpips_trunk_pass(
    bapps_root, tmp_path, monkeypatch
):
    import iqa_bench
    import iqa_bench.metrics.lpips as lpips_module
    import iqa_bench.metrics.perceptual as perceptual_module
    from iqa_bench.config import register_metric_card
    from tests.conftest import weights_file

    weights_file("alexnet-owt-7be5be79-features.pth")
    register_metric_card(
        {
            "name": "test-alex-relu3-l1",
            "type": "perceptual",
            "version": 1,
            "group": "custom",
            "description": "L1 of ImageNet-normalised AlexNet relu3 features (test card).",
            "params": {"backbone": "alex", "layer": "features.7"},
        }
    )
    passes = {"lpips": 0, "perceptual": 0}
    for name, cls in (("lpips", lpips_module.LPIPS), ("perceptual", perceptual_module.Perceptual)):
        real = cls.features

        def counting(self, x, _real=real, _name=name):
            passes[_name] += x.shape[0]
            return _real(self, x)

        monkeypatch.setattr(cls, "features", counting)
    names = ["lpips-alex", "test-alex-relu3-l1"]
    shared = run_benchmark(str(bapps_root), names, tmp_path / "shared", _opts(), log=lambda m: None)
    # LPIPS's ScalingLayer is ImageNet's normalisation, so relu3 comes from the LPIPS pass
    assert passes == {"lpips": 3 * 10 + 2 * 5, "perceptual": 0}
    direct = iqa_bench.create_metric("test-alex-relu3-l1")
    alone = run_benchmark(
        str(bapps_root), ["test-alex-relu3-l1"], tmp_path / "alone", _opts(), log=lambda m: None
    )
    assert passes["perceptual"] == 3 * 10 + 2 * 5
    for task, field in (("2afc", "d0"), ("2afc", "d1"), ("jnd", "d")):
        a = np.load(store.final_path(shared.run_dir, "test-alex-relu3-l1", task))[field]
        b = np.load(store.final_path(alone.run_dir, "test-alex-relu3-l1", task))[field]
        np.testing.assert_allclose(a, b, rtol=1e-5)
    assert direct.features_key == iqa_bench.create_metric("lpips-alex").features_key
    assert direct.features_key != iqa_bench.create_metric("lpips-alex-v0.0").features_key


def test_named_bapps_is_scored_on_images_resized_like_the_reference_loader(tmp_path):
    """Scores equal l2 of torchvision's Resize(64) output, also after a native-size run of the
    same files filled the decoded-image cache (whose keys therefore include the load size)."""
    from PIL import Image
    from torchvision import transforms

    from iqa_bench.datasets import open_dataset

    root = make_bapps_layout(tmp_path / "data" / "bapps", {"cnn": 3}, {"cnn": 2}, size=256, seed=8)
    native = run_benchmark(str(root), ["l2"], tmp_path / "native", _opts(), log=lambda m: None)
    named = run_benchmark(
        "bapps",
        ["l2"],
        tmp_path / "named",
        _opts(),
        data_root=tmp_path / "data",
        log=lambda m: None,
    )
    assert named.manifest["dataset"]["load_size"] == 64
    assert native.manifest["dataset"]["load_size"] is None

    def reference_image(path):
        with Image.open(path) as image:
            return np.asarray(transforms.Resize(64)(image.convert("RGB")), dtype=np.float64) / 255

    samples = open_dataset("bapps", data_root=tmp_path / "data").samples("2afc")
    want = [np.mean((reference_image(s.ref) - reference_image(s.p0)) ** 2) for s in samples]
    got = np.load(store.final_path(named.run_dir, "l2", "2afc"))["d0"]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    at_native = np.load(store.final_path(native.run_dir, "l2", "2afc"))["d0"]
    assert not np.allclose(at_native, want, rtol=1e-3)


@pytest.mark.parametrize("overlap", [None, False, True])
def test_on_cpu_a_chunk_is_decoded_before_it_is_scored(bapps_root, tmp_path, monkeypatch, overlap):
    """Decoding threads and PyTorch's threads would compete for the same cores."""
    import iqa_bench.metrics.pixel as pixel

    events: list[str] = []
    real_read, real_compare = batches_module.read_image_uint8, pixel.L2.compare

    def read(path, *args):
        events.append("decode")
        return real_read(path, *args)

    def compare(self, ex, ey):
        events.append("score")
        return real_compare(self, ex, ey)

    monkeypatch.setattr(batches_module, "read_image_uint8", read)
    monkeypatch.setattr(pixel.L2, "compare", compare)
    # One image triplet per batch and one thread: overlapped, decoding would run a batch ahead.
    opts = RunOptions(
        progress=False, batch_size=1, chunk_size=6, workers=1, device="cpu",
        overlap_decoding=overlap,
    )  # fmt: skip
    run_benchmark(str(bapps_root), ["l2"], tmp_path / "run", opts, log=lambda m: None)
    phases = [e for i, e in enumerate(events) if i == 0 or events[i - 1] != e]
    assert events.count("decode") == 3 * 10 + 2 * 5
    if overlap:  # asked for: the next batch is decoded while one is scored
        assert len(phases) > 6
    else:  # 2AFC: chunks of 6 and 4 triplets, JND: one of 5 pairs; each decoded, then scored
        assert phases == ["decode", "score"] * 3
