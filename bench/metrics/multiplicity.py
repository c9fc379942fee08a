"""Multiple-comparison control: Holm's step-down adjustment of p-values (Holm 1979).

A leaderboard asks "do teacher and baseline differ on this set?" once per set and teacher-baseline pair; at 5%
each, some of 45 such questions come out significant by chance alone. Holm's adjustment controls the
family-wise error rate (the chance of any false "identified") at the nominal level, without assuming the tests
are independent (the sets share their clean images), and is uniformly more powerful than Bonferroni.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order.

    Sorted ascending, p_(i) (i = 1..m) becomes max over j <= i of min(1, (m - j + 1) p_(j)): multiplied by the
    number of hypotheses not yet rejected, and made monotone so a smaller raw p never gets a larger adjusted p.
    A hypothesis is rejected at level alpha exactly when its adjusted p <= alpha.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()
