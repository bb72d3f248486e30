"""Wall time of the whole metric table on a BAPPS-val-sized set, cold and warm decoded-image cache.

    python benchmarks/full_table.py --scale 1.0     # 36,344 triplets + 9,600 JND pairs
    python benchmarks/full_table.py --scale 0.05 --metrics l2,psnr,ssim,lpips-alex

After a throwaway warm-up run on a small set (imports, weights, kernel set-up), three runs of
``iqa-bench run`` on the same generated set, each into a fresh run folder:
cold (empty decoded-image cache: PNGs decoded and cached), warm (decoded images read from the
memory-mapped cache, every score recomputed), and rerun (finished results reused). Prints their
wall and CPU times and ratios, and the CPU time spent decoding in the loader threads and on the
cache, beside the CPU and wall time the cold run spent beyond the warm one. By default the PNGs
are stored at 256x256 as the BAPPS archives store their 64x64 patches, upscaled by nearest
neighbour as the E-LPIPS authors report for the archives (``--stored-resample bicubic``:
smoothly, which makes the files larger and slower to decode), and the set is read as the
named ``bapps`` dataset, which loads them at 64 (``--stored-size 64``: 64x64 files read by
path).
``--also-dtypes bf16`` adds a warm run per listed dtype (warmed up too). Weights as in
``_data.weights_folder`` (VGG16 random when absent).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._data import make_val_like, weights_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of BAPPS val size")
    parser.add_argument("--metrics", default="all", help="comma-separated names, or all")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument(
        "--also-dtypes",
        default="",
        help="comma-separated dtypes (e.g. bf16,tf32) timed after the three runs, warm cache only",
    )
    parser.add_argument(
        "--compile", default=None, choices=["default", "max-autotune-no-cudagraphs"]
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=1000,
        help="distinct generated samples per subset; the rest are hard links (each file is still "
        "read and decoded on its own), so a smaller pool only shortens the generation",
    )
    parser.add_argument(
        "--stored-size",
        type=int,
        choices=[64, 256],
        default=256,
        help="side the generated PNGs are stored at: 256 as the BAPPS archives store their 64x64 "
        "patches (upscaled as --stored-resample says; opened as the named `bapps` dataset, which "
        "loads them at 64 as the reference loader does), or 64 (opened by path, nothing resized)",
    )
    parser.add_argument(
        "--stored-resample",
        choices=["nearest", "bicubic"],
        default="nearest",
        help="how the 256x256 files are upscaled from the 64x64 patches: nearest (blocks, small "
        "files; what the E-LPIPS authors report for the archives) or bicubic (smooth, 5-6x "
        "larger files, slower to decode)",
    )
    parser.add_argument(
        "--return-freed-memory",
        action="store_true",
        help="run with glibc's default malloc thresholds (as iqa-bench run --return-freed-memory)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["IQA_BENCH_WEIGHTS"] = str(weights_folder(tmp / "weights"))
        os.environ["IQA_BENCH_CACHE"] = str(tmp / "cache")
        os.environ["IQA_BENCH_OFFLINE"] = "1"
        from iqa_bench.runner import RunOptions, run_benchmark

        t0 = time.perf_counter()
        archive_like = args.stored_size == 256
        stored = {"stored_scale": 4 if archive_like else 1, "stored_resample": args.stored_resample}
        root = make_val_like(tmp / "data" / "bapps", args.scale, args.pool, **stored)
        dataset, data_root = ("bapps", tmp / "data") if archive_like else (str(root), None)
        print(
            f"generated in {time.perf_counter() - t0:.1f} s (PNGs stored at {args.stored_size} px"
            + (f", {args.stored_resample} upscale)" if archive_like else ")")
        )
        metrics = "all" if args.metrics == "all" else args.metrics.split(",")
        if not args.return_freed_memory:  # as `iqa-bench run`: this script is the entry point
            from iqa_bench.runner.allocator import keep_freed_memory

            keep_freed_memory()

        # The first run in a process also pays imports, weight loading and kernel set-up (and
        # compilation with --compile); a throwaway run on a small set takes that out of "cold".
        def options(dtype: str = args.dtype, **kw) -> RunOptions:
            return RunOptions(
                batch_size=args.batch_size,
                device=args.device,
                dtype=dtype,
                progress=False,
                compile=args.compile,
                **kw,
            )

        t0 = time.perf_counter()
        warmup = make_val_like(tmp / "warm-up" / "bapps", 0.003, seed=1, **stored)
        also = list(filter(None, args.also_dtypes.split(",")))
        for dtype in [args.dtype, *also]:
            run_benchmark(
                "bapps" if archive_like else str(warmup),
                metrics,
                tmp / f"w-{dtype}",
                options(dtype, decode_cache=False),
                log=lambda m: None,
                data_root=tmp / "warm-up" if archive_like else None,
            )
        print(f"process warm-up run (not counted): {time.perf_counter() - t0:.1f} s")
        times, timings = {}, {}
        for label, reuse, out in (("cold", True, "a"), ("warm", False, "b"), ("rerun", True, "b")):
            opts = options(reuse=reuse)
            t0 = time.perf_counter()
            result = run_benchmark(
                dataset, metrics, tmp / out, opts, log=lambda m: None, data_root=data_root
            )
            times[label] = time.perf_counter() - t0
            m = result.manifest
            timings[label] = t = m["timings"]
            print(
                f"{label:>5}: {times[label]:7.1f} s, CPU {t['cpu_s']:.1f} s  (decoding: waited "
                f"{t['decode_s']:.1f} s, CPU {t['decode_cpu_s']:.1f} s; cache chunks reused "
                f"{t['decode_cache_chunks_reused']}, "
                f"{sum(1 for v in m['metrics'].values() if v['status'] == 'ok')} metrics, "
                f"device {m['device']})"
            )
        for dtype in also:
            t0 = time.perf_counter()
            extra = run_benchmark(
                dataset,
                metrics,
                tmp / f"d-{dtype}",
                options(dtype, reuse=False),
                log=lambda m: None,
                data_root=data_root,
            )
            times[f"warm {dtype}"] = time.perf_counter() - t0
            print(
                f"warm, --dtype {dtype}: {times[f'warm {dtype}']:7.1f} s  (decode "
                f"{extra.manifest['timings']['decode_s']:.1f} s)"
            )
        n = {t: v["n"] for t, v in result.manifest["tasks"].items()}
        print(
            f"samples {n}; warm/cold speed-up x{times['cold'] / times['warm']:.2f}, "
            f"rerun x{times['cold'] / times['rerun']:.1f}"
        )
        # The threads decode while the metrics run, so the wait (decode_s) understates what
        # decoding costs; its CPU time, and the CPU the cold run spent beyond the warm one (the
        # decoding threads also take cores from PyTorch's threads), say more.
        cold, warm = timings["cold"], timings["warm"]
        print(
            f"decoding and caching took {cold['decode_cpu_s']:.2f} s CPU in the cold run "
            f"({100 * cold['decode_cpu_s'] / max(cold['cpu_s'], 1e-9):.1f}% of its "
            f"{cold['cpu_s']:.1f} s CPU; waited for {cold['decode_s']:.2f} s), reading the cache "
            f"{warm['decode_cpu_s']:.2f} s warm; the cold run used {cold['cpu_s'] - warm['cpu_s']:.1f} s "
            f"more CPU and {times['cold'] - times['warm']:.1f} s more wall time than the warm one"
        )
        print(
            json.dumps(
                {
                    "samples": n,
                    **{k: round(v, 2) for k, v in times.items()},
                    "timings": timings,
                }
            )
        )


if __name__ == "__main__":
    main()
