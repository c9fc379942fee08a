"""Coverage: a known answer for every default set besides shape, texture, cue-conflict and scramble's own.

Edge drawings carry the outline; a texture alone reads worse than the object, and worse than the texture laid
over the object in its scene; fewer superpixels keep less; a stronger noise patch never helps; scrambled tiles
break the global structure; the strongest of each corruption present costs more than its mildest. When the
opt-in ``shape-readable`` is present: the shape control reads it and the colour control does not, and the shape
control reads the readable silhouettes better than the other gated ones (a selection that kept silhouettes at
random, not by what their outline tells, would not).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from libkd_bench.validation import statistics as st
from libkd_bench.validation.evidence import Evidence
from libkd_bench.validation.judging import Check, Outcome
from libkd_bench.validation.known_answers import (
    BAGNET,
    COLOUR,
    CORRUPTION_PREFIX,
    RESNET20,
    SHAPE,
    boot_for,
    hits_on,
    loses_accuracy,
    monotone,
    no_default_class,
    reads_no_class,
    reads_the_class,
)

READABLE = "shape-readable"


def coverage_checks(set_names: Sequence[str]) -> list[Check]:
    """A known answer for every other default set, and for each corruption present in the store."""
    checks = [
        reads_the_class(SHAPE, "shape-edges", "edge drawings carry the outline"),
        no_default_class(RESNET20, "shape-edges"),
        loses_accuracy(RESNET20, "texture", None, "a texture alone is harder to read than the object in its scene"),
        _overlay_beats_texture(),
    ]
    checks.append(
        loses_accuracy(RESNET20, "superpixel", 5, "16 superpixels keep less than 256", versus_level=1),
    )
    checks += [monotone(model, "patch-noise", 5, "a stronger noise patch never helps") for model in (RESNET20, BAGNET)]
    checks += [
        loses_accuracy(RESNET20, "scramble", level, "scrambled tiles break the global structure a CNN reads")
        for level in (1, 2, 3)
    ]
    checks += [
        loses_accuracy(RESNET20, name, 5, "the strongest corruption costs more than the mildest", versus_level=1)
        for name in set_names
        if name.startswith(CORRUPTION_PREFIX)
    ]
    if READABLE in set_names:
        checks += [
            reads_the_class(SHAPE, READABLE, "readable silhouettes carry the outline"),
            reads_no_class(COLOUR, READABLE, "silhouettes carry no colour, area or position cue"),
            readable_reads_better(),
        ]
    return checks


def readable_reads_better() -> Check:
    """The shape control's accuracy on the gated silhouettes the judge finds readable minus on the other ones."""

    def judge(evidence: Evidence) -> Outcome:
        hits = hits_on(evidence, SHAPE, "shape")
        gated = np.asarray(evidence.sets["shape"].arrays["source_index"])
        readable = np.isin(gated, np.asarray(evidence.sets[READABLE].arrays["source_index"])).astype(np.float64)
        boot = boot_for(evidence, len(hits))
        inside = boot.means(hits * readable) / boot.means(readable)
        outside = boot.means(hits * (1 - readable)) / boot.means(1 - readable)
        point = hits[readable > 0].mean() - hits[readable == 0].mean()
        gain = st.estimate(float(point), inside - outside, boot)
        return Outcome(gain.above(0.0), gain, f"{int(readable.sum())} of {len(hits)} gated silhouettes readable")

    return Check(
        f"{SHAPE} reads readable silhouettes better than the other gated ones",
        (READABLE, "shape"),
        (SHAPE,),
        "accuracy(readable) - accuracy(other gated silhouettes): interval > 0",
        "the judge keeps the silhouettes whose outline tells the class",
        judge,
    )


def _overlay_beats_texture() -> Check:
    """Texture in context (outline and scene kept) reads better than the texture alone, image by image."""

    def judge(evidence: Evidence) -> Outcome:
        overlay, texture = hits_on(evidence, RESNET20, "texture-overlay"), hits_on(evidence, RESNET20, "texture")
        gain = st.mean_difference(overlay, texture, boot_for(evidence, len(overlay)))
        return Outcome(gain.above(0.0), gain)

    return Check(
        f"{RESNET20} reads texture-overlay better than texture",
        ("texture-overlay", "texture"),
        (RESNET20,),
        "accuracy(overlay) - accuracy(texture), paired: interval > 0",
        "the overlay keeps the outline and the scene that the texture set removes",
        judge,
    )
