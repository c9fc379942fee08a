"""``segmentation``: the foreground masks that ``shape``, ``texture`` and ``cue-conflict`` share.

The masks are made once per split and stored (``masks.npy``, bool (N, 32, 32), with ``mask_source.npy``, the
:class:`~libkd_bench.datasets_gen.segmentation.MaskSource` of each image: backend, colour-distance fallback or ellipse
fallback). Every set that uses them requires this set and records its backend, weights and mask hashes in
its own manifest. Backends: ``grabcut`` (default, weight-free) and ``fcn`` (FCN-ResNet101, as in the reference
study). The ``shape`` sets share this set's backend (``--backend shape=fcn`` is ``--backend segmentation=fcn``),
so a store never holds silhouettes and textures cut by different segmenters.

Each mask is also checked (``mask_agreement.npy``: IoU with perturbed re-runs of the backend; NaN for masks
the gate refuses for their size or source, which are not re-run) and gated
(``kept.npy``): only kept images enter ``shape``, ``shape-edges``, ``texture``, ``texture-overlay`` and
``cue-conflict`` (see :mod:`libkd_bench.datasets_gen.segmentation.quality`). Kept masks are also read by the
silhouette judge (``judge_score.npy``: its probability of the true class from the silhouette alone, NaN for
images not kept; ``readable.npy``: kept and at the class's threshold), which gates ``shape-readable`` (see
:mod:`libkd_bench.datasets_gen.segmentation.judge`).

Its images show the object on a neutral grey, for looking at the masks; scored, they tell how well a model
recognises an object without its background.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, register_generator
from libkd_bench.datasets_gen.segmentation import SegmentationConfig, backend_identity, segment_images, segmenter_names
from libkd_bench.datasets_gen.segmentation.judge import judge_identity, readability

NEUTRAL_GREY = 128


def segmentation_resources(backend: str) -> dict[str, Any]:
    """The identity of the backend's weights and of the silhouette judge, for the manifest."""
    return {**backend_identity(backend), "silhouette_judge": judge_identity()}


@register_generator(
    "segmentation",
    cue=Cue.NONE,
    revision=3,  # 2: no re-runs (agreement NaN) for masks refused for their size or source; 3: judge_score, readable
    description=(
        "the object on grey; its masks are shared by shape, shape-edges, texture, texture-overlay, cue-conflict"
    ),
    defaults=asdict(SegmentationConfig()),
    extras={
        "masks": "bool",
        "mask_source": "uint8",
        "mask_agreement": "float32",
        "kept": "bool",
        "judge_score": "float32",
        "readable": "bool",
    },
    backends=segmenter_names(),
    resources=segmentation_resources,
    config=SegmentationConfig,
)
def segmentation(batch: Batch, value: None, /, **params: Any) -> Derived:
    backend = batch.backend or segmenter_names()[0]
    result = segment_images(backend, batch.images, batch.rngs(), SegmentationConfig(**params))
    images = np.where(result.masks[..., None], batch.images, np.uint8(NEUTRAL_GREY))
    extras = {"masks": result.masks, "mask_source": result.sources, "mask_agreement": result.agreement}
    score = np.full(len(images), np.nan, dtype=np.float32)
    readable = np.zeros(len(images), dtype=bool)
    score[result.kept], readable[result.kept] = readability(result.masks[result.kept], batch.labels[result.kept])
    return Derived(images, batch.labels, {**extras, "kept": result.kept, "judge_score": score, "readable": readable})
