"""Finding the weights inside what a checkpoint file held, and the training metadata stored beside them.

KD repositories wrap their weights in many ways: a bare state dict; a dict holding it under ``state_dict``,
``model_state_dict``, ``model``, ``net`` or ``student`` (nested any number of times, e.g.
``{"model": {"state_dict": ...}}``), perhaps as a whole module; keys prefixed by ``module.``
(DataParallel), ``_orig_mod.`` (torch.compile), ``model.`` or ``student.`` (KD wrappers). The first wrapper key
present, in that order, is followed. A prefix is removed while every key carries it; since a network may
legitimately name its own top module ``model``, the loader keeps each stripping stage as a candidate layout
(:attr:`StateDict.layouts`) and uses the one whose keys the architecture expects.

A distiller's training checkpoint holds several networks in one state dict (mdistiller's
``{"model": distiller.state_dict()}``: ``module.student.*`` beside ``module.teacher.*`` and connector modules such
as ``module.conv_reg.*``). Once the common prefixes are removed, keys whose first name is ``student`` or
``teacher`` mark such a dict: one *part* is kept (the student unless the caller names the teacher) and the other
top-level modules are dropped, their names kept in :attr:`StateDict.other_parts`. A dict holding the two networks
under ``student`` and ``teacher`` keys is read the same way.

Metadata are the top-level entries that are not weights: numbers, strings, one-element tensors (RepDistiller
stores ``best_acc`` as a tensor), the run's argparse.Namespace as a dict; anything holding tensors (optimiser
state, EMA weights) is named in ``other_entries`` but not copied.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from libkd_bench.core.errors import BenchError

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "student")
PREFIXES = ("module.", "_orig_mod.", "model.", "student.", "teacher.", "student_model.", "teacher_model.")
KD_PARTS = ("student", "teacher")  # the networks of a distiller's checkpoint; the first is scored by default
# the module names a part goes by: torchdistill keeps an auxiliary wrapper's student under ``student_model``
PART_MODULES = {"student": ("student", "student_model"), "teacher": ("teacher", "teacher_model")}
OPTIONAL_KEY_SUFFIXES = (".num_batches_tracked",)  # absent from checkpoints of PyTorch < 0.4.1
_SKIP = object()  # marks metadata values that hold weights


@dataclass(frozen=True)
class StateDict:
    """The weights found in a checkpoint.

    Attributes:
        layouts: (stripped prefix, tensors) from the keys as stored to every prefix removed, in that order.
        location: wrapper keys followed to reach the weights, joined by "/" ("" for a bare state dict).
        metadata: JSON-able training metadata (epoch, best accuracy, the run's arguments...).
        other_entries: top-level keys that were neither the weights nor metadata (optimizer, EMA...).
        part: for a distiller's checkpoint, the network kept (``student`` or ``teacher``); "" otherwise.
        other_parts: the networks and modules of a distiller's checkpoint that were dropped (``teacher``,
            connectors such as ``conv_reg``), sorted.
    """

    layouts: tuple[tuple[str, Mapping[str, torch.Tensor]], ...]
    location: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    other_entries: tuple[str, ...] = ()
    part: str = ""
    other_parts: tuple[str, ...] = ()

    @property
    def stripped(self) -> Mapping[str, torch.Tensor]:
        """The weights with every common prefix removed."""
        return self.layouts[-1][1]


def _is_tensor_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def _as_weights(value: Any) -> Any:
    return value.state_dict() if isinstance(value, torch.nn.Module) else value


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of a metadata value, or ``_SKIP`` for anything holding weights."""
    if isinstance(value, torch.Tensor):
        return _jsonable(value.item()) if value.numel() == 1 else _SKIP
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy scalars
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, Mapping) and depth < 3:
        items = {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
        return _SKIP if any(v is _SKIP for v in items.values()) else items
    if isinstance(value, (list, tuple)) and depth < 3:
        items = [_jsonable(v, depth + 1) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items
    return str(value) if depth else _SKIP


def _layouts(weights: Mapping[str, torch.Tensor]) -> tuple[tuple[str, Mapping[str, torch.Tensor]], ...]:
    layouts = [("", dict(weights))]
    while True:
        stripped, current = layouts[-1]
        prefix = next((p for p in PREFIXES if all(k.startswith(p) for k in current)), None)
        if prefix is None:
            return tuple(layouts)
        layouts.append((stripped + prefix, {k[len(prefix) :]: v for k, v in current.items()}))


def _select_part(
    weights: Mapping[str, torch.Tensor], part: str | None, what: str
) -> tuple[Mapping[str, torch.Tensor], str, tuple[str, ...]]:
    """(the chosen part's weights, keys as stored; the part; the dropped modules) of a distiller's state dict, or
    ``weights`` unchanged with no part when it holds one network."""
    stripped = _layouts(weights)[-1]
    names = {key.split(".", 1)[0] for key in stripped[1]}
    modules = {part_name: next((m for m in aliases if m in names), None) for part_name, aliases in PART_MODULES.items()}
    if not any(modules.values()) or len(names) == 1:
        if part not in (None, KD_PARTS[0]):  # a lone network passes for the student
            raise BenchError(f"--part {part}: {what} holds one network, not a student and a teacher; drop --part")
        return weights, "", ()
    chosen = part or KD_PARTS[0]
    module = modules[chosen]
    if module is None:
        held = ", ".join(sorted(names))
        raise BenchError(f"{what} holds no {chosen} network (its modules: {held}); choose another --part")
    prefix = f"{stripped[0]}{module}."
    kept = {key: value for key, value in weights.items() if key.startswith(prefix)}
    return kept, chosen, tuple(sorted(names - {module}))


def find_state_dict(content: Any, what: str, part: str | None = None) -> StateDict:
    """The weights and metadata of a checkpoint's unpickled ``content``; ``what`` names it in errors.

    ``part`` picks the network of a distiller's checkpoint (``student``, the default, or ``teacher``); a checkpoint
    holding one network is its own student, and asking it for the teacher is an error.
    """
    if part is not None and part not in KD_PARTS:
        raise BenchError(f"unknown part {part!r}; known: {', '.join(KD_PARTS)}")
    content = _as_weights(content)
    if not isinstance(content, Mapping):
        raise BenchError(f"{what} holds a {type(content).__name__}, not a state dict or a dict holding one")
    top, location, node = content, [], content
    held_parts: tuple[str, ...] = ()
    while not _is_tensor_mapping(node):
        if isinstance(node, Mapping) and sum(k in node for k in KD_PARTS) == len(KD_PARTS):
            held_parts = KD_PARTS  # the networks held side by side: follow the chosen one
        keys = (part or KD_PARTS[0], *WRAPPER_KEYS) if held_parts else WRAPPER_KEYS
        key = next((k for k in keys if isinstance(node, Mapping) and k in node), None)
        if key is None:
            keys = ", ".join(map(str, list(node)[:8])) if isinstance(node, Mapping) else type(node).__name__
            raise BenchError(
                f"{what} has no weights: found {keys or 'an empty dict'}, expected a state dict or one under "
                f"{', '.join(WRAPPER_KEYS)}"
            )
        location.append(key)
        node = _as_weights(node[key])
    if held_parts and location and location[-1] in KD_PARTS:
        chosen_part, other_parts = location[-1], tuple(p for p in KD_PARTS if p != location[-1])
    else:
        node, chosen_part, other_parts = _select_part(node, part, what)
    metadata, others = {}, []
    if location:
        for key, value in top.items():
            if key == location[0]:
                continue
            converted = _jsonable(value)
            if converted is _SKIP:
                others.append(str(key))
            else:
                metadata[str(key)] = converted
    return StateDict(_layouts(node), "/".join(location), metadata, tuple(others), chosen_part, other_parts)


def shapes_of(weights: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape, without the optional keys."""
    return {k: tuple(v.shape) for k, v in weights.items() if not k.endswith(OPTIONAL_KEY_SUFFIXES)}


def non_finite_tensors(weights: Mapping[str, torch.Tensor]) -> list[str]:
    """Keys of floating-point tensors holding NaN or infinity (a diverged run or a damaged file)."""
    return [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
