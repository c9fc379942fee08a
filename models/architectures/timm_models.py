"""Any timm model by name, ``timm:NAME``: built with random weights (``pretrained=False``), weights from the checkpoint.

The entry's defaults come from the model's timm pretrained config: input size (32x32 inputs are resized to it
inside the wrapper), interpolation, mean and std, and the classifier names (``head``/``head_dist`` for DeiT,
whose distilled models average their two heads in eval mode). timm is imported only when such a name is used.
Detection never guesses timm models: name them with ``--arch``.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS
from libkd_bench.models.registry import ArchitectureEntry, register_prefix
from libkd_bench.models.spec import Interpolation, SpecOverrides

PREFIX = "timm"


def _create(name: str, num_classes: int = 10, **kwargs: Any) -> Any:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


def _defaults(config: Any) -> SpecOverrides:
    """Preprocessing of a timm pretrained config, as a named preset when its mean/std are one."""
    if config is None:
        return SpecOverrides()
    mean, std = tuple(config.mean), tuple(config.std)
    preset = next((p for p, stats in PRESET_STATS.items() if stats == (mean, std)), None)
    normalisation = {"preset": preset} if preset else {"mean": mean, "std": std}
    modes = {m.value for m in Interpolation}
    return SpecOverrides(
        input_size=int(config.input_size[-1]),
        interpolation=config.interpolation if config.interpolation in modes else Interpolation.BICUBIC,
        **normalisation,
    )


@register_prefix(PREFIX)
@functools.cache
def timm_entry(name: str) -> ArchitectureEntry:
    """The entry of timm model ``name`` (without the ``timm:`` prefix)."""
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(f'{PREFIX}:{c}' for c in close)}?" if close else "see timm.list_models()"
        raise BenchError(f"unknown timm model {name!r}; {hint}")
    config = timm.models.get_pretrained_cfg(name)
    classifier = getattr(config, "classifier", None) or "head"
    return ArchitectureEntry(
        name=f"{PREFIX}:{name}",
        builder=functools.partial(_create, name),
        family="timm",
        source=f"timm {name}",
        description=f"timm model {name}",
        classifier=(classifier,) if isinstance(classifier, str) else tuple(classifier),
        defaults=_defaults(config),
    )
