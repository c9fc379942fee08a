"""The sanity pass before scoring: is the model fed the normalisation it was trained with?

A model given the wrong mean/std loses much of its accuracy without any error, and at least three CIFAR-10 std
vectors are in common use (see :data:`libkd_bench.models.spec.PRESET_STATS`), besides ImageNet's and networks
that normalise inside themselves. So before any set is scored, the clean accuracy of the first
:data:`CHECK_IMAGES` clean images is measured under the chosen normalisation and under every known preset
whose statistics differ from it. When another preset beats the chosen one by at least :data:`MARGIN` and is
itself well above chance (:data:`CHANCE_MULTIPLE` times it, so that two near-random figures never stop a run),
scoring stops with one line naming both figures and the flag that picks the better preset.

An ensemble's members each bring their own normalisation; it is not checked here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS, Preset, Triple
from libkd_bench.models.loading.load import LoadedModel
from libkd_bench.models.loading.wrapped import NormalizedClassifier
from libkd_bench.models.spec import ModelSpec

CHECK_IMAGES = 256
MARGIN = 0.10  # accuracy, on the [0, 1] scale
CHANCE_MULTIPLE = 3
SAME_STATS_TOLERANCE = 1e-3  # presets this close to the chosen mean/std would score the same
SKIP_FLAG = "--skip-preprocess-check"


@dataclass(frozen=True)
class PreprocessingCheck:
    """Clean accuracy of the first ``images`` clean images under each normalisation tried.

    Attributes:
        chosen: the label of the normalisation the model is scored with (a preset name, or ``mean=...,std=...``).
        accuracies: label -> accuracy in [0, 1]; the chosen one first.
        images: how many images were classified per normalisation.
        num_classes: the model's class count (chance is its inverse).
    """

    chosen: str
    accuracies: Mapping[str, float]
    images: int
    num_classes: int

    def best_alternative(self) -> tuple[str, float] | None:
        """The preset scoring best other than the chosen normalisation, or None when none was tried."""
        others = [(label, acc) for label, acc in self.accuracies.items() if label != self.chosen]
        return max(others, key=lambda item: item[1]) if others else None

    def problem(self) -> str | None:
        """The one-line complaint when another preset is clearly better, else None."""
        best = self.best_alternative()
        if best is None:
            return None
        label, accuracy = best
        chosen = self.accuracies[self.chosen]
        if accuracy - chosen < MARGIN or accuracy < CHANCE_MULTIPLE / self.num_classes:
            return None
        return (
            f"the model scores {chosen:.1%} on the first {self.images} clean images with normalisation "
            f"{self.chosen} but {accuracy:.1%} with preset {label}, so {self.chosen} is likely not what it was "
            f"trained with; rerun with --preprocess {label} (or {SKIP_FLAG} to score with {self.chosen} anyway)"
        )


def normalisation_label(spec: ModelSpec) -> str:
    """A spec's normalisation as the user would name it: the preset, or ``mean=R,G,B,std=R,G,B``."""
    if spec.preset is not None:
        return spec.preset.value
    return "mean={},std={}".format(",".join(f"{v:g}" for v in spec.mean), ",".join(f"{v:g}" for v in spec.std))


def _close(a: tuple[Triple, Triple], b: tuple[Triple, Triple]) -> bool:
    return all(
        abs(x - y) <= SAME_STATS_TOLERANCE for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True)
    )


def candidate_normalisations(spec: ModelSpec) -> dict[str, tuple[Triple, Triple]]:
    """The chosen normalisation first, then every preset whose statistics differ from it."""
    chosen = (spec.mean, spec.std)
    candidates = {normalisation_label(spec): chosen}
    for preset in Preset:
        if not _close(PRESET_STATS[preset], chosen):
            candidates.setdefault(preset.value, PRESET_STATS[preset])
    return candidates


@contextlib.contextmanager
def _normalised_with(module: NormalizedClassifier, stats: tuple[Triple, Triple]) -> Iterator[None]:
    """``module`` normalising with ``stats`` for the duration (its own buffers restored afterwards)."""
    saved = module.mean, module.std
    try:
        module.mean = torch.tensor(stats[0], device=saved[0].device).view(1, 3, 1, 1)
        module.std = torch.tensor(stats[1], device=saved[1].device).view(1, 3, 1, 1)
        yield
    finally:
        module.mean, module.std = saved


def _accuracy(module: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int) -> float:
    device = next((b.device for b in module.buffers()), torch.device("cpu"))
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch):
            chunk = torch.from_numpy(np.array(images[start : start + batch], dtype=np.uint8)).to(device)
            logits = module(chunk.permute(0, 3, 1, 2).float().div_(255.0))
            correct += int((logits.argmax(1).cpu().numpy() == labels[start : start + batch]).sum())
    return correct / len(images)


def check_preprocessing(
    loaded: LoadedModel, images: np.ndarray, labels: np.ndarray, batch_size: int = 128
) -> PreprocessingCheck | None:
    """Clean accuracy of ``loaded`` on uint8 (N, H, W, 3) ``images`` under each candidate normalisation.

    Only the first :data:`CHECK_IMAGES` images are used. Returns None for a model that is not one wrapped
    network (an ensemble) or when there are no images.
    """
    module = loaded.module
    if not isinstance(module, NormalizedClassifier) or len(images) == 0:
        return None
    images, labels = images[:CHECK_IMAGES], np.asarray(labels[:CHECK_IMAGES])
    accuracies = {}
    for label, stats in candidate_normalisations(loaded.spec).items():
        with _normalised_with(module, stats):
            accuracies[label] = _accuracy(module, images, labels, batch_size)
    return PreprocessingCheck(normalisation_label(loaded.spec), accuracies, len(images), loaded.spec.num_classes)


def require_plausible_preprocessing(
    loaded: LoadedModel, images: np.ndarray, labels: np.ndarray, batch_size: int = 128
) -> PreprocessingCheck | None:
    """:func:`check_preprocessing`, raising a one-line BenchError when another preset is clearly better."""
    check = check_preprocessing(loaded, images, labels, batch_size)
    problem = None if check is None else check.problem()
    if problem is not None:
        raise BenchError(problem)
    return check
