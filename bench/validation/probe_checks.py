"""Checks by probes trained on the sets themselves (:mod:`libkd_bench.validation.probes`).

- nuisance geometry on ``shape``: ink area, bounding-box centre and ink on the frame's edge must not tell the
  class better than always answering the majority class (+ ``MARGIN``, upper bound of the interval). The box's
  aspect is left out of it on purpose: it is part of the outline, which the set is meant to carry;
- outline beyond the box: the shape control must read silhouettes better than a probe on the whole box geometry
  (aspect included), so a silhouette is more than its bounding box;
- fill luminance on ``cue-conflict``: the mean and spread of the fill's luminance must tell neither the shape
  class nor the texture class better than the majority (+ ``MARGIN``);
- scene probe on ``texture``: a colour model trained on the 2-px border ring of the clean images (scene, object
  pixels excluded) must read the textures worse than one trained on the object's core pixels (mask eroded by one
  pixel), paired over images: a texture made from the object holds its colours, not its scene's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from libkd_bench.datasets_gen.classes import NUM_CLASSES
from libkd_bench.validation import probes
from libkd_bench.validation import statistics as st
from libkd_bench.validation.evidence import Evidence
from libkd_bench.validation.judging import Check, Outcome
from libkd_bench.validation.known_answers import SHAPE

MARGIN = 0.05
NUISANCE = [0, 1, 2, 4, 5]  # columns of silhouette_geometry without the box aspect
SCENE_RING_PX = 2


def _not_above_majority(
    name: str, set_name: str, label_array: str, features: Callable[[np.ndarray], np.ndarray], why: str, key: int
) -> Check:
    def judge(evidence: Evidence) -> Outcome:
        labels = evidence.labels(set_name, label_array)
        x = features(np.asarray(evidence.sets[set_name].images[0]))
        hits = probes.cross_validated_hits(x, labels, NUM_CLASSES, evidence.rng(len(labels), key))
        boot = st.bootstrap_for(len(labels), evidence.bootstrap)
        accuracy = st.estimate(float(hits.mean()), boot.means(hits.astype(np.float64)), boot)
        majority = probes.majority_share(labels)
        return Outcome(accuracy.below(majority + MARGIN), accuracy, f"majority {majority:.3f}")

    return Check(
        name,
        (set_name,),
        (),
        f"cross-validated accuracy: interval <= majority + {MARGIN}",
        why,
        judge,
    )


def outline_beyond_box() -> Check:
    def judge(evidence: Evidence) -> Outcome:
        labels = evidence.labels("shape")
        x = probes.silhouette_geometry(np.asarray(evidence.sets["shape"].images[0]))
        box = probes.cross_validated_hits(x, labels, NUM_CLASSES, evidence.rng(len(labels), 12))
        control = evidence.predicted(SHAPE, "shape")[0] == labels
        gain = st.mean_difference(control, box, st.bootstrap_for(len(labels), evidence.bootstrap))
        return Outcome(gain.above(0.0), gain, f"box probe {box.mean():.3f}")

    return Check(
        "silhouettes carry an outline beyond their box",
        ("shape",),
        (SHAPE,),
        f"accuracy({SHAPE}) - accuracy(box-geometry probe), paired: interval > 0",
        "a silhouette reduced to its bounding box (area, centre, aspect) would read no better than the box",
        judge,
    )


def scene_probe() -> Check:
    def judge(evidence: Evidence) -> Outcome:
        from scipy.ndimage import binary_erosion

        clean = np.asarray(evidence.sets["clean"].images[0])
        labels = evidence.labels("clean")
        masks = np.asarray(evidence.sets["segmentation"].arrays["masks"])
        textures = np.asarray(evidence.sets["texture"].images[0])
        source = np.asarray(evidence.sets["texture"].arrays["source_index"])
        ring = probes.border_ring(*masks.shape[1:], SCENE_RING_PX)[None] & ~masks
        core = binary_erosion(masks, structure=np.ones((1, 3, 3), dtype=bool))
        core = np.where(core.any(axis=(1, 2))[:, None, None], core, masks)  # thin objects keep their mask
        test = probes.colour_histograms(textures, np.ones(textures.shape[:3], dtype=bool))
        folds = probes.fold_ids(len(labels), evidence.rng(len(labels), 13))
        hits = {}
        for name, pixels in (("ring", ring), ("core", core)):
            train = probes.colour_histograms(clean, pixels)
            hits[name] = probes.cross_validated_hits(
                train, labels, NUM_CLASSES, evidence.rng(len(labels), 13), test, folds[source], labels[source]
            )
        gap = st.mean_difference(hits["ring"], hits["core"], st.bootstrap_for(len(source), evidence.bootstrap))
        return Outcome(gap.high is not None and gap.high < 0.0, gap, f"core probe {hits['core'].mean():.3f}")

    return Check(
        "textures hold the object's colours, not the scene's",
        ("texture", "clean", "segmentation"),
        (),
        "accuracy(ring-colour probe) - accuracy(core-colour probe) on textures, paired: interval < 0",
        "a texture quilted from the object matches the object's colours better than the scene's",
        judge,
    )


def nuisance_geometry(images: np.ndarray) -> np.ndarray:
    """Silhouette geometry without the box aspect (see the module docstring)."""
    return probes.silhouette_geometry(images)[:, NUISANCE]


def probe_checks(set_names: Sequence[str]) -> list[Check]:
    """The probes' checks; they read the sets only, so they need no model but the shape control's."""
    del set_names  # these sets are required in every store
    return [
        _not_above_majority(
            "silhouette geometry tells no class",
            "shape",
            "labels",
            nuisance_geometry,
            "framing fixes the ink area and the position; the frame cuts no object",
            11,
        ),
        outline_beyond_box(),
        *(
            _not_above_majority(
                f"fill luminance tells no {label.split('_')[0]} class",
                "cue-conflict",
                label,
                probes.fill_luminance,
                "fills are drawn independently of the silhouette's class"
                if label == "shape_label"
                else "the texture class is carried by the texture, not by how bright the fill is",
                14 + k,
            )
            for k, label in enumerate(("shape_label", "texture_label"))
        ),
        scene_probe(),
    ]
