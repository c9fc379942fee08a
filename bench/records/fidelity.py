"""Fidelity of a student to its teacher (Stanton et al. 2021, "Does knowledge distillation really work?").

Rows against the teacher, on clean and on every stored set whose images both runs share, per level and for
the whole set (the mean over levels), each with a paired-bootstrap interval:

- ``top1_agreement``: share of images on which student and teacher predict the same class, with
  ``top1_agreement_min`` = max(0, a_T + a_S - 1) and ``top1_agreement_max`` = 1 - |a_T - a_S| beside it, the
  range the two accuracies alone allow (no interval: they are the arithmetic bounds at the point accuracies);
- ``kl_teacher_student``: mean per-image KL(teacher ‖ student) in nats over the softmax outputs;
- per class of the true label (whole set only), ``top1_agreement:<class>`` and ``kl_teacher_student:<class>``
  (n = images of that class): distillation can copy a teacher's errors on some classes more than others.

Adversarial pseudo-sets are left out: each model is attacked on its own perturbed images, so the two runs did
not see the same inputs there.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from libkd_bench.datasets_gen.classes import CIFAR10_CLASSES
from libkd_bench.metrics.formulas import agreement_bounds, class_indicators, kl_divergence_from_log_probs
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.run_record import MetricRow
from libkd_bench.records.summary import WHOLE_SET, BootstrapPool, levels_of, metric_row

AGREEMENT = "top1_agreement"
AGREEMENT_MIN = "top1_agreement_min"
AGREEMENT_MAX = "top1_agreement_max"
KL = "kl_teacher_student"
CLASS_SEPARATOR = ":"


def class_name(index: int, num_classes: int) -> str:
    """CIFAR-10's class name for a 10-class model, else the index."""
    return CIFAR10_CLASSES[index] if num_classes == len(CIFAR10_CLASSES) else str(index)


def fidelity_rows(student: SetOutcome, teacher: SetOutcome, pool: BootstrapPool) -> Iterator[MetricRow]:
    """The module's rows for one set both runs measured on the same images (nothing for an adversarial set)."""
    if student.is_adversarial:
        return
    boot = pool.get(student.n)
    agree = (student.predicted == teacher.predicted).astype(np.float64)  # (S, N)
    kl = None
    if student.log_probs is not None and teacher.log_probs is not None:
        kl = kl_divergence_from_log_probs(teacher.log_probs, student.log_probs)  # (S, N)
    student_correct, teacher_correct = student.correct.astype(np.float64), teacher.correct.astype(np.float64)
    for level in levels_of(student):
        chosen = slice(None) if level == WHOLE_SET else slice(level - 1, level)
        per_image = agree[chosen].mean(axis=0)
        rows = [metric_row(student, level, AGREEMENT, float(per_image.mean()), boot.means(per_image), boot, student.n)]
        low, high = agreement_bounds(float(teacher_correct[chosen].mean()), float(student_correct[chosen].mean()))
        label = student.level_label(level)
        rows.append(MetricRow(student.name, level or None, label, AGREEMENT_MIN, low, None, None, student.n))
        rows.append(MetricRow(student.name, level or None, label, AGREEMENT_MAX, high, None, None, student.n))
        if kl is not None:
            kl_image = kl[chosen].mean(axis=0)
            rows.append(metric_row(student, level, KL, float(kl_image.mean()), boot.means(kl_image), boot, student.n))
        yield from (row for row in rows if row is not None)
    yield from _per_class_rows(student, agree.mean(axis=0), None if kl is None else kl.mean(axis=0), pool)


def _per_class_rows(
    outcome: SetOutcome, agree: np.ndarray, kl: np.ndarray | None, pool: BootstrapPool
) -> Iterator[MetricRow]:
    boot = pool.get(outcome.n)
    one_hot = class_indicators(outcome.labels, outcome.num_classes)  # (N, K)
    counts, sampled_counts = one_hot.sum(axis=0), boot.sums(one_hot)  # (K,), (B, K)
    values = {AGREEMENT: agree, **({KL: kl} if kl is not None else {})}
    for metric, per_image in values.items():
        totals, sampled_totals = per_image @ one_hot, boot.sums(per_image[:, None] * one_hot)
        with np.errstate(divide="ignore", invalid="ignore"):
            means, sampled_means = totals / counts, sampled_totals / sampled_counts
        for k in range(outcome.num_classes):
            if counts[k] == 0:
                continue
            low, high = boot.interval(sampled_means[:, k])
            name = f"{metric}{CLASS_SEPARATOR}{class_name(k, outcome.num_classes)}"
            yield MetricRow(outcome.name, None, "", name, float(means[k]), low, high, int(counts[k]))
