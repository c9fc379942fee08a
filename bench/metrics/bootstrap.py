"""Paired bootstrap over images, vectorised as one weight matrix per image count.

Resampling n images with replacement B times is the same as giving image i the weight ``W[b, i]`` = how
often it was drawn in resample b. Any statistic built from per-image means is then ``W @ values / n``: one
matrix product evaluates it on every resample, for every set and severity at once, with no Python loop.

The weights depend only on (seed, n). Every set, severity and run scored on the same n images therefore sees
the same resamples, so intervals of ratios and differences (set vs clean, student vs teacher) are paired:
they account for the two quantities being measured on the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from libkd_bench.core.errors import BenchError

MIN_RESAMPLES = 1000
# Share of resamples on which a statistic must be defined for its interval to be reported.
MIN_DEFINED_SHARE = 0.9
_ROWS_PER_CHUNK = 256


@dataclass(frozen=True)
class BootstrapConfig:
    """How intervals are computed.

    Attributes:
        resamples: number of bootstrap resamples (at least 1000).
        seed: seed of the resampling; with n it fixes every resample.
        confidence: coverage of the percentile interval, in (0, 1).
    """

    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.resamples < MIN_RESAMPLES:
            raise BenchError(f"--bootstrap-resamples must be at least {MIN_RESAMPLES}, got {self.resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise BenchError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.seed < 0:
            raise BenchError(f"--bootstrap-seed must be non-negative, got {self.seed}")


class PairedBootstrap:
    """Resampling weights for ``n`` images: ``weights[b, i]`` counts draws of image i in resample b."""

    def __init__(self, n: int, config: BootstrapConfig) -> None:
        if n < 1:
            raise ValueError("bootstrap over zero images")
        self.n = n
        self.config = config
        self.weights = resampling_weights(n, config.resamples, np.random.default_rng([config.seed, n]))

    def means(self, values: np.ndarray) -> np.ndarray:
        """Resampled means of per-image ``values``: (n,) -> (B,), (n, k) -> (B, k)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] != self.n:
            raise ValueError(f"values cover {values.shape[0]} images, the bootstrap {self.n}")
        return self.weights @ values / self.n

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Resampled sums of per-image ``values``: (n,) -> (B,), (n, k) -> (B, k)."""
        return self.means(values) * self.n

    def interval(self, samples: np.ndarray) -> tuple[float | None, float | None]:
        """Percentile interval of one statistic's resampled values (B,).

        Resamples where the statistic is undefined (NaN) are left out; when more than a tenth are, the
        interval is not reported (None, None) since it would describe a biased selection of resamples.
        """
        return percentile_interval(samples, self.config.confidence)


def resampling_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) float64 draw counts; every row sums to n. Built in row chunks to bound memory."""
    weights = np.empty((resamples, n), dtype=np.float64)
    for start in range(0, resamples, _ROWS_PER_CHUNK):
        rows = min(_ROWS_PER_CHUNK, resamples - start)
        drawn = rng.integers(0, n, size=(rows, n), dtype=np.int64)
        drawn += np.arange(rows, dtype=np.int64)[:, None] * n
        weights[start : start + rows] = np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n)
    return weights


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    samples = np.asarray(samples, dtype=np.float64)
    defined = samples[np.isfinite(samples)]
    if samples.size == 0 or defined.size < MIN_DEFINED_SHARE * samples.size:
        return None, None
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(defined, [tail, 100.0 - tail])
    return float(low), float(high)
