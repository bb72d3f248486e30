"""Feature trunks addressed by module name, with a declared list of tap points.

A backbone is one registered :class:`BackboneSpec`: how to build the (randomly initialised) network,
which modules to tap, where its ImageNet weights come from. Adding a trunk is one ``BACKBONES.add``
call in one file.

Example:
    >>> spec = BACKBONES.get("alex")
    >>> trunk = TappedTrunk(spec.build(), spec.taps)
    >>> [f.shape[1] for f in trunk(torch.rand(1, 3, 64, 64))]
    [64, 192, 384, 256, 256]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import torch
import torchvision
from torch import nn

from .registry import Registry


@dataclass(frozen=True)
class TrunkWeights:
    """Where a trunk's ImageNet weights come from.

    Attributes:
        stem: torchvision checkpoint stem, e.g. ``alexnet-owt-7be5be79``; its last part is the prefix
            of the full checkpoint's SHA-256 (torch hub convention).
        url: Download address of the full torchvision checkpoint.
        features_sha256: SHA-256 of the features-only file, when known (else recorded on first use).
        keep_prefix: Only state-dict keys starting with this are kept in the features-only file.
    """

    stem: str
    url: str
    features_sha256: str | None = None
    keep_prefix: str = "features."

    @property
    def features_file(self) -> str:
        """File name of the features-only weights (as in ``../shared/weights``)."""
        return f"{self.stem}-features.pth"

    @property
    def checkpoint_sha256_prefix(self) -> str:
        return self.stem.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class BackboneSpec:
    """A trunk that LPIPS-style metrics can tap.

    Attributes:
        name: Registry name (``alex``, ``vgg16``, ``squeezenet1_1``).
        build: Returns the network with random weights (no download).
        taps: Module names whose outputs are the features, in forward order.
        weights: ImageNet weights source, or None for trunks used untrained.
        lpips_name: Name of the trunk in the reference ``lpips`` package (for its linear weights).
    """

    name: str
    build: Callable[[], nn.Module]
    taps: tuple[str, ...]
    weights: TrunkWeights | None = None
    lpips_name: str | None = None


BACKBONES: Registry[BackboneSpec] = Registry("backbone")

_TV = "https://download.pytorch.org/models/"

BACKBONES.add(
    "alex",
    BackboneSpec(
        name="alex",
        build=lambda: torchvision.models.alexnet(weights=None),
        taps=("features.1", "features.4", "features.7", "features.9", "features.11"),
        weights=TrunkWeights(
            stem="alexnet-owt-7be5be79",
            url=_TV + "alexnet-owt-7be5be79.pth",
            features_sha256="2793c25f823207108fe6178b3f71c80a9adfd89fcf8d83af6d5a6e11334df710",
        ),
        lpips_name="alex",
    ),
)
BACKBONES.add(
    "vgg16",
    BackboneSpec(
        name="vgg16",
        build=lambda: torchvision.models.vgg16(weights=None),
        taps=("features.3", "features.8", "features.15", "features.22", "features.29"),
        weights=TrunkWeights(stem="vgg16-397923af", url=_TV + "vgg16-397923af.pth"),
        lpips_name="vgg",
    ),
)
BACKBONES.add(
    "squeezenet1_1",
    BackboneSpec(
        name="squeezenet1_1",
        build=lambda: torchvision.models.squeezenet1_1(weights=None),
        taps=tuple(f"features.{i}" for i in (1, 4, 7, 9, 10, 11, 12)),
        weights=TrunkWeights(
            stem="squeezenet1_1-b8a52dc0",
            url=_TV + "squeezenet1_1-b8a52dc0.pth",
            features_sha256="7ad199be5f790bc4f3e426a569e42477cf96c6778da9fd60e41011517f9c0537",
        ),
        lpips_name="squeeze",
    ),
)


def _sequential_taps(model: nn.Module, taps: Sequence[str]) -> tuple[str, list[int]] | None:
    """If every tap is ``<prefix>.<index>`` of one ``nn.Sequential``, return (prefix, indices)."""
    prefixes = {t.rpartition(".")[0] for t in taps}
    if len(prefixes) != 1:
        return None
    prefix = prefixes.pop()
    try:
        container = model.get_submodule(prefix) if prefix else model
    except AttributeError:
        return None
    if not isinstance(container, nn.Sequential):
        return None
    try:
        return prefix, [int(t.rpartition(".")[2]) for t in taps]
    except ValueError:
        return None


class TappedTrunk(nn.Module):
    """Runs a network up to its last tap and returns the tapped module outputs.

    Sequential trunks (torchvision ``features``) keep only the layers up to the last tap; any other
    network goes through ``torchvision``'s FX feature extractor with the taps as return nodes.

    Args:
        model: The full network (weights already loaded or random).
        taps: Module names to return, in forward order.
    """

    def __init__(self, model: nn.Module, taps: Sequence[str]) -> None:
        super().__init__()
        self.taps = tuple(taps)
        if not self.taps:
            raise ValueError("taps: need at least one module name to tap, got none.")
        names = {name for name, _ in model.named_modules()}
        missing = [t for t in self.taps if t not in names]
        if missing:
            from .registry import suggest

            raise ValueError(
                f"taps: module {missing[0]!r} is not in the network.{suggest(missing[0], list(names))}"
            )
        seq = _sequential_taps(model, self.taps)
        if seq is not None:
            prefix, indices = seq
            if indices != sorted(indices):
                raise ValueError(f"taps: {self.taps} must be in forward order.")
            container = model.get_submodule(prefix) if prefix else model
            self.layers = nn.Sequential()
            for i in range(indices[-1] + 1):
                self.layers.add_module(str(i), container[i])
            self._tap_indices = frozenset(indices)
            self.prefix = prefix
            # An in-place op right after a tap would overwrite the tapped tensor.
            for i in indices:
                nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
                if nxt is not None and getattr(nxt, "inplace", False):
                    nxt.inplace = False
            self.extractor = None
        else:
            from torchvision.models.feature_extraction import create_feature_extractor

            self.layers = None
            self.prefix = ""
            self.extractor = create_feature_extractor(model, return_nodes=list(self.taps))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.extractor is not None:
            out = self.extractor(x)
            return [out[t] for t in self.taps]
        feats = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self._tap_indices:
                feats.append(x)
        return feats

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict under the original module names (e.g. ``features.0.weight``)."""
        if self.layers is None:
            return {k: v for k, v in self.extractor.state_dict().items()}
        prefix = f"{self.prefix}." if self.prefix else ""
        return {prefix + k: v for k, v in self.layers.state_dict().items()}

    def load_trunk_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights named as in the full network; every kept tensor must be present."""
        prefix = f"{self.prefix}." if self.prefix else ""
        target = self.layers if self.layers is not None else self.extractor
        local = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        expected = set(target.state_dict())
        missing = sorted(expected - set(local))
        if missing:
            raise ValueError(
                f"trunk weights lack {len(missing)} tensors (first: {prefix + missing[0]!r}); "
                "the file does not belong to this backbone."
            )
        target.load_state_dict({k: v for k, v in local.items() if k in expected})

    def channels(self) -> list[int]:
        """Channel count of each tap, found by a dry run on the meta device."""
        import copy

        meta = copy.deepcopy(self).to("meta")
        with torch.no_grad():
            return [f.shape[1] for f in meta(torch.empty(1, 3, 224, 224, device="meta"))]


@cache
def min_input_size(backbone: str, taps: tuple[str, ...] | None = None) -> int:
    """Smallest square side the trunk accepts (every tap non-empty), by dry runs on meta tensors."""
    spec = BACKBONES.get(backbone)
    with torch.device("meta"):
        trunk = TappedTrunk(spec.build(), taps or spec.taps)

    def works(size: int) -> bool:
        try:
            with torch.no_grad():
                feats = trunk(torch.empty(1, 3, size, size, device="meta"))
            return all(f.shape[-1] > 0 and f.shape[-2] > 0 for f in feats)
        except RuntimeError:
            return False

    lo, hi = 1, 1024
    if not works(hi):
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if works(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
