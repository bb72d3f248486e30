"""The reference evaluation loop, rebuilt as the LPIPS repository's ``test_dataset_model.py`` runs it.

The ``lpips`` package ships ``score_2afc_dataset``/``score_jnd_dataset`` and ``Trainer`` but not the
repository's data loaders, so the PIL-loading datasets are rebuilt here the way the original
``data/dataset/twoafc_dataset.py`` / ``jnd_dataset.py`` do it: per item, PIL ``open().convert('RGB')``,
``Resize(64)``, ``ToTensor``, ``Normalize(0.5, 0.5)``; judgments from ``.npy``; a torch
``DataLoader`` with ``num_workers`` threads. One metric at a time, one data pass per metric and
subset, exactly as the original script loops.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


def _transform(load_size: int = 64):
    return transforms.Compose(
        [
            transforms.Resize(load_size),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )


def _files(folder: Path, ext: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ext)


class TwoAFCDataset(Dataset):
    def __init__(self, subset_dir: Path, load_size: int = 64) -> None:
        self.ref, self.p0, self.p1 = (_files(subset_dir / d, ".png") for d in ("ref", "p0", "p1"))
        self.judge = _files(subset_dir / "judge", ".npy")
        self.transform = _transform(load_size)

    def __len__(self) -> int:
        return len(self.ref)

    def __getitem__(self, i: int) -> dict:
        load = lambda p: self.transform(Image.open(p).convert("RGB"))
        judge = torch.FloatTensor(np.load(self.judge[i]).reshape((1, 1, 1)))
        return {
            "ref": load(self.ref[i]),
            "p0": load(self.p0[i]),
            "p1": load(self.p1[i]),
            "judge": judge,
        }


class JNDDataset(Dataset):
    def __init__(self, subset_dir: Path, load_size: int = 64) -> None:
        self.p0, self.p1 = (_files(subset_dir / d, ".png") for d in ("p0", "p1"))
        self.same = _files(subset_dir / "same", ".npy")
        self.transform = _transform(load_size)

    def __len__(self) -> int:
        return len(self.p0)

    def __getitem__(self, i: int) -> dict:
        load = lambda p: self.transform(Image.open(p).convert("RGB"))
        same = torch.FloatTensor(np.load(self.same[i]).reshape((1, 1, 1, 1)))
        return {"p0": load(self.p0[i]), "p1": load(self.p1[i]), "same": same}


class Loader:
    """The original ``CustomDatasetDataLoader``: ``load_data()`` returns a torch DataLoader."""

    def __init__(self, dataset: Dataset, batch_size: int, workers: int) -> None:
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)

    def load_data(self) -> DataLoader:
        return self.loader


def _load_trunk(net: torch.nn.Module, state: dict) -> None:
    """Fill the reference's ``slice<k>.<i>`` modules from a ``features.<i>`` state dict."""
    net.load_state_dict(
        {k: state[re.sub(r"^slice\d+\.", "features.", k)] for k in net.state_dict()}
    )


def reference_distance(metric: str, trunk_states: dict[str, dict]):
    """A ``func(in0, in1)`` on [-1, 1] tensors and the batch size the reference code allows."""
    import lpips
    from skimage.metrics import structural_similarity

    # Modern scikit-image renamed compare_ssim; the reference's dssim() is otherwise unchanged.
    lpips.dssim = lambda p0, p1, range=255.0: (
        (1 - structural_similarity(p0, p1, data_range=range, channel_axis=-1)) / 2.0
    )
    nets = {"alex": "alex", "squeeze": "squeeze", "vgg": "vgg"}
    m = re.fullmatch(r"lpips-(alex|squeeze|vgg)(-v0\.0|-baseline)?", metric)
    if m:
        net, variant = nets[m[1]], m[2] or ""
        trainer = lpips.Trainer()
        model = "baseline" if variant == "-baseline" else "lpips"
        version = "0.0" if variant == "-v0.0" else "0.1"
        trainer.initialize(model=model, net=net, version=version, pnet_rand=True, use_gpu=False)
        _load_trunk(trainer.net.net, trunk_states[net])
        trainer.net.eval()
        return trainer.forward, None
    if metric in ("l2", "l2-lab", "ssim-paper"):
        trainer = lpips.Trainer()
        kind = "L2" if metric.startswith("l2") else "SSIM"
        colorspace = "Lab" if metric == "l2-lab" else "RGB"
        trainer.initialize(model=kind, colorspace=colorspace, use_gpu=False)
        return trainer.forward, 1  # the reference asserts batch size 1 for L2/SSIM
    if metric == "psnr":

        def psnr(in0, in1):
            return torch.tensor([-lpips.psnr(lpips.tensor2im(in0), lpips.tensor2im(in1))])

        return psnr, 1
    if metric == "ssim":

        def ssim(in0, in1):
            a, b = (lpips.tensor2im(t).astype(np.float64) for t in (in0, in1))
            value = structural_similarity(
                a,
                b,
                data_range=255.0,
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            return torch.tensor([1 - value])

        return ssim, 1
    raise ValueError(f"no reference implementation for {metric!r}")


def score_reference(
    root: Path, metric: str, trunk_states: dict, batch_size: int, workers: int
) -> dict:
    """Run the reference loop for one metric over every 2AFC and JND subset; return the scores."""
    import lpips

    func, forced_batch = reference_distance(metric, trunk_states)
    bs = forced_batch or batch_size
    out = {}
    with torch.no_grad():
        for subset_dir in sorted((root / "2afc" / "val").iterdir()):
            loader = Loader(TwoAFCDataset(subset_dir), bs, workers)
            out[f"2afc/{subset_dir.name}"] = lpips.score_2afc_dataset(loader, func, name="")[0]
        jnd_root = root / "jnd" / "val"
        if jnd_root.is_dir():
            flat = lambda a, b: func(a, b).flatten()  # the reference's JND bug otherwise
            for subset_dir in sorted(jnd_root.iterdir()):
                loader = Loader(JNDDataset(subset_dir), bs, workers)
                out[f"jnd/{subset_dir.name}"] = lpips.score_jnd_dataset(loader, flat, name="")[0]
    return out
