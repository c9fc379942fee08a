"""``load_model``: from a checkpoint reference to a wrapped, validated model in eval mode.

Steps: import user architectures; read the checkpoint and find its weights; refuse non-finite weights; settle
the architecture (the one asked for, else detected from keys and shapes) and the class count (from the
checkpoint's classifier; a caller's different count is an error); build the network and load the weights
with ``strict=True``; resolve the spec (architecture defaults < zoo entry < sidecar < caller); wrap, move to
the device, and run one probe batch to prove the output is one finite (N, num_classes) tensor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from libkd_bench.core.errors import BenchError
from libkd_bench.core.torch_runtime import torch_threads
from libkd_bench.models.loading.checkpoints import CheckpointInfo, OpenedCheckpoint, open_checkpoint
from libkd_bench.models.loading.contents import non_finite_tensors, shapes_of
from libkd_bench.models.loading.detect import (
    DEFAULT_NUM_CLASSES,
    Match,
    classifier_classes,
    closest_architecture,
    describe_mismatch,
    detect_architecture,
    signature,
)
from libkd_bench.models.loading.wrapped import NormalizedClassifier
from libkd_bench.models.registry import ArchitectureEntry, get_architecture
from libkd_bench.models.spec import CIFAR_INPUT_SIZE, ModelSpec, SpecOverrides
from libkd_bench.models.user_architectures import load_arch_module


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint ready to score.

    Attributes:
        module: eval mode, on the requested device; float32 (N, 3, 32, 32) in [0, 1] -> (N, num_classes) logits.
        spec: the resolved preprocessing and architecture.
        checkpoint: the checkpoint's identity and stored metadata.
        num_parameters: learnable parameters of the network.
        arch_detected: True when the architecture was detected rather than named.
    """

    module: torch.nn.Module
    spec: ModelSpec
    checkpoint: CheckpointInfo
    num_parameters: int
    arch_detected: bool


def _caller_layer(
    arch: str | None, spec: ModelSpec | None, num_classes: int | None, overrides: SpecOverrides | None
) -> SpecOverrides:
    layer = SpecOverrides.from_spec(spec) if spec is not None else SpecOverrides()
    if spec is not None and arch is not None and arch != spec.arch:
        raise BenchError(f"arch {arch!r} contradicts the given spec's arch {spec.arch!r}; give one")
    layer = layer.then(overrides or SpecOverrides())
    return layer.then(SpecOverrides(arch=arch, num_classes=num_classes))


def _ambiguity(matches: list[Match]) -> BenchError:
    names = ", ".join(m.label() for m in matches)
    return BenchError(f"the checkpoint fits several architectures ({names}); pick one with --arch")


def _detected(opened: OpenedCheckpoint, requested: SpecOverrides) -> Match:
    layouts, options = opened.weights.layouts, requested.arch_kwargs
    matches = detect_architecture(layouts, options, requested.num_classes)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise _ambiguity(matches)
    if requested.num_classes is not None:
        regardless = detect_architecture(layouts, options)
        if len(regardless) == 1:
            raise _class_count_error(regardless[0].entry, regardless[0].num_classes, requested.num_classes)
    shapes = shapes_of(opened.weights.stripped)
    hint = closest_architecture(shapes)
    closest = ""
    if hint is not None:
        expected = signature(get_architecture(hint), DEFAULT_NUM_CLASSES).shapes
        closest = f"; closest is {hint}: {describe_mismatch(expected, shapes)}"
    raise BenchError(
        f"no registered architecture fits the checkpoint's {len(shapes)} tensors (first: {', '.join(list(shapes)[:3])})"
        f"{closest}; name one with --arch (see libkd-bench list-models), timm:NAME, or --arch-module FILE.py:BUILDER"
    )


def _class_count_error(entry: ArchitectureEntry, found: int, asked: int) -> BenchError:
    head = entry.classifier[0] if entry.classifier else "classifier"
    return BenchError(
        f"the checkpoint's classifier {head} has {found} classes but {asked} were asked for (--num-classes); "
        "drop --num-classes or use a checkpoint with that many classes"
    )


def _named(entry: ArchitectureEntry, opened: OpenedCheckpoint, requested: SpecOverrides) -> Match:
    """Fit the named architecture to the layout (prefix-stripping stage) whose keys it expects."""
    options = dict(requested.arch_kwargs)
    attempts = []
    for prefix, weights in reversed(opened.weights.layouts):
        shapes = shapes_of(weights)
        kwargs = (entry.infer_kwargs(shapes, options) if entry.infer_kwargs else None) or options
        found = classifier_classes(entry, shapes)
        if requested.num_classes is not None and found is not None and found != requested.num_classes:
            raise _class_count_error(entry, found, requested.num_classes)
        classes = requested.num_classes or found or DEFAULT_NUM_CLASSES
        try:
            expected = signature(entry, classes, kwargs).shapes
        except (TypeError, ValueError) as exc:
            raise BenchError(f"cannot build {entry.name} with options {kwargs}: {exc}") from None
        if expected == shapes:
            return Match(entry, classes, kwargs, prefix)
        attempts.append((expected, shapes))
    expected, shapes = attempts[0]
    likely = [m.label() for m in detect_architecture(opened.weights.layouts, options)]
    if not likely and (closest := closest_architecture(shapes)) is not None:
        likely = [closest]
    hint = ""
    if len(likely) == 1 and likely[0] != entry.name:
        hint = f"; it looks like {likely[0]} (--arch {likely[0]})"
    elif len(likely) > 1:
        hint = f"; it looks like one of {', '.join(likely)}"
    mismatch = describe_mismatch(expected, shapes)
    raise BenchError(f"the checkpoint does not fit architecture {entry.name}: {mismatch}{hint}")


def _network(match: Match, weights: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """The network holding ``weights``: built on the meta device and given the checkpoint's tensors (no random
    initialisation to pay for), or built normally when something stays unset (a non-persistent buffer)."""
    with torch.device("meta"):
        network = match.entry.build(match.num_classes, **match.kwargs)
    expected = network.state_dict()
    # the network's own dtypes (a float16 checkpoint runs in float32 like any other)
    typed = {k: v.to(expected[k].dtype) if k in expected else v for k, v in weights.items()}
    try:
        network.load_state_dict(typed, strict=True, assign=True)
        if any(t.is_meta for t in (*network.parameters(), *network.buffers())):
            network = match.entry.build(match.num_classes, **match.kwargs)
            network.load_state_dict(typed, strict=True)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise BenchError(f"the checkpoint's weights do not load into {match.label()}: {reason}") from None
    return network


def _probe(module: torch.nn.Module, device: torch.device, size: int) -> None:
    with torch.no_grad():
        logits = module(torch.zeros(2, 3, size, size, device=device))
    if not bool(torch.isfinite(logits).all()):
        raise BenchError("the model's logits are not finite on a blank image; the checkpoint is damaged")


def load_model(
    checkpoint: str | os.PathLike[str],
    *,
    arch: str | None = None,
    spec: ModelSpec | None = None,
    num_classes: int | None = None,
    unsafe_pickle: bool = False,
    arch_modules: Sequence[str] = (),
    device: str | torch.device = "cpu",
    overrides: SpecOverrides | None = None,
    part: str | None = None,
) -> LoadedModel:
    """Load ``checkpoint`` (a file or ``zoo:NAME``) as a wrapped model; see the module docstring.

    Args:
        checkpoint: file path or ``zoo:NAME``.
        arch: registry name, ``timm:NAME`` or a user architecture; None detects it from keys and shapes.
        spec: a complete spec to use instead of sidecar and defaults.
        num_classes: expected class count; None reads it from the checkpoint.
        unsafe_pickle: allow unpickling arbitrary objects (runs code from the file; warns).
        arch_modules: ``path.py[:builder]`` files to import before loading.
        device: where the module is placed.
        overrides: partial spec from flags; layered over the sidecar, under ``spec``/``arch``/``num_classes``.
        part: ``student`` (default) or ``teacher``: the network of a distiller's checkpoint to load.

    Raises:
        BenchError: one line, for every problem the user can fix.
    """
    for reference in arch_modules:
        load_arch_module(reference)
    caller = _caller_layer(arch, spec, num_classes, overrides)
    return load_opened(open_checkpoint(checkpoint, unsafe_pickle=unsafe_pickle, part=part), caller, device)


def load_opened(opened: OpenedCheckpoint, caller: SpecOverrides, device: str | torch.device = "cpu") -> LoadedModel:
    """:func:`load_model` for a checkpoint already read; ``caller`` is the caller's layer of the spec.

    Runs on one CPU thread: its work is many small tensor operations (finiteness checks, copies, a two-image probe)
    that gain nothing from more, while OpenMP threads waiting on busy cores can turn milliseconds into seconds.
    """
    with torch_threads(1):
        return _load_opened(opened, caller, torch.device(device))


def _load_opened(opened: OpenedCheckpoint, caller: SpecOverrides, target: torch.device) -> LoadedModel:
    bad = non_finite_tensors(opened.weights.stripped)
    if bad:
        more = f" (+{len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise BenchError(
            f"checkpoint {opened.file.path} has NaN or infinite values in {bad[0]}{more}; "
            "the training run diverged or the file is damaged"
        )
    requested = opened.defaults.then(caller)
    if requested.arch is None:
        match = _detected(opened, requested)
    else:
        match = _named(get_architecture(requested.arch), opened, requested)
    weights = dict(opened.weights.layouts)[match.layout]
    network = _network(match, weights)
    # a network built for another image size (a ViT's img_size) expects inputs of that size by default
    native = SpecOverrides(input_size=match.kwargs.get("img_size"))
    layers = match.entry.defaults.then(native).then(requested).then(SpecOverrides(arch_kwargs=match.kwargs))
    resolved = layers.resolve(match.name, match.num_classes)
    module = NormalizedClassifier(network, resolved).eval().to(target)
    _probe(module, target, CIFAR_INPUT_SIZE)
    return LoadedModel(
        module=module,
        spec=resolved,
        checkpoint=opened.info(match.layout),
        num_parameters=sum(p.numel() for p in network.parameters()),
        arch_detected=requested.arch is None,
    )
