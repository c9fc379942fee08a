"""Coverage: a known answer for every default set besides shape, texture, cue-conflict and scramble's own.

Edge drawings carry the outline; a texture alone reads worse than the object, and worse than the texture laid
over the object in its scene; fewer superpixels keep less; a stronger noise patch never helps; scrambled tiles
break the global structure; the strongest of each corruption present costs more than its mildest.
"""

from __future__ import annotations

from collections.abc import Sequence

from libkd_bench.validation import statistics as st
from libkd_bench.validation.evidence import Evidence
from libkd_bench.validation.judging import Check, Outcome
from libkd_bench.validation.known_answers import (
    BAGNET,
    CORRUPTION_PREFIX,
    RESNET20,
    SHAPE,
    boot_for,
    hits_on,
    loses_accuracy,
    monotone,
    no_default_class,
    reads_the_class,
)


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
    return checks


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
