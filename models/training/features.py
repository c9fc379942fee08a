"""Intermediate features of student and teacher, read through forward hooks on named stages.

Feature distillation (FitNet, AT) compares stage outputs of the student and the teacher on the same augmented
batch. The architectures stay as they are: a :class:`FeatureTap` hooks the named submodules (for the CIFAR
ResNets the stages ``layer1``, ``layer2``, ``layer3``, whose outputs are the post-ReLU stage features that
mdistiller's ``feats[1:]`` are) and keeps their last outputs until taken. A stage name matches a submodule whose
qualified name is the name or ends with ``.name``, so the same names reach the bare student network and the
teacher inside its normalising wrapper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

import torch
from torch import nn

from libkd_bench.core.errors import BenchError

RESNET_STAGES = ("layer1", "layer2", "layer3")  # models/architectures/cifar_resnet.py, both layouts
PROBE_SIDE = 32


def find_stage(module: nn.Module, name: str, what: str) -> nn.Module:
    """The submodule of ``module`` called ``name`` (or ``*.name``, the shallowest); a BenchError when absent."""
    matches = [(qual.count("."), qual, sub) for qual, sub in module.named_modules() if qual.split(".")[-1] == name]
    if not matches:
        raise BenchError(f"{what} has no stage named {name!r}; feature methods need a network with {name}")
    depth = min(m[0] for m in matches)
    shallowest = [m for m in matches if m[0] == depth]
    if len(shallowest) > 1:
        raise BenchError(f"{what}: stage name {name!r} is ambiguous ({', '.join(m[1] for m in shallowest)})")
    return shallowest[0][2]


class FeatureTap:
    """Forward hooks that keep the latest outputs of ``stages`` of ``module``; a context manager that unhooks.

    Args:
        module: the network (or a wrapper around it).
        stages: stage names, in the order :meth:`take` returns them.
        what: how errors name the network (``student resnet20_a``).
    """

    def __init__(self, module: nn.Module, stages: Sequence[str], what: str) -> None:
        self.stages = tuple(stages)
        self._outputs: dict[str, torch.Tensor] = {}
        self._handles = [
            find_stage(module, name, what).register_forward_hook(self._keeper(name)) for name in self.stages
        ]

    def _keeper(self, name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            self._outputs[name] = output

        return keep

    def take(self) -> list[torch.Tensor]:
        """The stages' outputs of the last forward pass, in stage order; forgets them."""
        missing = [name for name in self.stages if name not in self._outputs]
        if missing:
            raise RuntimeError(f"no output captured for stages {missing}; run a forward pass first")
        outputs = [self._outputs[name] for name in self.stages]
        self._outputs.clear()
        return outputs

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._outputs.clear()

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.remove()


@torch.no_grad()
def stage_shapes(module: nn.Module, stages: Sequence[str], what: str, scale: float = 1.0) -> list[tuple[int, ...]]:
    """(C, H, W) of each stage's output for one 32x32 input, measured in eval mode (no statistics change).

    ``scale`` is the constant input value: 0.5 for a wrapped model ([0, 1] images), 0 for a bare network.
    """
    was_training = module.training
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    module.eval()
    try:
        with FeatureTap(module, stages, what) as tap:
            module(torch.full((1, 3, PROBE_SIDE, PROBE_SIDE), scale, device=device))
            return [tuple(t.shape[1:]) for t in tap.take()]
    finally:
        module.train(was_training)
