"""Bias metrics on per-image predictions, in plain numpy (no torch): accuracy, ratios, shape bias, kappa, McNemar.

Every function here takes per-image arrays (predictions, labels, boolean correctness) and returns one number,
or ``None`` where the metric is undefined (a ratio over a zero accuracy, shape bias with no shape-or-texture
decision), so callers omit the value instead of writing NaN. The ``*_from_*`` forms work elementwise on
arrays of sufficient statistics, which is how :mod:`libkd_bench.metrics.bootstrap` evaluates one statistic on a thousand
resamples at once; they return NaN where undefined and the callers filter.

References: the bias ratio is accuracy(set) / accuracy(clean) as in the reference study's tables; shape bias
follows Geirhos et al. (2019), "ImageNet-trained CNNs are biased towards texture"; error consistency is
Cohen's kappa over per-image correctness (Geirhos et al. 2020, "Beyond accuracy"); bias transfer is defined in
docs/DESIGN.md, "Metrics".
"""

from __future__ import annotations

import numpy as np


def predictions(logits: np.ndarray) -> np.ndarray:
    """Predicted class per image: argmax over the last axis (the first maximum on ties), as int64."""
    return np.asarray(logits).argmax(axis=-1).astype(np.int64, copy=False)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """float32 log-probabilities over the last axis, computed in float64 so large logits do not overflow."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(np.float32)


def kl_divergence_from_log_probs(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per-image KL(reference || other) in nats over the last (class) axis, float64, >= 0.

    With reference = teacher and other = student this is the quantity KD minimises (Hinton et al. 2015) and the
    fidelity measure of Stanton et al. (2021): 0 when the student reproduces the teacher's whole distribution.
    """
    reference, other = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    return np.maximum((np.exp(reference) * (reference - other)).sum(axis=-1), 0.0)


def agreement_bounds(teacher_accuracy: float, student_accuracy: float) -> tuple[float, float]:
    """Arithmetic bounds on top-1 agreement implied by two accuracies alone: max(0, aT + aS - 1) and 1 - |aT - aS|.

    Both right means agreeing, and where exactly one is right they disagree; so agreement lies between the
    least possible overlap of correct answers and one minus the least possible share of one-sided errors. An
    agreement near its lower bound says the student shares little beyond what its accuracy forces.
    """
    return max(0.0, teacher_accuracy + student_accuracy - 1.0), 1.0 - abs(teacher_accuracy - student_accuracy)


def correctness(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean per-image correctness; ``labels`` broadcasts over leading (severity) axes of ``predicted``."""
    return np.asarray(predicted) == np.asarray(labels)


def accuracy(correct: np.ndarray) -> float:
    """Fraction of correct images in [0, 1] (mean over every axis)."""
    correct = np.asarray(correct)
    if correct.size == 0:
        raise ValueError("accuracy of zero images is undefined")
    return float(correct.mean())


def ratio_from_accuracies(numerator: np.ndarray | float, denominator: np.ndarray | float) -> np.ndarray:
    """Elementwise ``numerator / denominator``, NaN where the denominator is 0 (the ratio is undefined there)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1.0), np.nan)


def bias_ratio(set_accuracy: float, clean_accuracy: float) -> float | None:
    """accuracy(set) / accuracy(clean): 1 means the removed cue was not needed, 0 that nothing is left."""
    return _finite_or_none(ratio_from_accuracies(set_accuracy, clean_accuracy))


def chance_rate_from_shares(predicted_shares: np.ndarray, label_shares: np.ndarray) -> np.ndarray:
    """Chance accuracy of a run on a set: sum over classes of predicted share x label share (last axis).

    This is the accuracy of a predictor that ignores the image but answers with the run's own class frequencies,
    measured against the set's actual label frequencies (the expected agreement of Cohen's kappa). It is the
    one definition of "chance" behind every chance-corrected metric: a model collapsed onto one class scores
    exactly that class's label share, whichever class it is, and a gated set whose classes are not balanced
    gets its own chance instead of 1/K. Works elementwise on (..., K) arrays, e.g. resampled shares (B, K).
    """
    return (np.asarray(predicted_shares, dtype=np.float64) * np.asarray(label_shares, dtype=np.float64)).sum(axis=-1)


def chance_rate(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """:func:`chance_rate_from_shares` of per-image predictions and labels, in [0, 1]."""
    shares = predicted_class_shares(predicted, num_classes), predicted_class_shares(labels, num_classes)
    return float(chance_rate_from_shares(*shares))


def chance_corrected_ratio_from_rates(
    accuracy: np.ndarray | float,
    chance: np.ndarray | float,
    clean_accuracy: np.ndarray | float,
    clean_chance: np.ndarray | float,
) -> np.ndarray:
    """Elementwise (acc - chance) / (clean - clean chance): the share of the above-chance accuracy that survives.

    A raw ratio has a floor of chance / clean: a model that guesses on a set still keeps it, so weaker models
    look as if they kept more. Corrected, a guesser (or a model collapsed onto one class) reads 0 whatever its
    clean accuracy. Each chance comes from :func:`chance_rate_from_shares` of the run on that set. NaN where
    clean accuracy is at chance (nothing above chance to keep).
    """
    accuracy, chance = np.asarray(accuracy, dtype=np.float64), np.asarray(chance, dtype=np.float64)
    clean_accuracy = np.asarray(clean_accuracy, dtype=np.float64)
    return ratio_from_accuracies(accuracy - chance, clean_accuracy - np.asarray(clean_chance, dtype=np.float64))


def chance_corrected_ratio_from_accuracies(
    numerator: np.ndarray | float, denominator: np.ndarray | float, num_classes: int
) -> np.ndarray:
    """(acc - 1/K) / (clean - 1/K): :func:`chance_corrected_ratio_from_rates` when predictions and labels are
    both spread evenly over the K classes (chance 1/K); the records use the run's actual chance instead."""
    chance = 1.0 / num_classes
    return chance_corrected_ratio_from_rates(numerator, chance, denominator, chance)


def chance_corrected_shape_bias_from_rates(
    shape_rate: np.ndarray, texture_rate: np.ndarray, shape_chance: np.ndarray, texture_chance: np.ndarray
) -> np.ndarray:
    """Shape bias counting only decisions above chance; elementwise, NaN where neither cue is above chance.

    ``*_rate`` is the share of conflict images predicted as their shape (texture) label; ``*_chance`` the share
    a predictor would hit that ignores the image but answers with the same class frequencies (the sum over
    classes of predicted share x label share, as in Cohen's kappa). With excess e = max(rate - chance, 0) for
    each cue, the corrected shape bias is e_shape / (e_shape + e_texture): a model that reads only texture
    scores 0 however often it lands on the shape label by chance, one that reads only shape scores 1, and a
    guesser is undefined. The raw Geirhos figure gives a guesser 0.5 and a colour histogram about 0.45.
    """
    shape_excess = np.maximum(np.asarray(shape_rate, dtype=np.float64) - shape_chance, 0.0)
    texture_excess = np.maximum(np.asarray(texture_rate, dtype=np.float64) - texture_chance, 0.0)
    return ratio_from_accuracies(shape_excess, shape_excess + texture_excess)


def shape_decisions(
    predicted: np.ndarray, shape_labels: np.ndarray, texture_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image indicators of a shape decision and of a cue decision (shape or texture) on cue-conflict images.

    Images whose shape and texture labels agree carry no conflict and count as neither (Geirhos et al. drop
    them). Returns ``(shape_hit, cue_hit)``, boolean arrays shaped like ``predicted``.
    """
    predicted = np.asarray(predicted)
    conflict = np.asarray(shape_labels) != np.asarray(texture_labels)
    shape_hit = (predicted == shape_labels) & conflict
    texture_hit = (predicted == texture_labels) & conflict
    return shape_hit, shape_hit | texture_hit


def chance_corrected_shape_bias(
    predicted: np.ndarray, shape_labels: np.ndarray, texture_labels: np.ndarray, num_classes: int
) -> float | None:
    """Chance-corrected shape bias over the conflict images (see :func:`chance_corrected_shape_bias_from_rates`)."""
    conflict = np.asarray(shape_labels) != np.asarray(texture_labels)
    predicted = np.asarray(predicted)[conflict]
    if predicted.size == 0:
        return None
    shape_labels, texture_labels = np.asarray(shape_labels)[conflict], np.asarray(texture_labels)[conflict]
    shares = [class_indicators(a, num_classes).mean(axis=0) for a in (predicted, shape_labels, texture_labels)]
    value = chance_corrected_shape_bias_from_rates(
        (predicted == shape_labels).mean(),
        (predicted == texture_labels).mean(),
        chance_rate_from_shares(shares[0], shares[1]),
        chance_rate_from_shares(shares[0], shares[2]),
    )
    return _finite_or_none(value)


def predicted_class_shares(predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of the images predicted as each class, float64 (num_classes,)."""
    predicted = np.asarray(predicted).ravel()
    return np.bincount(predicted, minlength=num_classes)[:num_classes] / max(predicted.size, 1)


def shape_bias(predicted: np.ndarray, shape_labels: np.ndarray, texture_labels: np.ndarray) -> float | None:
    """Pooled shape bias: among predictions equal to the shape or the texture label, the fraction equal to shape.

    Undefined (None) when no prediction equals either label.
    """
    shape_hit, cue_hit = shape_decisions(predicted, shape_labels, texture_labels)
    return _finite_or_none(ratio_from_accuracies(shape_hit.sum(), cue_hit.sum()))


def shape_bias_class_mean(
    predicted: np.ndarray, shape_labels: np.ndarray, texture_labels: np.ndarray, num_classes: int
) -> float | None:
    """Shape bias computed within each shape class, then averaged over the classes where it is defined.

    This is model-vs-human's per-category shape bias (grouped by the shape category) reduced to one number;
    it weights every class equally, where the pooled figure weights classes by how many cue decisions they
    produced. Undefined (None) when no class has a cue decision.
    """
    shape_hit, cue_hit = shape_decisions(predicted, shape_labels, texture_labels)
    one_hot = class_indicators(shape_labels, num_classes)
    return _finite_or_none(class_mean_from_counts(shape_hit @ one_hot, cue_hit @ one_hot))


def class_indicators(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, num_classes) float64 one-hot matrix of ``labels``, to sum per-image indicators by class with a matmul."""
    labels = np.asarray(labels)
    return (labels[:, None] == np.arange(num_classes)[None, :]).astype(np.float64)


def class_mean_from_counts(shape_counts: np.ndarray, cue_counts: np.ndarray) -> np.ndarray:
    """Mean over the last (class) axis of per-class shape bias, skipping classes without cue decisions.

    Works on (..., num_classes) arrays of counts (or resampled weighted counts); NaN where no class is defined.
    """
    per_class = ratio_from_accuracies(shape_counts, cue_counts)
    defined = np.isfinite(per_class)
    total = np.where(defined, per_class, 0.0).sum(axis=-1)
    count = defined.sum(axis=-1)
    return ratio_from_accuracies(total, count)


def kappa_from_rates(rate_a: np.ndarray, rate_b: np.ndarray, agreement: np.ndarray) -> np.ndarray:
    """Cohen's kappa from two accuracies and their observed agreement rate; elementwise, NaN where undefined.

    Expected agreement of two independent observers with these accuracies is ``pa pb + (1-pa)(1-pb)``;
    kappa = (observed - expected) / (1 - expected), undefined when expected = 1 (both always right, or both
    always wrong, so there is no error pattern to compare).
    """
    rate_a, rate_b, agreement = (np.asarray(v, dtype=np.float64) for v in (rate_a, rate_b, agreement))
    expected = rate_a * rate_b + (1.0 - rate_a) * (1.0 - rate_b)
    return ratio_from_accuracies(agreement - expected, 1.0 - expected)


def cohen_kappa(correct_a: np.ndarray, correct_b: np.ndarray) -> float | None:
    """Error consistency: Cohen's kappa of two runs' per-image correctness on the same images, in [-1, 1].

    1: the runs err on exactly the same images; 0: no more overlap than their accuracies imply by chance.
    """
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    kappa = kappa_from_rates(correct_a.mean(), correct_b.mean(), (correct_a == correct_b).mean())
    return _finite_or_none(kappa)


def mcnemar_counts(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int]:
    """Discordant pairs: (a right and b wrong, a wrong and b right)."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    return int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under H0 the discordant pairs split as Binomial(only_a + only_b, 1/2).

    p = min(1, 2 P(X <= min(only_a, only_b))); 1 when there are no discordant pairs. Summed in log space,
    so it holds for any count.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts must be non-negative")
    total = only_a + only_b
    if total == 0:
        return 1.0
    k = np.arange(1, min(only_a, only_b) + 1, dtype=np.float64)
    log_choose = np.concatenate(([0.0], np.cumsum(np.log(total - k + 1) - np.log(k))))
    log_tail = _logsumexp(log_choose) - total * np.log(2.0)
    return float(min(1.0, 2.0 * np.exp(log_tail)))


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar test that two runs have the same accuracy on the same images."""
    return mcnemar_exact_p(*mcnemar_counts(correct_a, correct_b))


def bias_transfer_from_ratios(student: np.ndarray, baseline: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """(ratio_student - ratio_baseline) / (ratio_teacher - ratio_baseline), elementwise; NaN when teacher = baseline.

    0: the student kept its own architecture's bias (like the baseline); 1: it took on the teacher's fully.
    """
    student, baseline, teacher = (np.asarray(v, dtype=np.float64) for v in (student, baseline, teacher))
    return ratio_from_accuracies(student - baseline, teacher - baseline)


def bias_transfer(student: float, baseline: float, teacher: float) -> float | None:
    return _finite_or_none(bias_transfer_from_ratios(student, baseline, teacher))


def _logsumexp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + float(np.log(np.exp(values - top).sum()))


def _finite_or_none(value: np.ndarray | float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
