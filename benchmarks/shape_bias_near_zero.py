"""How the chance-corrected shape bias behaves when a model reads neither cue, and why validate judges intervals.

Simulates cue-conflict sets (every ordered class pair equally often) and predictors that follow the shape label
with probability ``p_shape``, the texture label with ``p_texture``, and otherwise guess uniformly. For each
setting it draws many sets and reports how often the point estimate would pass ``<= 0.10`` and ``>= 0.8``, and
how often the interval-based verdicts of ``validate`` pass (whole interval <= 0.10; whole interval > 0.5).

    python benchmarks/shape_bias_near_zero.py --runs 200 --n 1500

A guesser (0, 0) reads <= 0.10 or exactly 1 in a large share of runs by its point value, but its interval spans
most of [0, 1] (or is undefined), so neither interval verdict passes it.
"""

from __future__ import annotations

import argparse

import numpy as np

from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.validation.statistics import bootstrap_for, corrected_shape_bias

K = 10


def simulate(p_shape: float, p_texture: float, n: int, runs: int, rng: np.random.Generator) -> dict[str, float]:
    """Shares of runs passing each verdict for one predictor (see module docstring)."""
    shape = np.arange(n) % K
    texture = (shape + 1 + (np.arange(n) // K) % (K - 1)) % K
    boot = bootstrap_for(n, BootstrapConfig())
    counts = {"point <= 0.10": 0, "point == 1": 0, "interval <= 0.10": 0, "interval > 0.5": 0, "undefined": 0}
    for _ in range(runs):
        u = rng.random(n)
        predicted = np.where(u < p_shape, shape, np.where(u < p_shape + p_texture, texture, rng.integers(0, K, n)))
        bias = corrected_shape_bias(predicted, shape, texture, K, boot)
        if np.isnan(bias.value):
            counts["undefined"] += 1
        counts["point <= 0.10"] += bias.value <= 0.10
        counts["point == 1"] += bias.value == 1.0
        counts["interval <= 0.10"] += bias.below(0.10)
        counts["interval > 0.5"] += bias.above(0.5)
    return {key: value / runs for key, value in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    settings = [(0.0, 0.0), (0.0, 0.05), (0.05, 0.0), (0.02, 0.02), (0.0, 0.3), (0.3, 0.0)]
    print(f"n={args.n}, runs={args.runs}: share of runs passing each verdict")
    for p_shape, p_texture in settings:
        shares = simulate(p_shape, p_texture, args.n, args.runs, rng)
        cells = "  ".join(f"{key} {value:.2f}" for key, value in shares.items())
        print(f"p_shape={p_shape:.2f} p_texture={p_texture:.2f}: {cells}")


if __name__ == "__main__":
    main()
