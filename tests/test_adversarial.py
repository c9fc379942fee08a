"""Adversarial attacks at score time: settings, the seeded subset, invariants, and the [0, 1] input contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scoring_fixtures import TinyNet

from libkd_bench.core.errors import BenchError
from libkd_bench.scoring.adversarial import attack_logits, build_attack
from libkd_bench.scoring.adversarial_settings import (
    AdversarialConfig,
    AttackName,
    adversarial_subset,
    eps_label,
    parse_attacks,
    parse_eps,
)
from libkd_bench.scoring.forward import EngineConfig, ForwardEngine


def data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10


class RangeRecorder(torch.nn.Module):
    """Passes inputs to a model and remembers the smallest and largest value it was ever given."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.low, self.high = float("inf"), float("-inf")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = x.detach()
        self.low, self.high = min(self.low, float(seen.min())), max(self.high, float(seen.max()))
        return self.inner(x)


def test_parse_attacks_and_eps() -> None:
    assert parse_attacks("fgsm, PGD") == (AttackName.FGSM, AttackName.PGD)
    assert parse_attacks("none") == ()
    with pytest.raises(BenchError, match="did you mean pgd"):
        parse_attacks("pdg")
    assert parse_eps("1,2,4,8") == (1.0, 2.0, 4.0, 8.0)
    with pytest.raises(BenchError, match="not a number"):
        parse_eps("1,two")
    for bad in ((-1.0,), (100.0,), (float("nan"),), (2.0, 2.0)):
        with pytest.raises(BenchError, match="--adv-eps"):
            AdversarialConfig(eps=bad)
    with pytest.raises(BenchError, match="--adv-n"):
        AdversarialConfig(n=0)
    assert eps_label(2.0) == "eps=2/255"
    assert eps_label(0.5) == "eps=0.5/255"


def test_subset_is_class_balanced_seeded_and_nested_in_the_split() -> None:
    labels = np.repeat(np.arange(10), 30)
    subset = adversarial_subset(labels, 25, seed=0)
    assert len(subset) == len(set(subset.tolist())) == 25
    assert np.all(np.diff(subset) > 0)
    counts = np.bincount(labels[subset], minlength=10)
    assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(adversarial_subset(labels, 25, seed=0), subset)
    assert not np.array_equal(adversarial_subset(labels, 25, seed=1), subset)
    np.testing.assert_array_equal(adversarial_subset(labels, 10_000, seed=0), np.arange(300))


@pytest.mark.parametrize("attack", [AttackName.FGSM, AttackName.PGD])
def test_eps_zero_leaves_predictions_equal_to_clean(attack: AttackName) -> None:
    images, labels = data()
    engine = ForwardEngine(TinyNet(), EngineConfig("cpu", 16))
    clean = engine.logits(images)
    attacked = attack_logits(engine, images, labels, attack, 0.0, AdversarialConfig(eps=(0.0,)), 10)
    np.testing.assert_array_equal(attacked.argmax(1), clean.argmax(1))
    np.testing.assert_allclose(attacked, clean, rtol=1e-5, atol=1e-5)


def test_attacks_see_only_unit_range_inputs_and_stay_within_eps() -> None:
    images, labels = data(16)
    recorder = RangeRecorder(TinyNet())
    config = AdversarialConfig(eps=(8.0,))
    engine = ForwardEngine(recorder, EngineConfig("cpu", 16))
    inputs = engine.to_input(images).contiguous()
    targets = torch.from_numpy(labels)
    for attack in (AttackName.FGSM, AttackName.PGD):
        adversary = build_attack(attack, engine.module, 8.0, config, num_classes=10)
        assert adversary.normalization_used is None
        perturbed = adversary(inputs, targets)
        assert float((perturbed - inputs).abs().max()) <= 8 / 255 + 1e-6
        assert float((perturbed - inputs).abs().max()) > 4 / 255  # it did move
    # the model normalises inside; had torchattacks normalised too, it would have fed values outside [0, 1]
    assert 0.0 <= recorder.low <= recorder.high <= 1.0


def test_pgd_is_seeded_and_leaves_the_global_rng_alone() -> None:
    images, labels = data(20)
    engine = ForwardEngine(TinyNet(), EngineConfig("cpu", 8))
    config = AdversarialConfig(eps=(4.0,), seed=3)
    state = torch.random.get_rng_state()
    first = attack_logits(engine, images, labels, AttackName.PGD, 4.0, config, 10)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(attack_logits(engine, images, labels, AttackName.PGD, 4.0, config, 10), first)
    other = attack_logits(engine, images, labels, AttackName.PGD, 4.0, AdversarialConfig(eps=(4.0,), seed=4), 10)
    assert not np.array_equal(other, first)
    clean_correct = (engine.logits(images).argmax(1) == labels).sum()
    assert (first.argmax(1) == labels).sum() <= clean_correct


def test_autoattack_runs_standard_version_with_the_spec_class_count() -> None:
    images, labels = data(8)
    engine = ForwardEngine(TinyNet(), EngineConfig("cpu", 8))
    config = AdversarialConfig(attacks=(AttackName.AUTOATTACK,), eps=(8.0,))
    adversary = build_attack(AttackName.AUTOATTACK, engine.module, 8.0, config, num_classes=10)
    assert (adversary.version, adversary.n_classes, adversary.seed) == ("standard", 10, config.seed)
    attacked = attack_logits(engine, images, labels, AttackName.AUTOATTACK, 8.0, config, 10)
    assert attacked.shape == (8, 10)
    clean_correct = (engine.logits(images).argmax(1) == labels).sum()
    assert (attacked.argmax(1) == labels).sum() <= clean_correct
