"""Known answers for the bias metrics and the paired bootstrap (hand-computed cases, invariants)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from libkd_bench.core.errors import BenchError
from libkd_bench.metrics import formulas as metrics
from libkd_bench.metrics.bootstrap import BootstrapConfig, PairedBootstrap, percentile_interval


def test_accuracy_and_bias_ratio_by_hand() -> None:
    assert metrics.accuracy(np.array([True, True, False, True])) == 0.75
    assert metrics.bias_ratio(0.45, 0.9) == pytest.approx(0.5)
    assert metrics.bias_ratio(0.3, 0.0) is None


def test_predictions_take_the_first_maximum_and_labels_broadcast_over_levels() -> None:
    logits = np.array([[[0.0, 2.0, 2.0], [5.0, 1.0, 0.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]])
    predicted = metrics.predictions(logits)
    np.testing.assert_array_equal(predicted, [[1, 0], [0, 2]])
    np.testing.assert_array_equal(metrics.correctness(predicted, np.array([1, 2])), [[True, False], [False, True]])


# A decision table where the pooled and the class-mean shape bias differ:
#   shape 0 / texture 1, four images, predicted 0, 0, 0, 1  -> 3 shape decisions of 4 cue decisions
#   shape 1 / texture 0, two images, predicted 0, 2         -> 0 shape of 1 cue decision (2 is neither)
#   shape 2 / texture 2, one image (no conflict), predicted 2 -> ignored
# pooled: 3 / 5 = 0.6; class mean: (3/4 + 0/1) / 2 = 0.375 (class 2 has no cue decision).
SHAPE = np.array([0, 0, 0, 0, 1, 1, 2])
TEXTURE = np.array([1, 1, 1, 1, 0, 0, 2])
PREDICTED = np.array([0, 0, 0, 1, 0, 2, 2])


def test_shape_bias_pooled_and_class_mean_differ_as_computed_by_hand() -> None:
    assert metrics.shape_bias(PREDICTED, SHAPE, TEXTURE) == pytest.approx(0.6)
    assert metrics.shape_bias_class_mean(PREDICTED, SHAPE, TEXTURE, num_classes=3) == pytest.approx(0.375)


def test_shape_bias_is_undefined_without_shape_or_texture_decisions() -> None:
    neither = np.array([2, 2, 2, 2, 2, 2, 0])
    assert metrics.shape_bias(neither, SHAPE, TEXTURE) is None
    assert metrics.shape_bias_class_mean(neither, SHAPE, TEXTURE, num_classes=3) is None


def test_kappa_known_cases() -> None:
    pattern = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    assert metrics.cohen_kappa(pattern, pattern) == pytest.approx(1.0)
    # complete disagreement: observed 0, expected (2/3)(1/3) + (1/3)(2/3) = 4/9 -> kappa = -(4/9) / (5/9)
    assert metrics.cohen_kappa(pattern, ~pattern) == pytest.approx(-0.8)
    # independent by construction: each run is right on half, they agree on half -> expected = observed = 0.5
    assert metrics.cohen_kappa(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)) == pytest.approx(0.0)
    # 2x2 table: both right 20, only a right 5, only b right 10, both wrong 15 (n = 50)
    a = np.repeat([True, True, False, False], [20, 5, 10, 15])
    b = np.repeat([True, False, True, False], [20, 5, 10, 15])
    # pa = .5, pb = .6, observed = .7, expected = .5*.6 + .5*.4 = .5 -> kappa = .2 / .5 = .4
    assert metrics.cohen_kappa(a, b) == pytest.approx(0.4)
    always_right = np.ones(5, dtype=bool)
    assert metrics.cohen_kappa(always_right, always_right) is None


def test_mcnemar_exact_p_by_hand() -> None:
    # P(X <= 5 | X ~ Bin(15, 1/2)) = (1 + 15 + 105 + 455 + 1365 + 3003) / 2^15 = 4944 / 32768
    assert metrics.mcnemar_exact_p(5, 10) == pytest.approx(2 * 4944 / 32768)
    assert metrics.mcnemar_exact_p(10, 5) == pytest.approx(2 * 4944 / 32768)
    assert metrics.mcnemar_exact_p(0, 6) == pytest.approx(2 / 64)
    assert metrics.mcnemar_exact_p(0, 0) == 1.0
    assert metrics.mcnemar_exact_p(7, 7) == 1.0
    a = np.repeat([True, True, False, False], [20, 5, 10, 15])
    b = np.repeat([True, False, True, False], [20, 5, 10, 15])
    assert metrics.mcnemar_counts(a, b) == (5, 10)
    assert metrics.mcnemar_p(a, b) == pytest.approx(2 * 4944 / 32768)


@pytest.mark.parametrize(("only_a", "only_b"), [(3, 40), (120, 170), (2000, 2100)])
def test_mcnemar_matches_scipy_binomial_test_for_large_counts(only_a: int, only_b: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert metrics.mcnemar_exact_p(only_a, only_b) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_bias_transfer_by_hand() -> None:
    assert metrics.bias_transfer(student=0.7, baseline=0.5, teacher=0.9) == pytest.approx(0.5)
    assert metrics.bias_transfer(student=0.9, baseline=0.5, teacher=0.9) == pytest.approx(1.0)
    assert metrics.bias_transfer(student=0.7, baseline=0.5, teacher=0.5) is None


def test_bootstrap_weights_are_draw_counts_of_an_ordinary_resampling() -> None:
    n, config = 37, BootstrapConfig(resamples=1000, seed=3)
    values = np.random.default_rng(0).random(n)
    boot = PairedBootstrap(n, config)
    assert boot.weights.shape == (1000, n)
    np.testing.assert_array_equal(boot.weights.sum(axis=1), np.full(1000, n))
    drawn = np.random.default_rng([3, n]).integers(0, n, size=(1000, n))
    np.testing.assert_allclose(boot.means(values), values[drawn].mean(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(PairedBootstrap(n, config).weights, boot.weights)


def _interval_width(n: int) -> tuple[float, float, float]:
    correct = np.tile(np.array([1, 1, 1, 1, 0], dtype=float), n // 5)  # accuracy exactly 0.8
    boot = PairedBootstrap(n, BootstrapConfig())
    low, high = boot.interval(boot.means(correct))
    return float(correct.mean()), low, high


def test_intervals_contain_the_estimate_and_shrink_with_n() -> None:
    widths = []
    for n in (100, 1000, 10000):
        estimate, low, high = _interval_width(n)
        assert low <= estimate <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # binomial standard error: the 95% interval is about 2 * 1.96 * sqrt(.8 * .2 / n) wide
    assert widths[1] == pytest.approx(2 * 1.96 * math.sqrt(0.16 / 1000), rel=0.15)


def test_interval_is_withheld_when_the_statistic_is_mostly_undefined() -> None:
    samples = np.concatenate([np.linspace(0, 1, 80), np.full(20, np.nan)])
    assert percentile_interval(samples, 0.95) == (None, None)
    low, high = percentile_interval(np.concatenate([np.linspace(0, 1, 95), np.full(5, np.nan)]), 0.95)
    assert low is not None
    assert high is not None
    assert 0.0 <= low < high <= 1.0


def test_bootstrap_config_rejects_too_few_resamples() -> None:
    with pytest.raises(BenchError, match="at least 1000"):
        BootstrapConfig(resamples=200)


def test_metrics_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    modules = "libkd_bench.metrics.formulas, libkd_bench.metrics.bootstrap, libkd_bench.scoring.rescore"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
