"""Chance accuracy of a run on a set, the one definition behind every chance-corrected metric.

"Chance" is what a predictor would score that ignores the image but answers with the run's own predicted-class
frequencies, against the set's actual label frequencies: sum over classes of predicted share x label share.
A flat 1/K is right only when both are balanced; gated sets run 8.9-11% per class, and a model collapsed onto
one class would otherwise read above or below chance depending on which class it chose.
"""

from __future__ import annotations

import numpy as np

from libkd_bench.metrics.bootstrap import PairedBootstrap
from libkd_bench.metrics.formulas import chance_rate_from_shares, class_indicators


def chance_of_run(
    predicted: np.ndarray, labels: np.ndarray, num_classes: int, boot: PairedBootstrap
) -> tuple[np.ndarray, np.ndarray]:
    """Chance accuracy of a run on a set per level, point (S,) and resampled (B, S).

    Chance is :func:`~libkd_bench.metrics.formulas.chance_rate_from_shares` of the run's predicted-class shares
    on that level and the set's label shares, both recomputed on every resample of the images, so a corrected
    metric's interval includes the uncertainty of its chance. Every chance-corrected figure of a record uses
    this function.

    Args:
        predicted: (S, N) predicted classes per level.
        labels: (N,) true classes.
        num_classes: K.
        boot: the resampling of the N images.
    """
    predicted = np.atleast_2d(predicted)
    levels = predicted.shape[0]
    predicted_one_hot = np.concatenate([class_indicators(p, num_classes) for p in predicted], axis=1)  # (N, S*K)
    label_one_hot = class_indicators(labels, num_classes)
    point_predicted = predicted_one_hot.mean(axis=0).reshape(levels, num_classes)
    point = chance_rate_from_shares(point_predicted, label_one_hot.mean(axis=0))
    sampled_predicted = boot.means(predicted_one_hot).reshape(-1, levels, num_classes)
    sampled_labels = boot.means(label_one_hot)[:, None, :]
    return point, chance_rate_from_shares(sampled_predicted, sampled_labels)
