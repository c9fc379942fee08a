"""A network held in memory (the end of a training script) as a :class:`~libkd_bench.models.loading.load.LoadedModel`.

The network takes float images in [0, 1]; its preprocessing is stated by the caller, never guessed:
``none`` when it normalises its input itself, a preset name (``cifar10``...), six numbers as ``--preprocess``
takes them, or a ``(mean, std)`` pair of RGB triples on the [0, 1] scale. It is wrapped exactly like a loaded
checkpoint's network, so scoring cannot tell the two apart.

Identity (what a run record keeps in ``checkpoint`` and keys the logits cache by): ``sha256`` is the SHA-256 of
the network's state dict, taken key by key in sorted order over the key, dtype, shape and raw bytes of every
tensor (parameters and buffers); ``format`` is ``in-memory``; ``path`` is ``in-memory:<class name>``;
``size_bytes`` is the state dict's tensor bytes; ``metadata.class`` is the network's qualified class name. The
same weights in the same class always give the same identity, on any device.

Architecture: the registry name when the network is an instance of the class a registered architecture builds
and its state dict fits that architecture (so the spec, the attention layer and the record equal those of a
checkpoint of the same weights); otherwise the network's qualified class name.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import Preset
from libkd_bench.models.loading.checkpoints import CheckpointInfo
from libkd_bench.models.loading.detect import Match, detect_architecture
from libkd_bench.models.loading.load import LoadedModel
from libkd_bench.models.loading.wrapped import NormalizedClassifier, output_tensors
from libkd_bench.models.spec import CIFAR_INPUT_SIZE, SpecOverrides, parse_normalisation

IN_MEMORY_FORMAT = "in-memory"
IN_MEMORY_PREFIX = "in-memory:"
Preprocess = str | Preset | tuple[Sequence[float], Sequence[float]]
PREPROCESS_HINT = (
    "state its preprocessing: preprocess='none' when the network normalises its input itself, a preset "
    f"({', '.join(p.value for p in Preset)}), or (mean, std) as RGB triples on the [0, 1] scale"
)


def normalisation_layer(preprocess: Preprocess | None) -> SpecOverrides:
    """The spec layer ``preprocess`` states; None states nothing (a checkpoint then keeps its own)."""
    if preprocess is None:
        return SpecOverrides()
    if isinstance(preprocess, Preset):
        return SpecOverrides(preset=preprocess)
    if isinstance(preprocess, str):
        preset, mean, std = parse_normalisation(preprocess)
        return SpecOverrides(preset=preset, mean=mean, std=std)
    if isinstance(preprocess, Sequence) and len(preprocess) == 2:
        mean, std = preprocess
        return SpecOverrides(mean=tuple(mean), std=tuple(std))  # type: ignore[arg-type]
    raise BenchError(f"preprocess {preprocess!r} is not understood; {PREPROCESS_HINT}")


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor of ``state`` in key order: key, dtype, shape, then its raw bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _qualified_name(network: nn.Module) -> str:
    kind = type(network)
    return f"{kind.__module__}.{kind.__qualname__}"


def _registered_match(network: nn.Module, state: Mapping[str, torch.Tensor]) -> Match | None:
    """The one registered architecture whose layout ``state`` fits and whose builder makes ``network``'s class."""
    matches = detect_architecture([("", state)])
    if len(matches) != 1:
        return None
    match = matches[0]
    with torch.device("meta"):
        built = match.entry.build(match.num_classes, **match.kwargs)
    return match if type(built) is type(network) else None


def _output_width(network: nn.Module, device: torch.device) -> int:
    """The logits width of ``network`` on two blank CIFAR images."""
    with torch.no_grad():
        output = network(torch.zeros(2, 3, CIFAR_INPUT_SIZE, CIFAR_INPUT_SIZE, device=device))
    widths = {int(t.shape[1]) for t in output_tensors(output) or [] if t.dim() == 2 and t.shape[0] == 2}
    if len(widths) != 1:
        raise BenchError(
            f"the in-memory network returned {type(output).__name__}, not one (N, num_classes) logits tensor; "
            "give a network whose forward returns the logits"
        )
    return widths.pop()


def in_memory_model(
    network: nn.Module, preprocess: Preprocess | None, device: str | torch.device = "cpu"
) -> LoadedModel:
    """``network`` (taking [0, 1] images) wrapped as a loaded model; see the module docstring.

    The network is copied first: the caller's keeps its device, its train/eval mode and its weights.

    Raises:
        BenchError: no stated preprocessing, a preprocessing that is not understood, or a network whose output
            holds no logits.
    """
    if not isinstance(network, nn.Module):
        raise BenchError(f"expected a torch.nn.Module, a checkpoint path or zoo:NAME, got {type(network).__name__}")
    if preprocess is None:
        raise BenchError(f"an in-memory model needs its preprocessing stated; {PREPROCESS_HINT}")
    normalisation = normalisation_layer(preprocess)
    target = torch.device(device)
    copied = copy.deepcopy(network).eval().to(target)
    state = copied.state_dict()
    match = _registered_match(copied, state)
    if match is not None:
        native = SpecOverrides(input_size=match.kwargs.get("img_size"))
        layers = match.entry.defaults.then(native).then(normalisation).then(SpecOverrides(arch_kwargs=match.kwargs))
        spec = layers.resolve(match.name, match.num_classes)
    else:
        spec = normalisation.resolve(_qualified_name(copied), _output_width(copied, target))
    sha256 = state_dict_sha256(state)
    info = CheckpointInfo(
        path=f"{IN_MEMORY_PREFIX}{type(copied).__qualname__}",
        sha256=sha256,
        format=IN_MEMORY_FORMAT,
        metadata={"class": _qualified_name(copied)},
        size_bytes=sum(t.numel() * t.element_size() for t in state.values()),
    )
    module = NormalizedClassifier(copied, spec).eval().to(target)
    return LoadedModel(
        module=module,
        spec=spec,
        checkpoint=info,
        num_parameters=sum(p.numel() for p in copied.parameters()),
        arch_detected=match is not None,
    )
