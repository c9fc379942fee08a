"""External agreement checks (ours vs CIFAR-10G) on simulated evidence: each passes a sound panel and rejects a
broken one."""

from __future__ import annotations

import numpy as np
import pytest

from libkd_bench.validation.external_checks import (
    external_checks,
    rank_agreement,
    reads_best,
    self_agreement,
    spearman_rows,
)
from libkd_bench.validation.judging import judge
from libkd_bench.validation.known_answers import BAGNET, COLOUR, RESNET20, RESNET56, SHAPE, VALIDATION_MODELS
from tests.test_validity import evidence, reader

K = 10
OURS, THEIRS = "shape", "cifar10g-silhouettes"
LABELS_OURS = np.repeat(np.arange(K), 60)  # 600 images
LABELS_THEIRS = np.repeat(np.arange(K), 10)  # 100 images, as CIFAR-10G
RATES = {COLOUR: 0.0, BAGNET: 0.1, RESNET56: 0.3, RESNET20: 0.5, SHAPE: 0.9}


def panel(rates_ours: dict[str, float], rates_theirs: dict[str, float]):
    predictions = {}
    for k, model in enumerate(VALIDATION_MODELS):
        predictions[model, OURS] = reader(LABELS_OURS, rates_ours[model], seed=10 + k)[None]
        predictions[model, THEIRS] = reader(LABELS_THEIRS, rates_theirs[model], seed=20 + k)[None]
    return evidence({OURS: {"labels": LABELS_OURS}, THEIRS: {"labels": LABELS_THEIRS}}, predictions)


def test_spearman_rows_hand_cases() -> None:
    a = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    b = np.array([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    out = spearman_rows(a, b)
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx(-1.0)
    assert np.isnan(out[2])  # a constant row has no ranking
    # one swap of neighbours among 5: 1 - 6 * 2 / (5 * 24) = 0.9
    assert spearman_rows(np.array([[1.0, 2, 3, 4, 5]]), np.array([[1.0, 2, 3, 5, 4]]))[0] == pytest.approx(0.9)


def test_rank_agreement_passes_a_panel_read_alike_and_rejects_a_reversed_one() -> None:
    check = rank_agreement(OURS, THEIRS)
    alike = judge(check, panel(RATES, RATES))
    assert alike.passed
    assert alike.estimate.value == pytest.approx(1.0)
    by_rate = sorted(RATES, key=RATES.__getitem__)
    reversed_rates = dict(zip(by_rate, [RATES[m] for m in reversed(by_rate)], strict=True))
    reversed_panel = judge(check, panel(RATES, reversed_rates))
    assert not reversed_panel.passed
    assert reversed_panel.estimate.value < 0


def test_self_agreement_is_high_for_a_spread_panel_and_near_zero_for_a_tied_one() -> None:
    """Known answers: models reading a set at well-separated rates keep their order from one half of it to the
    other (self-agreement near 1); equal readers have no order to keep (near 0), although one sample of them
    always shows some order."""
    rng = np.random.default_rng(0)
    spread = np.stack([rng.random(100) < rate for rate in (0.1, 0.3, 0.5, 0.7, 0.9)], axis=1).astype(float)
    tied = np.stack([rng.random(100) < 0.5 for _ in range(5)], axis=1).astype(float)
    assert self_agreement(spread) > 0.85
    assert abs(self_agreement(tied)) < 0.3
    shown = judge(rank_agreement(OURS, THEIRS), panel(RATES, RATES)).detail
    assert f"{THEIRS} split-half self-agreement" in shown


def test_reads_best_rejects_a_model_significantly_better_than_the_shape_control() -> None:
    check = reads_best(SHAPE, THEIRS)
    assert judge(check, panel(RATES, RATES)).passed
    beaten = judge(check, panel(RATES, {**RATES, SHAPE: 0.1, RESNET20: 0.95}))
    assert not beaten.passed
    assert RESNET20 in beaten.detail


def test_external_checks_only_for_pairs_in_the_store() -> None:
    assert external_checks(["shape", "texture"]) == []
    names = [c.name for c in external_checks(["shape", "shape-edges", THEIRS, "cifar10g-line-drawings"])]
    assert "panel ranks shape like cifar10g-silhouettes" in names
    assert "panel ranks shape-edges like cifar10g-line-drawings" in names
    assert f"{COLOUR} reads no class on cifar10g-line-drawings" in names
    assert f"{COLOUR} reads no class on cifar10g-silhouettes" not in names  # their ink area differs by class
