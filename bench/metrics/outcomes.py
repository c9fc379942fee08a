"""What a model did on one set: per-image predictions per severity level, with the labels they are judged by.

A :class:`SetOutcome` is the input of every metric. It is built from cached logits (``score`` and ``rescore``
alike), so metrics never need the model. Adversarial pseudo-sets are outcomes too: their levels are the eps
values and ``indices`` names the clean images the attack was run on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from libkd_bench.metrics.formulas import correctness, log_softmax, predictions

CLEAN = "clean"
CUE_CONFLICT = "cue-conflict"
ADVERSARIAL_PREFIX = "adv-"


@dataclass(frozen=True)
class SetOutcome:
    """One run's predictions on one set.

    Attributes:
        name: set name as in the store (``clean``, ``scramble``, ``cue-conflict``) or ``adv-<attack>``.
        predicted: int64 (S, N) predicted class per severity level and image (S = 1 without levels).
        labels: int64 (N,) the class a model should predict.
        levels: severity label per level (``grid=4``, ``eps=2/255``); empty for a set without levels.
        num_classes: number of classes the model predicts over.
        images_key: identity of the images (a set's images sha256, or the attack settings and subset); two
            runs' outcomes are compared image by image only when their keys match.
        indices: positions of the images in the clean split, for subsets (adversarial); None: every image.
        shape_labels, texture_labels: (N,) cue labels of ``cue-conflict`` images, else None.
        paired_with_clean: False for an external set (images not drawn from the clean split, e.g. CIFAR-10G):
            its ratio to clean accuracy is unpaired, and comparisons that need the same images leave it out.
        log_probs: float32 (S, N, C) log-softmax of the logits, for metrics that need more than the top-1
            prediction (KL divergence between a teacher and its student); None when built from predictions.
    """

    name: str
    predicted: np.ndarray
    labels: np.ndarray
    levels: tuple[str, ...]
    num_classes: int
    images_key: str
    indices: np.ndarray | None = None
    shape_labels: np.ndarray | None = None
    texture_labels: np.ndarray | None = None
    paired_with_clean: bool = True
    log_probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.predicted.ndim != 2 or self.predicted.shape[1] != self.labels.shape[0]:
            raise ValueError(f"{self.name}: predictions {self.predicted.shape} do not match {self.labels.shape} labels")
        if self.levels and len(self.levels) != self.predicted.shape[0]:
            raise ValueError(f"{self.name}: {len(self.levels)} level labels for {self.predicted.shape[0]} levels")
        if not self.levels and self.predicted.shape[0] != 1:
            raise ValueError(f"{self.name}: {self.predicted.shape[0]} slabs but no severity levels")
        if self.indices is not None and self.indices.shape != self.labels.shape:
            raise ValueError(f"{self.name}: {self.indices.shape} indices for {self.labels.shape} labels")
        if not self.paired_with_clean and self.indices is not None:
            raise ValueError(f"{self.name}: an unpaired set has no positions in the clean split")
        if (self.shape_labels is None) != (self.texture_labels is None):
            raise ValueError(f"{self.name}: shape and texture labels come together")
        if self.log_probs is not None and self.log_probs.shape[:2] != self.predicted.shape:
            raise ValueError(f"{self.name}: log-probs {self.log_probs.shape} for {self.predicted.shape} predictions")

    @classmethod
    def from_logits(cls, name: str, logits: np.ndarray, labels: np.ndarray, **fields: object) -> SetOutcome:
        """Outcome from (S, N, C) logits; ``fields`` are the remaining attributes."""
        logits = np.asarray(logits)
        return cls(
            name,
            predictions(logits),
            np.asarray(labels, dtype=np.int64),
            num_classes=logits.shape[-1],
            log_probs=log_softmax(logits),
            **fields,
        )

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    @property
    def correct(self) -> np.ndarray:
        """bool (S, N) per-image correctness per level."""
        return correctness(self.predicted, self.labels)

    @property
    def is_adversarial(self) -> bool:
        return self.name.startswith(ADVERSARIAL_PREFIX)

    def level_label(self, level: int) -> str:
        """Label of 1-based ``level``, or "" for the set as a whole (level 0)."""
        return self.levels[level - 1] if level else ""
