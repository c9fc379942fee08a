"""Validity checks on simulated evidence with a known truth: each passes a sound input and rejects a broken one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from libkd_bench.datasets_gen.store import StoredSet
from libkd_bench.metrics import formulas as metrics
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.validation import probes
from libkd_bench.validation import statistics as st
from libkd_bench.validation.evidence import Evidence
from libkd_bench.validation.judging import MIN_IMAGES, judge
from libkd_bench.validation.known_answers import (
    BAGNET,
    COLOUR,
    RESNET20,
    blind_to,
    follows_no_shape,
    keeps_more_than,
    loses_accuracy,
    monotone,
    no_default_class,
    reads_no_class,
    reads_the_class,
    shape_bias_below,
    shape_bias_bound,
)
from libkd_bench.validation.probe_checks import probe_checks

K = 10
N = 900
RNG = np.random.default_rng(0)
LABELS = np.repeat(np.arange(K), N // K)
SHAPE_LABELS = LABELS
TEXTURE_LABELS = (SHAPE_LABELS + np.tile(np.arange(1, K), N // (K - 1) + 1)[:N]) % K  # never the shape label


def stored(arrays: dict[str, np.ndarray]) -> StoredSet:
    return StoredSet(Path("memory"), None, arrays)  # type: ignore[arg-type]  # checks read arrays only


def evidence(sets: dict[str, dict[str, np.ndarray]], predictions: dict[tuple[str, str], np.ndarray]) -> Evidence:
    return Evidence({k: stored(v) for k, v in sets.items()}, predictions, BootstrapConfig())


def guesses(n: int = N, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, K, n)


def reader(labels: np.ndarray, rate: float, seed: int = 2) -> np.ndarray:
    """Predictions equal to ``labels`` with probability ``rate``, uniform guesses otherwise."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(labels)) < rate, labels, rng.integers(0, K, len(labels)))


# Statistics ---------------------------------------------------------------------------------------------------


def test_chance_comes_from_class_frequencies() -> None:
    boot = st.bootstrap_for(N)
    constant = np.zeros(N, dtype=np.int64)  # always class 0: hits exactly the share of class 0, which is chance
    assert st.excess_over_chance(constant, LABELS, K, boot).value == pytest.approx(0.0)
    perfect = st.excess_over_chance(LABELS, LABELS, K, boot)
    assert perfect.value == pytest.approx(0.9)  # 1 - sum(0.1 * 0.1)
    backwards = st.excess_over_chance((LABELS + 1) % K, LABELS, K, boot)
    assert backwards.value == pytest.approx(-0.1)
    assert backwards.high < 0


def test_independence_test_separates_guessing_from_reading_either_way() -> None:
    rng = np.random.default_rng(3)
    assert st.independence_p(guesses(), LABELS, K, rng) > 0.05
    assert st.independence_p(reader(LABELS, 0.1), LABELS, K, rng) < 0.01
    # reading a cue backwards (never the true class, below chance) is dependence too
    avoid = np.where(guesses() == LABELS, (LABELS + 1) % K, guesses())
    assert st.independence_p(avoid, LABELS, K, rng) < 0.01
    assert st.independence_p(np.zeros(N, dtype=np.int64), LABELS, K, rng) == 1.0


def test_chi_square_by_hand() -> None:
    table = np.array([[10, 0], [0, 10]])
    assert st.chi_square(table) == pytest.approx(20.0)
    assert st.chi_square(np.array([[5, 5], [5, 5]])) == pytest.approx(0.0)


def test_images_needed_by_hand() -> None:
    assert st.images_needed(0.10) == 97  # (1.96 * 0.5 / 0.1)^2 = 96.04
    assert MIN_IMAGES == 97


def test_corrected_shape_bias_interval_matches_the_point_formula() -> None:
    predicted = reader(SHAPE_LABELS, 0.4)
    boot = st.bootstrap_for(N)
    bias = st.corrected_shape_bias(predicted, SHAPE_LABELS, TEXTURE_LABELS, K, boot)
    assert bias.value == pytest.approx(metrics.chance_corrected_shape_bias(predicted, SHAPE_LABELS, TEXTURE_LABELS, K))
    assert bias.low <= bias.value <= bias.high


def test_corrected_shape_bias_of_a_guesser_has_no_decisive_interval() -> None:
    boot = st.bootstrap_for(N)
    for seed in range(5):
        bias = st.corrected_shape_bias(guesses(seed=seed), SHAPE_LABELS, TEXTURE_LABELS, K, boot)
        assert not bias.below(0.10)
        assert not bias.above(0.8)


# Known answers ------------------------------------------------------------------------------------------------


def test_reads_no_class_passes_a_guesser_and_rejects_a_reader() -> None:
    check = reads_no_class(COLOUR, "shape", "")
    sets = {"shape": {"labels": LABELS}}
    assert judge(check, evidence(sets, {(COLOUR, "shape"): guesses()[None]})).passed
    assert not judge(check, evidence(sets, {(COLOUR, "shape"): reader(LABELS, 0.1)[None]})).passed


def test_reads_the_class_rejects_a_guesser() -> None:
    check = reads_the_class(BAGNET, "texture", "")
    sets = {"texture": {"labels": LABELS}}
    assert judge(check, evidence(sets, {(BAGNET, "texture"): reader(LABELS, 0.2)[None]})).passed
    assert not judge(check, evidence(sets, {(BAGNET, "texture"): guesses()[None]})).passed


def conflict_sets() -> dict[str, dict[str, np.ndarray]]:
    return {"cue-conflict": {"labels": SHAPE_LABELS, "shape_label": SHAPE_LABELS, "texture_label": TEXTURE_LABELS}}


def test_a_texture_reader_follows_no_shape_and_a_swapped_labelling_is_caught() -> None:
    check = follows_no_shape(COLOUR, "")
    texture_reader = reader(TEXTURE_LABELS, 0.2)[None]
    assert judge(check, evidence(conflict_sets(), {(COLOUR, "cue-conflict"): texture_reader})).passed
    swapped = {"cue-conflict": {**conflict_sets()["cue-conflict"], "shape_label": TEXTURE_LABELS}}
    swapped["cue-conflict"]["texture_label"] = SHAPE_LABELS
    assert not judge(check, evidence(swapped, {(COLOUR, "cue-conflict"): texture_reader})).passed


def test_shape_bias_bound_needs_the_whole_interval() -> None:
    check = shape_bias_bound("control-shape", True, 0.5, "")
    strong = reader(SHAPE_LABELS, 0.4)[None]
    assert judge(check, evidence(conflict_sets(), {("control-shape", "cue-conflict"): strong})).passed
    assert not judge(check, evidence(conflict_sets(), {("control-shape", "cue-conflict"): guesses()[None]})).passed


def test_shape_bias_below_needs_a_paired_gap() -> None:
    check = shape_bias_below(BAGNET, RESNET20, "")
    texture_model, shape_model = reader(TEXTURE_LABELS, 0.3, 4)[None], reader(SHAPE_LABELS, 0.3, 5)[None]
    good = {(BAGNET, "cue-conflict"): texture_model, (RESNET20, "cue-conflict"): shape_model}
    assert judge(check, evidence(conflict_sets(), good)).passed
    same = {(BAGNET, "cue-conflict"): texture_model, (RESNET20, "cue-conflict"): reader(TEXTURE_LABELS, 0.3, 6)[None]}
    assert not judge(check, evidence(conflict_sets(), same)).passed


def test_no_default_class_rejects_a_collapsed_model() -> None:
    check = no_default_class(RESNET20, "shape")
    sets = {"shape": {"labels": LABELS}}
    collapsed = np.where(RNG.random(N) < 0.7, 0, guesses())[None]
    assert judge(check, evidence(sets, {(RESNET20, "shape"): guesses()[None]})).passed
    assert not judge(check, evidence(sets, {(RESNET20, "shape"): collapsed})).passed


def test_blind_to_is_exact() -> None:
    check = blind_to(COLOUR, "scramble", "")
    sets = {"clean": {"labels": LABELS}, "scramble": {"labels": LABELS}}
    clean = guesses()[None]
    assert judge(check, evidence(sets, {(COLOUR, "clean"): clean, (COLOUR, "scramble"): np.repeat(clean, 3, 0)})).passed
    one_off = np.repeat(clean, 3, 0)
    one_off[2, 7] = (one_off[2, 7] + 1) % K
    assert not judge(check, evidence(sets, {(COLOUR, "clean"): clean, (COLOUR, "scramble"): one_off})).passed


def test_monotone_rejects_levels_that_change_nothing() -> None:
    check = monotone(RESNET20, "patch-noise", 5, "")
    sets = {"clean": {"labels": LABELS}, "patch-noise": {"labels": LABELS}}
    clean = reader(LABELS, 0.9, 7)
    falling = np.stack([np.where(RNG.random(N) < 0.1 * level, guesses(seed=level), clean) for level in range(1, 6)])
    assert judge(check, evidence(sets, {(RESNET20, "clean"): clean[None], (RESNET20, "patch-noise"): falling})).passed
    flat = np.repeat(clean[None], 5, axis=0)
    assert not judge(check, evidence(sets, {(RESNET20, "clean"): clean[None], (RESNET20, "patch-noise"): flat})).passed


# Probes -------------------------------------------------------------------------------------------------------


def test_logistic_probe_reads_a_linear_channel_and_not_noise() -> None:
    rng = np.random.default_rng(8)
    informative = LABELS[:, None] + rng.normal(0, 0.3, (N, 1))
    hits = probes.cross_validated_hits(np.column_stack([informative, informative**2]), LABELS, K, rng)
    assert hits.mean() > 0.5
    noise = probes.cross_validated_hits(rng.normal(size=(N, 3)), LABELS, K, rng)
    assert noise.mean() < 0.17


def discs(radius: np.ndarray, centre: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:32, 0:32]
    inside = (yy[None] - centre[:, None, None]) ** 2 + (xx[None] - 15.5) ** 2 <= radius[:, None, None] ** 2
    return np.repeat(np.where(inside, 255, 0).astype(np.uint8)[..., None], 3, axis=-1)


def test_geometry_probe_rejects_silhouettes_whose_size_tells_the_class() -> None:
    check = next(c for c in probe_checks([]) if c.name == "silhouette geometry tells no class")
    same_size = discs(np.full(N, 9.0) + RNG.uniform(-0.3, 0.3, N), np.full(N, 15.5))
    assert judge(check, evidence({"shape": {"labels": LABELS, "images": same_size[None]}}, {})).passed
    sized = discs(5.0 + LABELS, np.full(N, 15.5))  # radius grows with the class
    assert not judge(check, evidence({"shape": {"labels": LABELS, "images": sized[None]}}, {})).passed


def test_fill_probe_rejects_fills_whose_brightness_tells_the_class() -> None:
    check = next(c for c in probe_checks([]) if c.name == "fill luminance tells no shape class")
    masks = discs(np.full(N, 9.0), np.full(N, 15.5))[..., 0] > 0
    level = RNG.integers(60, 250, N)
    fills = np.where(masks[..., None], level[:, None, None, None], 0).astype(np.uint8).repeat(3, axis=-1)[..., :3]
    sets = {"cue-conflict": {"labels": LABELS, "shape_label": LABELS, "texture_label": TEXTURE_LABELS}}
    sets["cue-conflict"]["images"] = fills[None]
    assert judge(check, evidence(sets, {})).passed
    tied = np.where(masks[..., None], (60 + 19 * LABELS)[:, None, None, None], 0).astype(np.uint8)
    sets["cue-conflict"]["images"] = np.repeat(tied, 3, axis=-1)[None]
    assert not judge(check, evidence(sets, {})).passed


def test_loses_accuracy_rejects_a_set_that_changes_nothing() -> None:
    check = loses_accuracy(RESNET20, "scramble", 1, "")
    sets = {"clean": {"labels": LABELS}, "scramble": {"labels": LABELS}}
    clean = reader(LABELS, 0.9, 9)
    scrambled = np.where(RNG.random(N) < 0.5, guesses(seed=10), clean)
    assert judge(
        check, evidence(sets, {(RESNET20, "clean"): clean[None], (RESNET20, "scramble"): scrambled[None]})
    ).passed
    same = {(RESNET20, "clean"): clean[None], (RESNET20, "scramble"): clean[None]}
    assert not judge(check, evidence(sets, same)).passed


def test_keeps_more_than_rejects_equal_losses() -> None:
    check = keeps_more_than(BAGNET, RESNET20, "scramble", 1, "")
    sets = {"clean": {"labels": LABELS}, "scramble": {"labels": LABELS}}
    clean = reader(LABELS, 0.9, 11)[None]
    kept, lost = reader(LABELS, 0.8, 12)[None], reader(LABELS, 0.3, 13)[None]
    good = {
        (BAGNET, "clean"): clean,
        (RESNET20, "clean"): clean,
        (BAGNET, "scramble"): kept,
        (RESNET20, "scramble"): lost,
    }
    assert judge(check, evidence(sets, good)).passed
    equal = {**good, (BAGNET, "scramble"): lost}
    assert not judge(check, evidence(sets, equal)).passed


def test_outline_beyond_box_rejects_a_control_that_reads_only_the_box() -> None:
    check = next(c for c in probe_checks([]) if c.name == "silhouettes carry an outline beyond their box")
    sized = discs(5.0 + LABELS, np.full(N, 15.5))  # the box alone tells the class
    sets = {"shape": {"labels": LABELS, "images": sized[None]}}
    assert not judge(check, evidence(sets, {("control-shape", "shape"): reader(LABELS, 0.5, 14)[None]})).passed
    plain = discs(np.full(N, 9.0), np.full(N, 15.5))  # the box tells nothing; the control reads something else
    sets = {"shape": {"labels": LABELS, "images": plain[None]}}
    assert judge(check, evidence(sets, {("control-shape", "shape"): reader(LABELS, 0.5, 14)[None]})).passed


def test_reads_little_of_the_class_bounds_the_effect_both_ways() -> None:
    from libkd_bench.validation.known_answers import SHAPE, reads_little_of_the_class

    check = reads_little_of_the_class(SHAPE, "texture", 0.05, "textures leak no outline")
    sets = {"texture": {"labels": LABELS}}
    assert judge(check, evidence(sets, {(SHAPE, "texture"): guesses()[None]})).passed
    weak = reader(LABELS, 0.02)  # a faint surface cue: dependence, but far inside the bound
    assert judge(check, evidence(sets, {(SHAPE, "texture"): weak[None]})).passed
    leak = reader(LABELS, 0.25)  # an outline read nearly as well as on silhouettes
    assert not judge(check, evidence(sets, {(SHAPE, "texture"): leak[None]})).passed
    backwards = np.where(guesses() == LABELS, (LABELS + 1) % K, guesses())
    backwards = np.where(np.random.default_rng(5).random(N) < 0.6, (LABELS + 3) % K, backwards)
    assert not judge(check, evidence(sets, {(SHAPE, "texture"): backwards[None]})).passed


def test_readable_reads_better_rejects_a_selection_made_at_random() -> None:
    from libkd_bench.validation.coverage import READABLE, readable_reads_better

    gated = np.arange(N) * 2  # the shape set's positions in a clean split of 2N images
    readable = np.zeros(N, dtype=bool)
    readable[::3] = True  # a third of the gated images, in every class
    control = np.where(readable, reader(LABELS, 0.6, seed=5), reader(LABELS, 0.2, seed=6))

    def outcome(chosen: np.ndarray) -> bool:
        sets = {
            "shape": {"labels": LABELS, "source_index": gated},
            READABLE: {"labels": LABELS[chosen], "source_index": gated[chosen]},
        }
        return judge(readable_reads_better(), evidence(sets, {("control-shape", "shape"): control[None]})).passed

    assert outcome(readable)
    at_random = np.random.default_rng(7).permutation(readable)  # the same count, chosen without the outline
    assert not outcome(at_random)
