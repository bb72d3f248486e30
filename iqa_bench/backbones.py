"""Feature trunks addressed by module name, with a declared list of tap points.

A backbone is one registered :class:`BackboneSpec`: how to build the (randomly initialised) network,
which modules to tap, where its ImageNet weights come from. Adding a trunk is one ``BACKBONES.add``
call in one file. Names ``torchvision:<model>`` and ``timm:<model>`` resolve lazily to zoo backbones
(see :mod:`iqa_bench.zoo`); they declare no taps, so metrics must name them.

Example:
    >>> spec = BACKBONES.get("alex")
    >>> trunk = TappedTrunk(spec.build(), spec.taps)
    >>> [f.shape[1] for f in trunk(torch.rand(1, 3, 64, 64))]
    [64, 192, 384, 256, 256]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import torch
from torch import nn

from . import trunks
from .errors import InputError
from .registry import Registry
from .trunk_spec import BackboneSpec, TrunkWeights


class BackboneRegistry(Registry[BackboneSpec]):
    """Registered backbones, plus ``torchvision:<model>`` / ``timm:<model>`` resolved on demand."""

    def get(self, name: str) -> BackboneSpec:
        """The spec registered as ``name``, or the zoo backbone it names (see :mod:`iqa_bench.zoo`).

        Raises:
            InputError: Unknown name (with suggestions and a hint about zoo names).
        """
        if name in self._items:
            return self._items[name]
        from .zoo import is_zoo_name, resolve_zoo_backbone

        if is_zoo_name(name):
            return resolve_zoo_backbone(name)
        try:
            return super().get(name)
        except ValueError as exc:
            raise InputError(
                f"{exc} Any torchvision classification model works as torchvision:<model> "
                "(e.g. torchvision:resnet18), and timm models as timm:<model> when timm is installed."
            ) from None


BACKBONES: BackboneRegistry = BackboneRegistry("backbone")

_TV = "https://download.pytorch.org/models/"

BACKBONES.add(
    "alex",
    BackboneSpec(
        name="alex",
        build=trunks.alexnet,
        taps=("features.1", "features.4", "features.7", "features.9", "features.11"),
        weights=TrunkWeights(
            stem="alexnet-owt-7be5be79",
            url=_TV + "alexnet-owt-7be5be79.pth",
            features_sha256="2793c25f823207108fe6178b3f71c80a9adfd89fcf8d83af6d5a6e11334df710",
        ),
        lpips_name="alex",
    ),
)
_VGG16_TAPS = ("features.3", "features.8", "features.15", "features.22", "features.29")
_VGG16_WEIGHTS = TrunkWeights(stem="vgg16-397923af", url=_TV + "vgg16-397923af.pth")
BACKBONES.add(
    "vgg16",
    BackboneSpec(
        name="vgg16",
        build=trunks.vgg16,
        taps=_VGG16_TAPS,
        weights=_VGG16_WEIGHTS,
        lpips_name="vgg",
    ),
)
# DISTS's trunk: VGG16's convolutions and weights file, L2 pooling instead of max pooling. Its
# features equal vgg16's only up to relu1_2 (features.3), so the two never share a trunk pass.
BACKBONES.add(
    "vgg16-l2pool",
    BackboneSpec(
        name="vgg16-l2pool",
        build=trunks.vgg16_l2pool,
        taps=_VGG16_TAPS,
        weights=_VGG16_WEIGHTS,
    ),
)
BACKBONES.add(
    "squeezenet1_1",
    BackboneSpec(
        name="squeezenet1_1",
        build=trunks.squeezenet1_1,
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
    """If every tap is ``<prefix>.<index>`` of one ``nn.Sequential`` that receives the network's
    input, return (prefix, indices).

    The input check is structural: the container must be the first child at every level of its
    name (torchvision's ``features``), not e.g. timm's ``stages`` after a ``stem``.
    """
    prefixes = {t.rpartition(".")[0] for t in taps}
    if len(prefixes) != 1:
        return None
    prefix = prefixes.pop()
    parent = model
    for part in prefix.split(".") if prefix else []:
        first = next(iter(parent.named_children()), (None, None))
        if first[0] != part:
            return None
        parent = first[1]
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


def candidate_taps(model: nn.Module, limit: int = 24) -> list[str]:
    """Module names worth tapping: the network's children, with containers opened one level.

    Example:
        >>> import torchvision
        >>> candidate_taps(torchvision.models.resnet18())[:6]
        ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2']
    """
    names: list[str] = []
    for name, child in model.named_children():
        grandchildren = list(child.named_children())
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(grandchildren) > 4:
            names += [f"{name}.{sub}" for sub, _ in grandchildren]
        else:
            names.append(name)
    return names[:limit]


class _StopForward(Exception):
    """Raised by the last tap's hook: nothing after it is needed."""


class _HookExtractor(nn.Module):
    """Tap outputs by forward hooks, for networks the FX tracer cannot trace (any ``nn.Module``)."""

    def __init__(self, model: nn.Module, taps: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.taps = tuple(taps)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}

        def hook(name: str):
            def fn(module, args, output):
                out[name] = output.clone()  # a later in-place op must not change it
                if len(out) == len(self.taps):
                    raise _StopForward

            return fn

        handles = [self.model.get_submodule(t).register_forward_hook(hook(t)) for t in self.taps]
        try:
            self.model(x)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [t for t in self.taps if t not in out]
        if missing:
            raise InputError(
                f"taps: module {missing[0]!r} never ran in the network's forward pass."
            )
        return out


class TappedTrunk(nn.Module):
    """Runs a network up to its last tap and returns the tapped module outputs.

    Sequential trunks (torchvision ``features``) keep only the layers up to the last tap; any other
    network goes through ``torchvision``'s FX feature extractor with the taps as return nodes, or,
    when FX cannot trace it, through forward hooks on the full network.

    Args:
        model: The full network (weights already loaded or random).
        taps: Module names to return, in forward order.

    Raises:
        InputError: No taps, or a tap that is not a module of the network (with close matches and
            a list of candidates).
    """

    def __init__(self, model: nn.Module, taps: Sequence[str]) -> None:
        super().__init__()
        self.taps = tuple(taps)
        if not self.taps:
            raise InputError(
                "taps: need at least one module name to tap, got none; candidates: "
                f"{', '.join(candidate_taps(model))}."
            )
        names = {name for name, _ in model.named_modules()}
        missing = [t for t in self.taps if t not in names]
        if missing:
            from .registry import suggest

            raise InputError(
                f"taps: module {missing[0]!r} is not in the network.{suggest(missing[0], list(names))}"
                f" Candidates: {', '.join(candidate_taps(model))}."
            )
        self._weights_module: nn.Module
        seq = _sequential_taps(model, self.taps)
        if seq is not None:
            prefix, indices = seq
            if indices != sorted(indices):
                raise InputError(f"taps: {self.taps} must be in forward order.")
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
            try:
                self.extractor = create_feature_extractor(model, return_nodes=list(self.taps))
            except Exception:  # untraceable control flow: fall back to hooks on the full network
                self.extractor = _HookExtractor(model, self.taps)

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

    def _target(self) -> nn.Module:
        """The module whose state dict uses the original names (minus ``prefix``)."""
        if self.layers is not None:
            return self.layers
        return (
            self.extractor.model if isinstance(self.extractor, _HookExtractor) else self.extractor
        )

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict under the original module names (e.g. ``features.0.weight``)."""
        prefix = f"{self.prefix}." if self.prefix else ""
        return {prefix + k: v for k, v in self._target().state_dict().items()}

    def load_trunk_state_dict(self, state: dict[str, torch.Tensor], assign: bool = False) -> None:
        """Load weights named as in the full network; every kept tensor must be present.

        Args:
            state: Tensors named as in the full network (e.g. ``features.0.weight``).
            assign: Make ``state``'s tensors the trunk's own instead of copying them (for a trunk
                built on the meta device).
        """
        prefix = f"{self.prefix}." if self.prefix else ""
        target = self._target()
        local = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        expected = target.state_dict()
        missing = sorted(set(expected) - set(local))
        if missing:
            raise InputError(
                f"trunk weights lack {len(missing)} tensors (first: {prefix + missing[0]!r}); "
                "the file does not belong to this backbone."
            )
        # Assigned tensors keep their dtype: cast them as copying into the trunk's own would.
        kept = {
            k: v.to(expected[k].dtype) if assign else v for k, v in local.items() if k in expected
        }
        target.load_state_dict(kept, assign=assign)

    def channels(self, size: int = 224) -> list[int]:
        """Channel count of each tap, found by a dry run on the meta device.

        Raises:
            InputError: A tap whose output is not an (N, C, H, W) feature map.
        """
        import copy

        with torch.no_grad():
            try:
                meta = copy.deepcopy(self).to("meta").eval()
                feats = meta(torch.empty(1, 3, size, size, device="meta"))
            # RuntimeError/NotImplementedError: the network needs real values (data-dependent
            # flow). AttributeError: older torch (seen with 2.2) copies a torchvision feature
            # extractor (an FX DualGraphModule) as a plain GraphModule without its eval graph.
            # A real pass works in both cases.
            except (RuntimeError, NotImplementedError, AttributeError):
                device = next((p.device for p in self.parameters()), torch.device("cpu"))
                was_training = self.training
                feats = self.eval()(torch.zeros(1, 3, size, size, device=device))
                self.train(was_training)
        for tap, f in zip(self.taps, feats):
            if not isinstance(f, torch.Tensor) or f.ndim != 4:
                shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
                raise InputError(
                    f"taps: {tap!r} outputs {shape}, not an (N, C, H, W) feature map; tap "
                    "convolutional stages (token sequences of transformers are not supported)."
                )
        return [f.shape[1] for f in feats]


#: Modules whose output has the spatial size of their input (for :func:`_sequential_sizes`).
_SIZE_PRESERVING = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.BatchNorm2d,
    trunks.Fire,
)


def _window_out(module: nn.Module, size: int, dim: int) -> int:
    """Output length along ``dim`` of a convolution or pooling window, as PyTorch computes it."""

    def arg(name: str, default: int) -> int:
        value = getattr(module, name, default)
        return value[dim] if isinstance(value, tuple) else value

    kernel = arg("kernel_size", 1)
    stride, padding, dilation = arg("stride", kernel), arg("padding", 0), arg("dilation", 1)
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not getattr(module, "ceil_mode", False):
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out  # last window starts inside


def _sequential_sizes(trunk: TappedTrunk) -> Callable[[int], bool] | None:
    """``works(side)`` computed from the layers' shape arithmetic, without running them; None when
    a layer's output size is not known here (the caller then probes by dry runs).

    A dry run on meta tensors imports ``torch.fx.experimental.symbolic_shapes`` (sympy, about 0.5 s
    of start-up); the registered trunks are all plain convolutions, poolings and size-preserving
    layers.
    """
    layers = list(trunk.layers) if trunk.layers is not None else []
    windows = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, trunks.L2Pool2d)
    known = windows + _SIZE_PRESERVING
    if not layers or not all(type(m) in known for m in layers):
        return None
    if any(isinstance(m, nn.Conv2d) and isinstance(m.padding, str) for m in layers):
        return None

    def works(side: int) -> bool:
        hw = [side, side]
        for layer in layers:
            if isinstance(layer, windows):
                hw = [_window_out(layer, hw[d], d) for d in (0, 1)]
            if min(hw) <= 0:
                return False
        return True

    return works


@cache
def min_input_size(backbone: str, taps: tuple[str, ...] | None = None) -> int:
    """Smallest square side the trunk accepts (every tap non-empty): by shape arithmetic for plain
    sequential trunks, else by dry runs on meta tensors (on the CPU for networks whose forward
    needs real values)."""
    spec = BACKBONES.get(backbone)
    with torch.device("meta"):
        trunk = TappedTrunk(spec.build(), taps or spec.taps).eval()
    works = _sequential_sizes(trunk) or _dry_run_sizes(trunk, spec, taps)
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


def _dry_run_sizes(
    trunk: TappedTrunk, spec: BackboneSpec, taps: tuple[str, ...] | None
) -> Callable[[int], bool]:
    """``works(side)`` by running the trunk on meta tensors, or on CPU zeros when the network's
    forward needs real values."""
    device = "meta"
    try:
        with torch.no_grad():
            trunk(torch.empty(1, 3, 224, 224, device="meta"))
    except (RuntimeError, NotImplementedError):  # needs real values: probe on the CPU instead
        trunk, device = TappedTrunk(spec.build(), taps or spec.taps).eval(), "cpu"

    def works(size: int) -> bool:
        try:
            with torch.no_grad():
                feats = trunk(torch.zeros(1, 3, size, size, device=device))
            return all(f.shape[-1] > 0 and f.shape[-2] > 0 for f in feats)
        except (RuntimeError, ValueError):  # too small for a kernel, a pooling or a norm layer
            return False

    return works


def describe_backbone(
    name: str, size: int = 224, depth: int = 2
) -> list[tuple[str, str, tuple[int, ...] | None]]:
    """Modules of a backbone with their output shapes, to choose taps; a dry run on meta tensors.

    Args:
        name: Registered or zoo backbone name, e.g. ``torchvision:resnet18``.
        size: Side of the square dry-run input.
        depth: Modules up to this many name parts (``layer1`` is 1, ``layer1.0`` is 2).

    Returns:
        ``(module name, class name, output shape or None)`` in registration order.

    Example:
        >>> describe_backbone("torchvision:resnet18", depth=1)[4]
        ('layer1', 'Sequential', (1, 64, 56, 56))
    """
    spec = BACKBONES.get(name)
    with torch.device("meta"):
        model = spec.build().eval()
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    modules = [(n, m) for n, m in model.named_modules() if n and n.count(".") < depth]
    for module_name, module in modules:

        def hook(mod, args, output, key=module_name):
            if isinstance(output, torch.Tensor):
                shapes[key] = tuple(output.shape)

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
    except Exception:  # a head that needs real values: the shapes seen so far still help
        pass
    finally:
        for handle in handles:
            handle.remove()
    return [(n, type(m).__name__, shapes.get(n)) for n, m in modules]
