"""``clean``: the source split itself, stored so every other set and every score reads one verified copy."""

from __future__ import annotations

from libkd_bench.datasets_gen.registry import Batch, Cue, Derived, register_generator


@register_generator("clean", cue=Cue.NONE, description="the source split itself", rank=0)
def clean(batch: Batch, value: None, /) -> Derived:
    return Derived(batch.images.copy(), batch.labels)
