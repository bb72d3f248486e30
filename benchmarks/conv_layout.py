"""Channels-last against NCHW, per spatial convolution of the registered trunks, on this CPU.

    python benchmarks/conv_layout.py --rounds 7

For every spatial (k > 1) ``nn.Conv2d`` of alex, squeezenet1_1 and vgg16 at 64x64 and 256x256
input, the convolution is timed in both layouts on the same input (alternating, median of
``--rounds``), as the batch size the benchmarks use, and printed with the ratio NCHW time /
channels-last time (above 1: channels-last is faster) and the layout that
``iqa_bench.metrics.layout`` picks for it. The last line counts the convolutions where the pick is
the slower layout by more than 5%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _conv_inputs(trunk: nn.Module, size: int) -> list[tuple[str, nn.Conv2d, tuple[int, ...]]]:
    """(name, conv, input shape) for each spatial convolution, from one forward pass."""
    seen: list = []
    hooks = [
        m.register_forward_pre_hook(lambda m, a, n=n: seen.append((n, m, tuple(a[0].shape))))
        for n, m in trunk.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)
    ]
    with torch.inference_mode():
        trunk(torch.rand(1, 3, size, size))
    for h in hooks:
        h.remove()
    return seen


def _median_ms(fn, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-64", type=int, default=100, help="images per pass at 64x64")
    parser.add_argument("--batch-256", type=int, default=16, help="images per pass at 256x256")
    args = parser.parse_args()

    from iqa_bench.backbones import BACKBONES
    from iqa_bench.metrics.layout import SMALL_MAP_POSITIONS, runs_in_nchw

    print(f"torch threads {torch.get_num_threads()}, small-map limit {SMALL_MAP_POSITIONS}")
    wrong = total = 0
    for backbone in ("alex", "squeezenet1_1", "vgg16"):
        trunk = BACKBONES.get(backbone).build().features.eval()
        for size, batch in ((64, args.batch_64), (256, args.batch_256)):
            for name, conv, shape in _conv_inputs(trunk, size):
                x = torch.rand(batch, *shape[1:])
                x_cl = x.contiguous(memory_format=torch.channels_last)
                w, w_cl = (
                    conv.weight.detach(),
                    conv.weight.detach().contiguous(memory_format=torch.channels_last),
                )
                kw = {"stride": conv.stride, "padding": conv.padding, "bias": conv.bias}
                nchw_call = partial(F.conv2d, x, w, **kw)
                cl_call = partial(F.conv2d, x_cl, w_cl, **kw)
                with torch.inference_mode():
                    t_nchw, t_cl = [], []
                    for _ in range(2):
                        t_nchw.append(_median_ms(nchw_call, args.rounds))
                        t_cl.append(_median_ms(cl_call, args.rounds))
                ratio = min(t_nchw) / min(t_cl)
                nchw = runs_in_nchw(conv, x)
                slower = ratio < 1 / 1.05 if not nchw else ratio > 1.05
                wrong += slower
                total += 1
                print(
                    f"{backbone:>13} {size:>3}px {name:<12} in {str(shape[1:]):<16} k{conv.kernel_size[0]}"
                    f"  nchw {min(t_nchw):7.2f} ms  channels-last {min(t_cl):7.2f} ms"
                    f"  ratio {ratio:5.2f}  picks {'nchw' if nchw else 'channels-last'}"
                    + ("  <- slower pick" if slower else "")
                )
    print(f"{wrong} of {total} convolutions get the layout that is slower by more than 5%")


if __name__ == "__main__":
    main()
