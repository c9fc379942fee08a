"""Known answers: what models whose bias is fixed by construction must read on a valid set store.

A derived set is valid only when models whose bias is known read as expected on it (docs/DESIGN.md, "Validity"). The
controls (:mod:`libkd_bench.models.architectures.controls`: a colour histogram, a bag of local features, a
shape-only net) and the zoo's CIFAR ResNets are run on the store, and each check is decided on its 95 % interval:
a bound holds only when the whole interval is on its side. "Reads no class" is a permutation test of dependence
between predictions and labels (chance from the actual class frequencies, so a set with unequal classes and a
model that reads a cue backwards are both judged right); "reads the class" is an excess over that chance whose
interval lies above 0. Every default set has at least one known answer (coverage), the corruptions when present.

Pure functions of evidence: nothing here scores, prints or exits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libkd_bench.datasets_gen.classes import NUM_CLASSES
from libkd_bench.validation import statistics as st
from libkd_bench.validation.evidence import Evidence
from libkd_bench.validation.judging import Check, Outcome

COLOUR, BAGNET, SHAPE = "control-colour", "control-bagnet", "control-shape"
RESNET20, RESNET56 = "akamaster-resnet20", "akamaster-resnet56"
VALIDATION_MODELS = (COLOUR, BAGNET, SHAPE, RESNET20, RESNET56)
DEPENDENCE_ALPHA = 0.01  # "reads no class" fails when independence is rejected at this level
DEFAULT_SHARE = 0.5  # a set where one class takes more predictions than this measures that default
CONTROL_SHAPE_BIAS = 0.5  # the shape control's corrected shape bias must lie above it, the colour control's below
SHAPE_EXCESS_MARGIN = 0.02  # a shape-blind model's shape-label hits may exceed chance by no more
CORRUPTION_PREFIX = "corruption-"
OUTLINE_LEAK_BOUND = 0.05  # the shape control reads textures at most this far above (or below) chance


def boot_for(evidence: Evidence, n: int) -> st.PairedBootstrap:
    return st.bootstrap_for(n, evidence.bootstrap)


def clean_hits_on(evidence: Evidence, model: str, set_name: str) -> np.ndarray:
    """Clean per-image correctness of ``model`` on the images of ``set_name`` (its gated subset, if any)."""
    hits = evidence.predicted(model, "clean")[0] == evidence.labels("clean")
    stored = evidence.sets[set_name]
    return hits[np.asarray(stored.arrays["source_index"])] if "source_index" in stored.arrays else hits


def hits_on(evidence: Evidence, model: str, set_name: str, level: int | None = None) -> np.ndarray:
    predicted = evidence.predicted(model, set_name)
    chosen = predicted if level is None else predicted[level - 1 : level]
    return (chosen == evidence.labels(set_name)).mean(axis=0)


def reads_no_class(model: str, set_name: str, why: str) -> Check:
    def judge(evidence: Evidence) -> Outcome:
        predicted, labels = evidence.predicted(model, set_name), evidence.labels(set_name)
        p = st.independence_p(predicted[0], labels, NUM_CLASSES, evidence.rng(len(labels), 1))
        excess = st.excess_over_chance(predicted, labels, NUM_CLASSES, boot_for(evidence, len(labels)))
        return Outcome(p >= DEPENDENCE_ALPHA, excess, f"independence p={p:.3g}")

    return Check(
        f"{model} reads no class on {set_name}",
        (set_name,),
        (model,),
        f"predictions independent of labels (permutation p >= {DEPENDENCE_ALPHA})",
        why,
        judge,
    )


def reads_little_of_the_class(model: str, set_name: str, bound: float, why: str) -> Check:
    """The excess over chance lies within +-``bound`` on its whole interval: a bound on the effect, not a test of
    dependence, for a model that may read a weak cue of the set that is not the one the check is about. The shape
    control's one-bit map of a texture keeps the texture's grain (how its figure/ground split breaks into blobs),
    a surface statistic it is not blind to; an outline leaking into the texture would let it read the textures
    nearly as well as the silhouettes (an excess near 0.2), which the bound rejects."""

    def judge(evidence: Evidence) -> Outcome:
        labels = evidence.labels(set_name)
        excess = st.excess_over_chance(
            evidence.predicted(model, set_name), labels, NUM_CLASSES, boot_for(evidence, len(labels))
        )
        return Outcome(excess.above(-bound) and excess.below(bound), excess)

    return Check(
        f"{model} reads little of the class on {set_name}",
        (set_name,),
        (model,),
        f"accuracy over chance: interval within +-{bound}",
        why,
        judge,
    )


def reads_the_class(model: str, set_name: str, why: str) -> Check:
    def judge(evidence: Evidence) -> Outcome:
        labels = evidence.labels(set_name)
        excess = st.excess_over_chance(
            evidence.predicted(model, set_name), labels, NUM_CLASSES, boot_for(evidence, len(labels))
        )
        return Outcome(excess.above(0.0), excess)

    return Check(
        f"{model} reads the class on {set_name}",
        (set_name,),
        (model,),
        "accuracy over chance: interval > 0",
        why,
        judge,
    )


def shape_bias_bound(model: str, above: bool, bound: float, why: str) -> Check:
    set_name = "cue-conflict"

    def judge(evidence: Evidence) -> Outcome:
        shape, texture = evidence.labels(set_name, "shape_label"), evidence.labels(set_name, "texture_label")
        bias = st.corrected_shape_bias(
            evidence.predicted(model, set_name), shape, texture, NUM_CLASSES, boot_for(evidence, len(shape))
        )
        return Outcome(bias.above(bound) if above else bias.below(bound), bias)

    side = ">" if above else "<="
    return Check(
        f"{model} corrected shape bias {side} {bound}",
        (set_name,),
        (model,),
        f"shape_bias_cc: interval {side} {bound}",
        why,
        judge,
    )


def shape_bias_below(model: str, versus: str, why: str) -> Check:
    set_name = "cue-conflict"

    def judge(evidence: Evidence) -> Outcome:
        shape, texture = evidence.labels(set_name, "shape_label"), evidence.labels(set_name, "texture_label")
        boot = boot_for(evidence, len(shape))
        (mine, mine_s), (theirs, theirs_s) = (
            st.corrected_shape_bias_samples(evidence.predicted(m, set_name), shape, texture, NUM_CLASSES, boot)
            for m in (model, versus)
        )
        gap = st.estimate(theirs - mine, theirs_s - mine_s, boot)
        return Outcome(gap.above(0.0), gap, f"{model} {mine:.3f}, {versus} {theirs:.3f}")

    return Check(
        f"{model} shape bias below {versus}",
        (set_name,),
        (model, versus),
        f"shape_bias_cc({versus}) - shape_bias_cc({model}), paired: interval > 0",
        why,
        judge,
    )


def follows_no_shape(model: str, why: str) -> Check:
    """A shape-blind model hits the shape label no more often than chance on cue-conflict images.

    Put on the shape excess itself rather than on the corrected shape bias: that ratio is unstable when the
    model also reads little texture (both excesses near 0), where its interval spans [0, 1] whatever the model.
    """
    set_name = "cue-conflict"

    def judge(evidence: Evidence) -> Outcome:
        shape, texture = evidence.labels(set_name, "shape_label"), evidence.labels(set_name, "texture_label")
        excess = st.shape_excess(
            evidence.predicted(model, set_name), shape, texture, NUM_CLASSES, boot_for(evidence, len(shape))
        )
        return Outcome(excess.below(SHAPE_EXCESS_MARGIN), excess)

    return Check(
        f"{model} follows no shape on cue-conflict",
        (set_name,),
        (model,),
        f"shape-label hits - chance: interval <= {SHAPE_EXCESS_MARGIN}",
        why,
        judge,
    )


def no_default_class(model: str, set_name: str) -> Check:
    def judge(evidence: Evidence) -> Outcome:
        predicted = evidence.predicted(model, set_name)
        share = st.top_class_share(predicted, NUM_CLASSES, boot_for(evidence, predicted.shape[1]))
        return Outcome(share.below(DEFAULT_SHARE), share)

    return Check(
        f"{model} answers no default class on {set_name}",
        (set_name,),
        (model,),
        f"top class share: interval <= {DEFAULT_SHARE}",
        "no single default class answers for most images",
        judge,
    )


def loses_accuracy(model: str, set_name: str, level: int | None, why: str, versus_level: int | None = None) -> Check:
    """Accuracy on ``set_name`` (at ``level``; all levels when None) below clean, or below ``versus_level``."""

    def judge(evidence: Evidence) -> Outcome:
        hits = hits_on(evidence, model, set_name, level)
        reference = (
            clean_hits_on(evidence, model, set_name)
            if versus_level is None
            else hits_on(evidence, model, set_name, versus_level)
        )
        drop = st.mean_difference(hits, reference, boot_for(evidence, len(hits)))
        return Outcome(drop.high is not None and drop.high < 0.0, drop)

    where = set_name if level is None else f"{set_name} level {level}"
    than = "clean" if versus_level is None else f"level {versus_level}"
    return Check(
        f"{model} loses accuracy on {where} vs {than}",
        (set_name, "clean"),
        (model,),
        f"accuracy - {than} (paired): interval < 0",
        why,
        judge,
    )


def keeps_more_than(model: str, versus: str, set_name: str, level: int, why: str) -> Check:
    """``model`` loses less accuracy from clean to ``set_name`` (level) than ``versus``, paired over images."""

    def judge(evidence: Evidence) -> Outcome:
        mine = hits_on(evidence, model, set_name, level) - clean_hits_on(evidence, model, set_name)
        theirs = hits_on(evidence, versus, set_name, level) - clean_hits_on(evidence, versus, set_name)
        gap = st.mean_difference(mine, theirs, boot_for(evidence, len(mine)))
        return Outcome(gap.above(0.0), gap)

    return Check(
        f"{model} keeps more than {versus} on {set_name} level {level}",
        (set_name, "clean"),
        (model, versus),
        f"(drop of {versus}) - (drop of {model}): interval > 0",
        why,
        judge,
    )


def blind_to(model: str, set_name: str, why: str) -> Check:
    """``model``'s predictions on every level equal its clean predictions, image by image (exact by construction)."""

    def judge(evidence: Evidence) -> Outcome:
        clean = evidence.predicted(model, "clean")[0]
        same = (evidence.predicted(model, set_name) == clean).all(axis=0)
        return Outcome(bool(same.all()), st.Estimate(float(same.mean()), None, None, len(same)), "exact")

    return Check(
        f"{model} predicts as on clean on {set_name}",
        (set_name, "clean"),
        (model,),
        "identical predictions to clean on every image (exact: invariant by construction)",
        why,
        judge,
        min_images=1,
    )


def monotone(model: str, set_name: str, levels: int, why: str) -> Check:
    """Accuracy never rises with severity beyond its interval, and the last level is below clean."""

    def judge(evidence: Evidence) -> Outcome:
        boot = boot_for(evidence, len(evidence.labels(set_name)))
        previous = clean_hits_on(evidence, model, set_name)
        rises = []
        for level in range(1, levels + 1):
            hits = hits_on(evidence, model, set_name, level)
            step = st.mean_difference(hits, previous, boot)
            if step.above(0.0):
                rises.append(level)
            previous = hits
        drop = st.mean_difference(previous, clean_hits_on(evidence, model, set_name), boot)
        holds = not rises and drop.high is not None and drop.high < 0.0
        return Outcome(holds, drop, f"rises at levels {rises}" if rises else "no rise")

    return Check(
        f"{model} accuracy falls with severity on {set_name}",
        (set_name, "clean"),
        (model,),
        "no level above the one before (interval); last level - clean: interval < 0",
        why,
        judge,
    )


def known_answer_checks(set_names: Sequence[str]) -> list[Check]:
    """The controls' and the ResNets' known answers on the shape, texture, cue-conflict and scramble sets."""
    del set_names  # these sets are required in every store
    checks = [
        follows_no_shape(COLOUR, "a model without spatial information cannot follow the outline"),
        reads_no_class(COLOUR, "shape", "silhouettes carry no colour, area or position cue"),
        reads_the_class(COLOUR, "texture", "textures keep the object's colours"),
        blind_to(COLOUR, "scramble", "scrambling permutes pixels, which a histogram cannot see"),
        shape_bias_below(BAGNET, RESNET20, "a bag of 5-px features is texture-biased"),
        reads_the_class(BAGNET, "texture", "textures carry the local features a bag-of-features model reads"),
        *(
            keeps_more_than(
                BAGNET, RESNET20, "scramble", level, "local features survive tiles larger than their window"
            )
            for level in (1, 2)
        ),
        shape_bias_bound(SHAPE, True, CONTROL_SHAPE_BIAS, "a model that sees only a one-bit outline follows the shape"),
        reads_little_of_the_class(SHAPE, "texture", OUTLINE_LEAK_BOUND, "textures leak no outline"),
        reads_the_class(SHAPE, "shape", "silhouettes carry the outline"),
    ]
    checks += [
        no_default_class(model, set_name)
        for model in (RESNET20, RESNET56)
        for set_name in ("shape", "texture", "cue-conflict")
    ]
    return checks
