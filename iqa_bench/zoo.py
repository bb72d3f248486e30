"""Backbones from model zoos, resolved by name: ``torchvision:<model>`` and ``timm:<model>``.

Any torchvision classification model (``torchvision.models.list_models(module=torchvision.models)``)
and, when the ``timm`` package is installed, any timm model can serve as a trunk without a
registration. The name may pin a weights entry: ``torchvision:resnet50@IMAGENET1K_V1`` (default: the
enum's ``DEFAULT``). Zoo backbones declare no taps: metrics name them (``taps: [layer1, layer2]``).

- torchvision: the network is built with ``weights=None``; pretrained weights are the weights
  enum's checkpoint (its URL, downloaded and hash-checked by :mod:`iqa_bench.weights`, or found as
  ``$IQA_BENCH_WEIGHTS/<file name of the URL>``), input normalisation is the enum's
  ``transforms()`` mean/std.
- timm: the network is built with ``pretrained=False``; pretrained weights are fetched by timm
  itself (Hugging Face hub cache), their SHA-256 is that of the loaded tensors; normalisation is the
  model's ``pretrained_cfg`` mean/std.

Example:
    >>> spec = resolve_zoo_backbone("torchvision:resnet18")
    >>> spec.weights.url, spec.mean
    ('https://download.pytorch.org/models/resnet18-f37072fd.pth', (0.485, 0.456, 0.406))
"""

from __future__ import annotations

import hashlib
from functools import cache, partial

import torch
import torchvision
from torch import nn

from .errors import InputError, WeightsUnavailableError
from .registry import suggest
from .trunk_spec import BackboneSpec, TrunkWeights

ZOOS = ("torchvision", "timm")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_zoo_name(name: str) -> bool:
    """True for ``<zoo>:<model>`` names (``torchvision:resnet18``, ``timm:resnet18``)."""
    return name.partition(":")[0] in ZOOS and bool(name.partition(":")[2])


@cache
def resolve_zoo_backbone(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of a zoo name (built lazily, no download).

    Raises:
        InputError: Unknown zoo, model or weights entry (with close matches), or timm missing.
    """
    zoo, _, model = name.partition(":")
    if zoo == "torchvision":
        return _torchvision_spec(name, model)
    if zoo == "timm":
        return _timm_spec(name, model)
    raise InputError(
        f"backbone {name!r}: unknown model zoo {zoo!r}; use one of {', '.join(ZOOS)}, "
        "e.g. torchvision:resnet18."
    )


def _build_torchvision(model: str) -> nn.Module:
    return torchvision.models.get_model(model, weights=None)


def _torchvision_spec(name: str, text: str) -> BackboneSpec:
    model, _, tag = text.partition("@")
    models = torchvision.models.list_models(module=torchvision.models)
    if model not in models:
        raise InputError(
            f"backbone {name!r}: {model!r} is not a torchvision classification model."
            f"{suggest(model, models)} See torchvision.models.list_models()."
        )
    weights = None
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    try:
        enum = torchvision.models.get_model_weights(model)
    except (ValueError, KeyError):
        enum = None
    if enum is not None:
        if tag:
            entries = [w.name for w in enum]
            if tag not in entries:
                raise InputError(
                    f"backbone {name!r}: weights {tag!r} unknown for {model}; "
                    f"choose one of {', '.join(entries)}."
                )
            entry = enum[tag]
        else:
            entry = enum.DEFAULT
        stem = entry.url.rsplit("/", 1)[-1].removesuffix(".pth")
        weights = TrunkWeights(stem=stem, url=entry.url, keep_prefix="")
        transform = entry.transforms()
        mean = tuple(float(v) for v in getattr(transform, "mean", IMAGENET_MEAN))
        std = tuple(float(v) for v in getattr(transform, "std", IMAGENET_STD))
    elif tag:
        raise InputError(f"backbone {name!r}: torchvision has no weights for {model}.")
    return BackboneSpec(
        name=name,
        build=partial(_build_torchvision, model),
        taps=(),
        weights=weights,
        mean=mean,
        std=std,
    )


def _import_timm():
    try:
        import timm
    except ImportError as exc:
        raise InputError(
            "timm backbones need the 'timm' package, which is not installed. Fix: pip install timm "
            "(or use a torchvision:<model> backbone)."
        ) from exc
    return timm


def _build_timm(model: str) -> nn.Module:
    return _import_timm().create_model(model, pretrained=False)


def _timm_state(model: str) -> tuple[dict[str, torch.Tensor], str]:
    """Pretrained timm weights (fetched by timm) and the SHA-256 of their tensors."""
    timm = _import_timm()
    try:
        net = timm.create_model(model, pretrained=True)
    except Exception as exc:  # hub, network and file errors all mean "not available"
        raise WeightsUnavailableError(
            f"timm weights of {model!r} unavailable ({type(exc).__name__}: {exc}). timm downloads "
            "them from the Hugging Face hub into HF_HOME (default ~/.cache/huggingface); fetch "
            "them once online, or use pretrained: false."
        ) from exc
    state = net.state_dict()
    return state, state_digest(state)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of a state dict's tensors (sorted by name)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _timm_spec(name: str, model: str) -> BackboneSpec:
    timm = _import_timm()
    available = timm.list_models()
    if model not in available and model.split(".")[0] not in available:
        raise InputError(
            f"backbone {name!r}: {model!r} is not a timm model.{suggest(model, available)} "
            "See timm.list_models()."
        )
    with torch.device("meta"):
        net = timm.create_model(model, pretrained=False)
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    mean = tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in cfg.get("std", IMAGENET_STD))
    return BackboneSpec(
        name=name,
        build=partial(_build_timm, model),
        taps=(),
        weights=None,
        mean=mean,
        std=std,
        pretrained_state=partial(_timm_state, model),
    )
