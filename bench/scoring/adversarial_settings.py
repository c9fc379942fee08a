"""Adversarial attack settings: attack names, eps levels and the attacked subset (no torch import).

Eps values are L-inf radii in units of 1/255 (``--adv-eps 1,2,4,8``). PGD takes 10 steps of eps/4 from a
uniform random start (Madry et al. 2018); AutoAttack runs in its ``standard`` version. The subset is
class-balanced and drawn once from the clean split with a seeded numpy Generator, so every model attacked with
the same settings sees the same images and their robust accuracies compare image by image.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from libkd_bench.core.errors import BenchError, unknown_name_message

EPS_UNIT = 255.0
MAX_EPS = 64.0  # in 1/255 units: a quarter of the intensity range; beyond it "robustness" means nothing


class AttackName(str, enum.Enum):
    FGSM = "fgsm"
    PGD = "pgd"
    AUTOATTACK = "autoattack"

    @property
    def set_name(self) -> str:
        """The pseudo-set name metric rows use (``adv-pgd``)."""
        return f"adv-{self.value}"

    @property
    def report_place(self) -> int:
        """Its place among the attacks in reports: PGD (the reference study's attack) first."""
        return (AttackName.PGD, AttackName.FGSM, AttackName.AUTOATTACK).index(self)


def parse_attacks(text: str) -> tuple[AttackName, ...]:
    """``fgsm,pgd`` -> attacks in the given order; ``none`` or empty -> no attack."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if names in ([], ["none"]):
        return ()
    attacks = []
    for name in names:
        try:
            attacks.append(AttackName(name))
        except ValueError:
            raise BenchError(unknown_name_message("--adv attack", name, [a.value for a in AttackName])) from None
    return tuple(dict.fromkeys(attacks))


def parse_eps(text: str) -> tuple[float, ...]:
    """``1,2,4,8`` -> eps values in 1/255 units, each in [0, 64]."""
    values = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            value = float(part)
        except ValueError:
            raise BenchError(
                f"--adv-eps value {part!r} is not a number; give eps in 1/255 units, e.g. 1,2,4,8"
            ) from None
        values.append(value)
    if not values:
        raise BenchError("--adv-eps is empty; give eps in 1/255 units, e.g. 1,2,4,8")
    return tuple(values)


def eps_label(eps: float) -> str:
    """Severity label of an eps level: ``eps=2/255``."""
    return f"eps={eps:g}/255"


@dataclass(frozen=True)
class AdversarialConfig:
    """Which attacks run, how strong, on how many images.

    Attributes:
        attacks: attacks to run, in order.
        eps: L-inf radii in 1/255 units, one severity level each.
        n: size of the clean subset attacked (all images when the split is smaller).
        seed: seed of the subset choice and of the attacks' randomness.
        pgd_steps: PGD iterations (step size eps/4).
    """

    attacks: tuple[AttackName, ...] = (AttackName.FGSM, AttackName.PGD)
    eps: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    n: int = 500
    seed: int = 0
    pgd_steps: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "attacks", tuple(AttackName(a) for a in self.attacks))
        for eps in self.eps:
            if not math.isfinite(eps) or not 0.0 <= eps <= MAX_EPS:
                raise BenchError(f"--adv-eps value {eps:g} is outside [0, {MAX_EPS:g}] (units of 1/255)")
        if len(set(self.eps)) != len(self.eps):
            raise BenchError("--adv-eps lists a value twice; give each eps once")
        if self.n < 1:
            raise BenchError(f"--adv-n must be at least 1, got {self.n}")
        if self.pgd_steps < 1:
            raise BenchError(f"PGD needs at least one step, got {self.pgd_steps}")

    def settings(self, attack: AttackName) -> dict[str, Any]:
        """What one attack's results depend on besides model and images (recorded and hashed for the cache)."""
        common = {"attack": attack.value, "norm": "Linf", "eps_unit": "1/255", "seed": self.seed}
        if attack is AttackName.PGD:
            return {**common, "steps": self.pgd_steps, "step_size": "eps/4", "random_start": True}
        if attack is AttackName.AUTOATTACK:
            return {**common, "version": "standard"}
        return common

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["attacks"] = [a.value for a in self.attacks]
        data["eps"] = list(self.eps)
        return data


def adversarial_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Ascending indices of ``n`` images, as evenly spread over classes as the split allows.

    Each class's images are shuffled with a Generator seeded by ``seed``, then taken round-robin over the
    classes (rank 0 of every class, then rank 1, ...), so classes differ in count by at most one unless a
    class runs out.
    """
    labels = np.asarray(labels)
    n = min(n, len(labels))
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(labels))
    order = shuffled[np.argsort(labels[shuffled], kind="stable")]
    sorted_labels = labels[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_labels, sorted_labels, side="left")
    return np.sort(order[np.lexsort((sorted_labels, rank))][:n])
