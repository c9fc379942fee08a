"""Networks trained on other classes (a CIFAR-100 student, an ImageNet model) scored on a CIFAR-10 source.

Their logits have another width, so argmax over them compares nothing meaningful with CIFAR-10 labels; such a
checkpoint is refused unless the user says which output stands for each CIFAR-10 class
(``--class-map 0,1,...``: ten output indices in CIFAR-10 class order). The mapped model returns those ten
logits, so accuracies, attacks and every metric see a ten-class model; the map is part of its spec, hence of
its record and its logits-cache key.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from libkd_bench.core.errors import BenchError
from libkd_bench.models.loading.load import LoadedModel
from libkd_bench.models.loading.wrapped import NormalizedClassifier

CLASS_MAP_FLAG = "--class-map"


class ClassMapped(nn.Module):
    """The wrapped network's logits at ``indices``, in that order."""

    def __init__(self, network: nn.Module, indices: tuple[int, ...]) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("indices", torch.tensor(indices, dtype=torch.long), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images).index_select(1, self.indices)


def parse_class_map(text: str, outputs: int, classes: int) -> tuple[int, ...]:
    """``"3,7,..."`` -> distinct output indices, one per source class, each below ``outputs``."""
    example = f"{CLASS_MAP_FLAG} " + ",".join(str(i) for i in range(classes))
    try:
        indices = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise BenchError(f"{CLASS_MAP_FLAG} {text!r} must be comma-separated output indices, e.g. {example}") from None
    if len(indices) != classes:
        raise BenchError(f"{CLASS_MAP_FLAG} names {len(indices)} outputs for {classes} classes; give one per class")
    if len(set(indices)) != len(indices) or not all(0 <= i < outputs for i in indices):
        raise BenchError(f"{CLASS_MAP_FLAG} indices must be distinct and in 0..{outputs - 1}, got {text!r}")
    return indices


def match_source_classes(loaded: LoadedModel, classes: int, class_map: str | None, name: str) -> LoadedModel:
    """``loaded`` as it is when it predicts ``classes`` classes, mapped when ``class_map`` says how, else refused."""
    outputs = loaded.spec.num_classes
    if class_map is None:
        if outputs != classes:
            raise BenchError(
                f"{name} predicts {outputs} classes but the source has {classes}; score it on a {outputs}-class "
                f"source, or name the output of each of the {classes} classes with {CLASS_MAP_FLAG} I0,...,"
                f"I{classes - 1}"
            )
        return loaded
    indices = parse_class_map(class_map, outputs, classes)
    spec = dataclasses.replace(loaded.spec, num_classes=classes, class_map=indices)
    if isinstance(loaded.module, NormalizedClassifier):  # in place: the network keeps its place in the module tree
        loaded.module.map_classes(indices)
        return dataclasses.replace(loaded, spec=spec)
    return dataclasses.replace(loaded, module=ClassMapped(loaded.module, indices).eval(), spec=spec)
