"""What is in a checkpoint: format, where the weights sit, tensors, architecture, preprocessing, stored metadata.

Without any model option, the architecture is detected first (on the meta device); a checkpoint that none or
several architectures fit is still reported, with the reason. When one fits, or options name one, the model is
loaded exactly as scoring would load it, so a report with an architecture is proof the checkpoint loads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from libkd_bench.core.errors import BenchError
from libkd_bench.models.loading.checkpoints import CheckpointInfo, open_checkpoint
from libkd_bench.models.loading.detect import detect_architecture
from libkd_bench.models.loading.load import load_opened
from libkd_bench.models.registry import get_architecture
from libkd_bench.models.spec import ModelSpec, SpecOverrides
from libkd_bench.models.user_architectures import load_arch_module


@dataclass(frozen=True)
class CheckpointReport:
    """The result of inspecting a checkpoint.

    Attributes:
        info: identity, format, location of the weights, stored metadata.
        num_tensors: tensors in the state dict.
        num_values: elements in those tensors (parameters and buffers such as BatchNorm statistics).
        spec: the architecture and preprocessing it loads with; None when no single architecture fits.
        num_parameters: learnable parameters of that architecture; None with ``spec``.
        arch_detected: True when the architecture was detected rather than named.
        candidates: architectures that fit, when several do.
        detection_note: why there is no spec, when there is none.
        layout: the public code whose key layout the architecture reproduces (repository@commit and module),
            with ``spec``.
    """

    info: CheckpointInfo
    num_tensors: int
    num_values: int
    spec: ModelSpec | None = None
    num_parameters: int | None = None
    arch_detected: bool = False
    candidates: tuple[str, ...] = ()
    detection_note: str = ""
    layout: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.info.to_json(),
            "num_tensors": self.num_tensors,
            "num_values": self.num_values,
            "num_parameters": self.num_parameters,
            "architecture": None if self.spec is None else self.spec.arch,
            "arch_detected": self.arch_detected,
            "spec": None if self.spec is None else self.spec.to_json(),
            "candidates": list(self.candidates),
            "detection_note": self.detection_note,
            "layout": self.layout,
        }


def inspect_checkpoint(
    checkpoint: str | os.PathLike[str],
    *,
    unsafe_pickle: bool = False,
    arch_modules: Sequence[str] = (),
    overrides: SpecOverrides | None = None,
    part: str | None = None,
) -> CheckpointReport:
    """Inspect ``checkpoint`` (a path or ``zoo:NAME``); unreadable files and failed loads raise a BenchError.

    Args:
        checkpoint: file path or ``zoo:NAME``.
        unsafe_pickle: allow unpickling arbitrary objects (trusted files only).
        arch_modules: user architecture files to import first.
        overrides: model options (as from the command line); any option makes the load mandatory.
        part: ``student`` (default) or ``teacher``: the network of a distiller's checkpoint to inspect.
    """
    for reference in arch_modules:
        load_arch_module(reference)
    caller = overrides or SpecOverrides()
    opened = open_checkpoint(checkpoint, unsafe_pickle=unsafe_pickle, part=part)
    weights = opened.weights.stripped
    counts = {"num_tensors": len(weights), "num_values": sum(t.numel() for t in weights.values())}
    requested = opened.defaults.then(caller)
    if requested.arch is None and caller == SpecOverrides():
        note = ""
        try:
            matches = detect_architecture(opened.weights.layouts, requested.arch_kwargs)
        except BenchError as exc:  # e.g. a ViT whose head count no weight reveals
            matches, note = [], str(exc)
        if len(matches) != 1:
            if not note:
                note = (
                    "several architectures fit; pick one with --arch"
                    if matches
                    else ("no registered architecture fits; name one with --arch, timm:NAME or --arch-module")
                )
            candidates = tuple(m.label() for m in matches)
            return CheckpointReport(opened.info(), **counts, candidates=candidates, detection_note=note)
    loaded = load_opened(opened, caller)
    return CheckpointReport(
        loaded.checkpoint,
        **counts,
        spec=loaded.spec,
        num_parameters=loaded.num_parameters,
        arch_detected=loaded.arch_detected,
        layout=get_architecture(loaded.spec.arch).source,
    )
