"""Mutants: deliberately broken variants of a store's own sets, each with one part of its generator changed.

``validate`` is only worth something if it can fail. A mutant is a set built by the project's own generator
with exactly one thing changed: a part swapped through ``Batch.part`` (:mod:`libkd_bench.datasets_gen.registry`),
a parameter, the severity values or the labelling of the output. Everything else (the masks, the seeds, the
pairing, the gate) comes from the real store, so a mutant follows every later change to its generator and
differs from the real set by the one broken construction alone. Sets made from the mutated set (``cue-conflict``
from ``texture``, say) are rebuilt from it, as generate-sets would; every other set is linked, never copied
or written. A mutant store lives in a folder of its own; the real store is only read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.datasets_gen.build import CHUNK_SIZE, CLEAN, plan_set
from libkd_bench.datasets_gen.generators.shape import MASKS, SUPERSAMPLE, framed_masks
from libkd_bench.datasets_gen.registry import Batch, Derived, get_generator, with_prerequisites
from libkd_bench.datasets_gen.seeding import SetSeed
from libkd_bench.datasets_gen.segmentation.framing import frame_coverage
from libkd_bench.datasets_gen.store import SetManifest, SetStore, Severity
from libkd_bench.datasets_gen.texture_synthesis import TextureConfig, synthesize


@dataclass(frozen=True)
class Mutant:
    """One broken variant of one set.

    Attributes:
        name: short name for tables and ``--mutants``.
        set: the set it replaces.
        description: the broken construction, one line.
        parts: generator parts replaced (names as the generator asks for them with ``batch.part``).
        parameters: set parameters overridden.
        levels: severity values replacing the set's own (None: unchanged).
        relabel: applied to each generated chunk (a changed labelling); None: unchanged.
    """

    name: str
    set: str
    description: str
    parts: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    levels: tuple[Any, ...] | None = None
    relabel: Callable[[Derived], Derived] | None = None


def unframed_masks(batch: Batch, area: float) -> np.ndarray:
    """The object masks as segmented, size and position kept (how silhouettes were drawn before framing), with
    the same anti-aliased outline as the real set: coverage float32 (n, H, W)."""
    del area
    masks = np.asarray(batch.inputs[MASKS][batch.indices])
    identity = np.broadcast_to(np.eye(2, 3, dtype=np.float32), (len(masks), 2, 3))
    return frame_coverage(masks, identity, masks.mean(axis=(1, 2)), SUPERSAMPLE)


def bounding_ellipses(batch: Batch, area: float) -> np.ndarray:
    """Each framed silhouette replaced by the ellipse inscribed in its bounding box: the box, no outline. Drawn
    anti-aliased like the real set (coverage of ``SUPERSAMPLE`` x ``SUPERSAMPLE`` sub-pixels), float32 (n, H, W)."""
    masks = framed_masks(batch, area)
    n, height, width = masks.shape
    s = SUPERSAMPLE
    out = np.zeros((n, height, width), dtype=np.float32)
    yy, xx = (np.mgrid[0 : height * s, 0 : width * s] - (s - 1) / 2) / s  # sub-pixel centres in pixel units
    for k, mask in enumerate(masks):
        rows, cols = np.nonzero(mask)
        if len(rows) == 0:
            continue
        cy, cx = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
        ry, rx = (rows.max() - rows.min() + 1) / 2, (cols.max() - cols.min() + 1) / 2
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        out[k] = inside.reshape(height, s, width, s).mean(axis=(1, 3))
    return out


def whole_image(batch: Batch) -> np.ndarray:
    """Every pixel as texture source: the scene around the object enters the texture."""
    return np.ones(batch.images.shape[:3], dtype=bool)


def texture_in_its_outline(
    backend: str, images: np.ndarray, masks: np.ndarray, rngs: Sequence[np.random.Generator], config: TextureConfig
) -> np.ndarray:
    """Each texture shown only inside its object's mask, black around it: the outline leaks into the texture."""
    textures = synthesize(backend, images, masks, rngs, config)
    return np.where(masks[..., None], textures, 0).astype(textures.dtype)


def own_texture(batch: Batch, partners: np.ndarray) -> np.ndarray:
    """Each silhouette filled with its own image's texture (the labels still name the drawn partner)."""
    del partners
    return np.asarray(batch.indices)


def identity_permutation(rng: np.random.Generator, size: int) -> np.ndarray:
    """Tiles left where they are."""
    del rng
    return np.arange(size)


def swap_cue_labels(derived: Derived) -> Derived:
    """Shape and texture labels exchanged, the set's labels following the (now wrong) shape label."""
    extras = dict(derived.extras)
    extras["shape_label"], extras["texture_label"] = extras["texture_label"], extras["shape_label"]
    return Derived(derived.images, np.asarray(extras["shape_label"]).copy(), extras)


MUTANTS: tuple[Mutant, ...] = (
    Mutant("unframed", "shape", "silhouettes left at their size and position", {"silhouette_masks": unframed_masks}),
    Mutant("dark-on-white", "shape", "dark silhouettes on white", parameters={"ink": 0, "paper": 255}),
    Mutant(
        "ellipse", "shape", "silhouettes replaced by their bounding ellipse", {"silhouette_masks": bounding_ellipses}
    ),
    Mutant("whole-image-texture", "texture", "textures quilted from the whole image", {"source_masks": whole_image}),
    Mutant(
        "outlined-texture", "texture", "textures shown inside the object's mask", {"synthesis": texture_in_its_outline}
    ),
    Mutant("swapped-labels", "cue-conflict", "shape and texture labels swapped", relabel=swap_cue_labels),
    Mutant("own-donor", "cue-conflict", "texture donor = the shape image", {"texture_donors": own_texture}),
    Mutant(
        "identity-scramble", "scramble", "tiles permuted by the identity", {"tile_permutation": identity_permutation}
    ),
    Mutant("zero-noise", "patch-noise", "noise patch of zero amplitude", levels=(0.0, 0.0, 0.0, 0.0, 0.0)),
)


def mutant_names() -> list[str]:
    return [m.name for m in MUTANTS]


def select_mutants(text: str | None) -> list[Mutant]:
    """Comma-separated mutant names (None, empty or ``all``: every mutant), each checked."""
    by_name = {m.name: m for m in MUTANTS}
    names = [n.strip() for n in (text or "").split(",") if n.strip() and n.strip() != "all"]
    for name in names:
        if name not in by_name:
            raise BenchError(unknown_name_message("mutant", name, by_name))
    return [by_name[name] for name in names] if names else list(MUTANTS)


def dependents(store: SetStore, name: str) -> list[str]:
    """Sets of ``store`` made from ``name``, directly or not, each after the sets it is made from."""
    present = store.names()
    changed = {name}
    grew = True
    while grew:
        grew = False
        for other in present:
            if other not in changed and changed & set(get_generator(other).requires):
                changed.add(other)
                grew = True
    return [s for s in with_prerequisites(present) if s in changed]


def build_mutant_store(mutant: Mutant, real: SetStore, out: Path) -> SetStore:
    """A store at ``out`` (created, must not exist) where ``mutant.set`` and the sets made from it are rebuilt with
    the mutant's change, every other set of ``real`` linked.

    Raises:
        BenchError: the real store lacks the mutated set or its clean split.
    """
    present = real.names()
    for needed in (CLEAN, mutant.set):
        if needed not in present:
            raise BenchError(
                f"mutant {mutant.name} needs set {needed}, absent from {real.root}; "
                f"run libkd-bench generate-sets --sets {needed} --sets-dir {real.root}"
            )
    out.mkdir(parents=True)
    rebuilt = dependents(real, mutant.set)
    for name in present:
        if name not in rebuilt:
            os.symlink(real.path(name).resolve(), out / name, target_is_directory=True)
    store = SetStore(out)
    clean = real.load(CLEAN, verify=False)
    for name in rebuilt:
        real_manifest = real.manifest(name)
        assert real_manifest is not None
        _build(
            store,
            name,
            real_manifest,
            clean.images[0],
            np.asarray(clean.labels),
            mutant if name == mutant.set else None,
        )
    return store


def _build(
    store: SetStore,
    name: str,
    real_manifest: SetManifest,
    split_images: np.ndarray,
    split_labels: np.ndarray,
    mutant: Mutant | None,
) -> None:
    """Generate one set in-process into ``store`` as the real one was made, with ``mutant``'s change if given."""
    entry = get_generator(name)
    parameters = {**real_manifest.parameters, **(mutant.parameters if mutant else {})}
    plan = plan_set(name, real_manifest.seed, parameters, real_manifest.backend)
    levels = mutant.levels if mutant and mutant.levels is not None else entry.levels
    inputs: dict[str, np.ndarray] = {}
    identity = {}
    for required in entry.requires:
        stored = store.load(required, verify=False)
        inputs.update({f"{required}/{array}": np.asarray(values) for array, values in stored.arrays.items()})
        identity[required] = {
            "backend": stored.manifest.backend,
            "resources": dict(stored.manifest.resources),
            "arrays": stored.manifest.array_hashes(),
        }
    parts = dict(mutant.parts) if mutant else {}
    n = len(split_labels)
    slabs: list[np.ndarray] = []
    arrays: dict[str, np.ndarray] = {}
    for level, value in enumerate(levels, start=1):
        chunks = []
        for start in range(0, n, CHUNK_SIZE):
            indices = np.arange(start, min(start + CHUNK_SIZE, n))
            batch = Batch(
                images=np.array(split_images[indices]),
                labels=split_labels[indices],
                indices=indices,
                level=level,
                seed=SetSeed(plan.seed, name),
                inputs=inputs,
                split_images=split_images,
                split_labels=split_labels,
                backend=plan.backend,
                parts=parts,
            )
            derived = entry.fn(batch, value, **plan.parameters)
            if mutant and mutant.relabel:
                derived = mutant.relabel(derived)
            chunks.append(derived)
        slabs.append(np.concatenate([c.images for c in chunks]))
        if level == 1:
            arrays = {"labels": np.concatenate([c.labels for c in chunks])}
            arrays.update({k: np.concatenate([c.extras[k] for c in chunks]) for k in chunks[0].extras})
    images = np.stack(slabs)
    subset: dict[str, Any] = {}
    if entry.gate:
        kept = np.flatnonzero(np.asarray(inputs[entry.gate], dtype=bool))
        images = images[:, kept]
        arrays = {k: v[kept] for k, v in arrays.items()}
        arrays["source_index"] = kept.astype(np.int64)
        subset = {"gate": entry.gate, "n_source": n, "n": len(kept), "indices": kept.tolist()}
    manifest = plan.manifest(real_manifest.source, identity)
    severities = tuple(Severity(s.level, s.parameter, v) for s, v in zip(manifest.severities, levels, strict=True))
    described = f"{manifest.generator} [mutant {mutant.name}: {mutant.description}]" if mutant else manifest.generator
    manifest = replace(manifest, generator=described, severities=severities, subset=subset)
    with store.draft(name) as draft:
        draft.put("images", images)
        for array, values in arrays.items():
            draft.put(array, values)
        draft.finish(manifest)


def build_mutant_stores(mutants: Sequence[Mutant], real: SetStore, root: Path) -> dict[str, SetStore]:
    """One mutant store per mutant under ``root`` (a temporary folder the caller owns)."""
    return {m.name: build_mutant_store(m, real, root / m.name) for m in mutants}
