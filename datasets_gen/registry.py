"""The generator registry and the contract every generator follows.

A generator is a plain function ``fn(batch, value, **params) -> Derived``: ``batch`` holds a chunk of clean
images with their indices and seeds, ``value`` is the severity parameter of the level being made (``None``
for sets without levels), ``params`` are the set's other parameters. The decorator records the set's cue,
its severity table and defaults; ``build_sets`` validates everything once, so generators carry no checks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.core.registry import Registry
from libkd_bench.datasets_gen.seeding import SetSeed


class Cue(str, enum.Enum):
    """What a set isolates (the table of docs/DESIGN.md, "Cues")."""

    NONE = "none"
    SHAPE = "shape"
    TEXTURE = "texture"
    TEXTURE_IN_CONTEXT = "texture-in-context"
    SHAPE_VS_TEXTURE = "shape-vs-texture"
    LOCALITY = "locality"
    LOCAL_CORRUPTION = "local-corruption"
    GLOBAL_STRUCTURE = "global-structure"
    COMMON_CORRUPTION = "common-corruption"


@dataclass(frozen=True)
class Batch:
    """A chunk of the clean split handed to a generator.

    Attributes:
        images: uint8 (n, 32, 32, 3), the chunk's clean images.
        labels: int64 (n,).
        indices: positions of the chunk's images in the split.
        level: severity level being generated (1-based).
        seed: root of the set's randomness; use ``rngs()`` for per-image draws, ``set_rng()`` for set-wide ones.
        inputs: whole-split arrays of the sets this set requires (e.g. shared masks), keyed "set/array".
        split_images, split_labels: the whole clean split, for generators that pair images.
        backend: the implementation chosen for the set (``None`` for a set with a single one).
        parts: replacements for named parts of a generator (see :meth:`part`); empty when building real sets.
    """

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    level: int
    seed: SetSeed
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    split_images: np.ndarray | None = None
    split_labels: np.ndarray | None = None
    backend: str | None = None
    parts: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def part(self, name: str, default: Callable[..., Any]) -> Callable[..., Any]:
        """The generator's part ``name``: ``default`` unless replaced.

        Validation builds deliberately broken variants of a set by swapping exactly one part of its generator
        (see :mod:`libkd_bench.datasets_gen.mutants`), so the variants follow every other change to the generator.
        """
        return self.parts.get(name, default)

    def rngs(self) -> list[np.random.Generator]:
        return self.seed.image_rngs(self.level, self.indices)

    def set_rng(self) -> np.random.Generator:
        return self.seed.set_rng()


@dataclass(frozen=True)
class Derived:
    """A generator's output for one chunk: images, the labels to score against, and extra per-image arrays."""

    images: np.ndarray
    labels: np.ndarray
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)


class GeneratorFn(Protocol):
    def __call__(self, batch: Batch, value: Any, /, **params: Any) -> Derived: ...


@dataclass(frozen=True)
class ExternalSource:
    """How to read a set whose images come from outside the clean split (CIFAR-10G, say).

    Such a set is not paired with the clean split: its ratio divides its accuracy by the clean split's, on other
    images, and comparisons that need the same images in set and clean leave it out.

    Attributes:
        load: ``load(**params)`` -> the whole set (uint8 (n, 32, 32, 3) images and labels); raises BenchError
            naming a missing or altered file.
        identity: ``identity(**params)`` -> what the set is made from (repository, commit, file hashes, licence,
            citation, how images were resized), recorded in the manifest as ``resources["external"]``.
        licence, citation: shown by ``list-sets`` and in leaderboard notes; results on the set must cite it.
    """

    load: Callable[..., Derived]
    identity: Callable[..., Mapping[str, Any]]
    licence: str
    citation: str


@dataclass(frozen=True)
class GeneratorEntry:
    """A registered set: how to make it and what it is.

    Attributes:
        name: set name used on the command line and as the store directory.
        fn: the generator.
        cue: what the set isolates.
        description: one line for ``list-sets``.
        severity_parameter: name of the parameter that the levels vary (``None``: a single level).
        severities: the parameter's value per level, level 1 first.
        defaults: the other parameters and their defaults.
        extras: names and dtypes of the extra per-image arrays the generator returns.
        requires: sets that must exist first; their arrays reach the generator through ``Batch.inputs``.
        backends: names of interchangeable implementations; the first is the default.
        backend_of: a required set whose backend this set shares (same ``backends``): choosing a backend for
            either chooses it for both, so sets drawn from one shared input can never disagree about it.
        resources: ``resources(backend)`` -> the identity of the files that backend loads (weights file and its
            sha256), recorded in the manifest; raises BenchError naming a missing file. Called once when planning.
        config: called with the set's parameters when planning (a frozen config class); raises BenchError for a
            value out of range, so a bad parameter fails before anything is built.
        gate: ``"set/array"`` of a required set holding one bool per clean image; only images where it is True
            are stored (with ``source_index``, their positions in the clean split), so the set is scored on
            them alone and its ratios are paired with clean accuracy on the same images.
        external: for a set read from outside the clean split, how to read it (``fn`` is then its ``load``).
        summary: ``summary(arrays)`` -> JSON-ready statistics of the stored set, recorded as the manifest's
            ``summary``; ``arrays`` holds the stored rows of ``labels`` and of every extra array.
        rank: the set's place in reports (leaderboard rows and columns, plots), lowest first; None: after every
            ranked set, by name.
        revision: raised whenever the generator's output changes for the same parameters and inputs; recorded
            in the manifest, so a store built by an earlier revision is rebuilt rather than reused.
    """

    name: str
    fn: GeneratorFn
    cue: Cue
    description: str
    severity_parameter: str | None = None
    severities: tuple[Any, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    backend_of: str | None = None
    resources: Callable[[str], Mapping[str, Any]] | None = None
    config: Callable[..., object] | None = None
    gate: str | None = None
    external: ExternalSource | None = None
    summary: Callable[[Mapping[str, np.ndarray]], Mapping[str, Any]] | None = None
    rank: int | None = None
    revision: int = 1

    @property
    def levels(self) -> tuple[Any, ...]:
        """The severity values to generate; a set without levels has the single value None."""
        return self.severities if self.severity_parameter else (None,)


def _load_builtin_generators() -> None:
    import libkd_bench.datasets_gen.generators  # noqa: F401  (registers on import)


_GENERATORS: Registry[GeneratorEntry] = Registry("set", loader=_load_builtin_generators)


def register_generator(
    name: str,
    *,
    cue: Cue,
    description: str,
    severity_parameter: str | None = None,
    severities: tuple[Any, ...] = (),
    defaults: Mapping[str, Any] | None = None,
    extras: Mapping[str, str] | None = None,
    requires: tuple[str, ...] = (),
    backends: tuple[str, ...] = (),
    backend_of: str | None = None,
    resources: Callable[[str], Mapping[str, Any]] | None = None,
    config: Callable[..., object] | None = None,
    gate: str | None = None,
    summary: Callable[[Mapping[str, np.ndarray]], Mapping[str, Any]] | None = None,
    rank: int | None = None,
    revision: int = 1,
) -> Callable[[GeneratorFn], GeneratorFn]:
    """Register ``fn`` as the generator of set ``name`` (attributes: :class:`GeneratorEntry`)."""

    def decorate(fn: GeneratorFn) -> GeneratorFn:
        if severity_parameter and not severities:
            raise ValueError(f"set {name!r} names a severity parameter but no severities")
        if backend_of is not None and backend_of not in requires:
            raise ValueError(f"set {name!r} shares the backend of {backend_of!r}, which it does not require")
        if gate is not None and gate.split("/")[0] not in requires:
            raise ValueError(f"set {name!r} is gated by {gate!r}, a set it does not require")
        _GENERATORS.add(
            name,
            GeneratorEntry(
                name=name,
                fn=fn,
                cue=Cue(cue),
                description=description,
                severity_parameter=severity_parameter,
                severities=tuple(severities),
                defaults=dict(defaults or {}),
                extras=dict(extras or {}),
                requires=tuple(requires),
                backends=tuple(backends),
                backend_of=backend_of,
                resources=resources,
                config=config,
                gate=gate,
                summary=summary,
                rank=rank,
                revision=revision,
            ),
        )
        return fn

    return decorate


def register_external_set(
    name: str,
    source: ExternalSource,
    *,
    cue: Cue,
    description: str,
    defaults: Mapping[str, Any] | None = None,
    config: Callable[..., object] | None = None,
) -> None:
    """Register set ``name`` read whole by ``source.load`` instead of made from the clean split."""
    _GENERATORS.add(
        name,
        GeneratorEntry(
            name=name,
            fn=source.load,  # type: ignore[arg-type]  (called as load(**params), never per chunk)
            cue=Cue(cue),
            description=description,
            defaults=dict(defaults or {}),
            config=config,
            external=source,
        ),
    )


def list_generators() -> list[str]:
    return _GENERATORS.names()


def get_generator(name: str) -> GeneratorEntry:
    return _GENERATORS.get(name)


# Families: one command-line name for several sets (``corruptions``: the 15 CIFAR-10-C sets). The sets of an
# opt-in family are left out of the default selection (no ``--sets``), being costly; naming the family or a
# member builds them.
@dataclass(frozen=True)
class Family:
    """One command-line name for several registered sets; ``rank`` places the family's summary rows (the
    pseudo-set of the family's name) in reports, as :attr:`GeneratorEntry.rank` places a set."""

    name: str
    members: tuple[str, ...]
    opt_in: bool = False
    rank: int | None = None


_FAMILIES: Registry[Family] = Registry("set family", loader=_load_builtin_generators)


def register_family(name: str, members: Sequence[str], *, opt_in: bool = False, rank: int | None = None) -> None:
    """Let ``name`` stand for the registered sets ``members`` wherever set names are parsed."""
    if _GENERATORS.find(name) is not None:
        raise ValueError(f"family {name!r} names a set")
    unknown = [member for member in members if _GENERATORS.find(member) is None]
    if unknown:
        raise ValueError(f"family {name!r} names unregistered sets {unknown}")
    _FAMILIES.add(name, Family(name, tuple(members), opt_in, rank))


def _opt_in_sets() -> set[str]:
    return {member for _, family in _FAMILIES.items() if family.opt_in for member in family.members}


def default_set_names() -> list[str]:
    """The sets built when none are named: every registered set except those of opt-in families."""
    opt_in = _opt_in_sets()
    return [name for name in list_generators() if name not in opt_in]


# Reports show the reference study's sets first (clean 0, its five cue sets 10-50, cue conflict 60), then the
# adversarial pseudo-sets (scored, not generated: ATTACK_RANK + the attack's place), the variants (80-90), the
# corruption family's means (120); sets without a rank follow by name.
ATTACK_RANK = 70
UNRANKED = 1_000_000


def set_rank(name: str) -> tuple[int, str]:
    """Sort key of a registered set or family name in reports: its rank, then its name; a name without a rank
    (or not registered) after every ranked one."""
    _GENERATORS.load()
    entry, family = _GENERATORS.find(name), _FAMILIES.find(name)
    rank = entry.rank if entry is not None else family.rank if family is not None else None
    return (UNRANKED if rank is None else rank, name)


def parse_set_names(text: str | None) -> list[str]:
    """Comma-separated set and family names (``None`` or empty: :func:`default_set_names`), each checked,
    families expanded in place, order kept."""
    names = []
    for name in [n.strip() for n in (text or "").split(",") if n.strip()] or default_set_names():
        if name in _FAMILIES:
            names.extend(_FAMILIES.get(name).members)
        elif name in _GENERATORS:
            names.append(name)
        else:
            raise BenchError(unknown_name_message("set", name, [*_GENERATORS.names(), *_FAMILIES.names()]))
    return list(dict.fromkeys(names))


def with_prerequisites(names: Sequence[str]) -> list[str]:
    """``names`` and every set they require, directly or not, each after the sets it requires."""
    ordered: dict[str, None] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in ordered:
            return
        if name in chain:
            raise ValueError(f"sets require each other in a cycle: {' -> '.join((*chain, name))}")
        for required in get_generator(name).requires:
            visit(required, (*chain, name))
        ordered[name] = None

    for name in names:
        visit(name, ())
    return list(ordered)


def linked_backends(names: Sequence[str], requested: Mapping[str, str | None]) -> dict[str, str | None]:
    """The backend of every set in ``names`` and their prerequisites, sets linked by ``backend_of`` sharing one.

    A set linked to another (``shape`` to ``segmentation``, say) takes the backend requested for any member of
    its group, else the group root's default; two different requests within one group are refused, so every set
    made from one shared input agrees on how that input was made.

    Args:
        names: sets to plan; their prerequisites are included.
        requested: explicit choices by set name (``None``: no choice).
    """
    closure = {name: get_generator(name) for name in with_prerequisites(names)}

    def root(name: str) -> str:
        while closure[name].backend_of is not None:
            name = closure[name].backend_of
        return name

    chosen: dict[str, tuple[str, str]] = {}
    for name, backend in requested.items():
        if backend is None or name not in closure:
            continue
        group = root(name)
        if group in chosen and chosen[group][0] != backend:
            other, other_backend = chosen[group][1], chosen[group][0]
            raise BenchError(
                f"--backend {other}={other_backend} and {name}={backend} disagree: both sets use the {group} "
                f"backend; name one of them"
            )
        chosen[group] = (backend, name)
    resolved: dict[str, str | None] = {}
    for name, entry in closure.items():
        group = closure[root(name)]
        if entry.backends != group.backends:
            raise ValueError(f"set {name!r} shares the backend of {group.name!r} but lists other backends")
        default = group.backends[0] if group.backends else None
        resolved[name] = chosen[group.name][0] if group.name in chosen else default
    return resolved


def check_ranges(what: str, config: object, checks: Mapping[str, bool]) -> None:
    """Raise a one-line BenchError for the first parameter of ``config`` whose check is False."""
    for name, ok in checks.items():
        if not ok:
            raise BenchError(
                f"{what} parameter {name}={getattr(config, name)!r} is out of range; see libkd-bench list-sets"
            )
