"""``cifar10g-*``: CIFAR-10G's hand-drawn silhouettes, contours and line drawings as external shape sets.

Each set is the 100 images (10 per class) of one kind, light on black by default (the repository's
``_inverted`` folders, like a lit object on a dark ground; ``--param cifar10g-<kind>.polarity=dark-on-light``
reads the dark-on-white folders instead), reduced to 32x32 by area averaging (see
:mod:`libkd_bench.datasets_gen.cifar10g` for where the files come from and how they are checked). The images are
not made from the clean split, so the sets are external: their ratio to clean accuracy is not paired. They form
the opt-in family ``cifar10g`` (``generate-sets --sets cifar10g``), left out of the default sets since they
need the CIFAR-10G files and carry a non-commercial licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libkd_bench.datasets_gen import cifar10g
from libkd_bench.datasets_gen.registry import (
    Cue,
    Derived,
    ExternalSource,
    check_ranges,
    register_external_set,
    register_family,
)

FAMILY = "cifar10g"
SET_PREFIX = "cifar10g-"
POLARITIES = tuple(p.value for p in cifar10g.Polarity)
_WHAT = {
    cifar10g.Kind.SILHOUETTES: "filled silhouettes",
    cifar10g.Kind.CONTOURS: "outline contours",
    cifar10g.Kind.LINE_DRAWINGS: "line drawings with inner lines",
}


@dataclass(frozen=True)
class Cifar10gConfig:
    """The sets' one parameter: which polarity of the drawings to read."""

    polarity: str = cifar10g.Polarity.LIGHT_ON_DARK.value

    def __post_init__(self) -> None:
        check_ranges("cifar10g", self, {"polarity": self.polarity in POLARITIES})


def _register(kind: cifar10g.Kind) -> None:
    def load(*, polarity: str) -> Derived:
        images, labels = cifar10g.load_cifar10g(kind, polarity)
        return Derived(images, labels)

    def identity(*, polarity: str) -> dict[str, Any]:
        return cifar10g.source_identity(kind, polarity)

    load.__name__ = load.__qualname__ = "cifar10g_" + kind.value.replace("-", "_")
    register_external_set(
        SET_PREFIX + kind.value,
        ExternalSource(load=load, identity=identity, licence=cifar10g.LICENCE, citation=cifar10g.CITATION),
        cue=Cue.SHAPE,
        description=(
            f"CIFAR-10G {_WHAT[kind]} (hand-made, 100 images, external: ratio not paired with clean; "
            f"{cifar10g.LICENCE}, doi:{cifar10g.DOI}; family {FAMILY}, opt-in: --sets {FAMILY}, "
            f"files from ${cifar10g.COPY_ENV} or downloaded)"
        ),
        defaults={"polarity": cifar10g.Polarity.LIGHT_ON_DARK.value},
        config=Cifar10gConfig,
    )


for _kind in cifar10g.Kind:
    _register(_kind)
register_family(FAMILY, [SET_PREFIX + kind.value for kind in cifar10g.Kind], opt_in=True)
