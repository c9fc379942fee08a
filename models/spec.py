"""What a wrapped model expects of its input: architecture, class count, normalisation, input size, resizing.

A :class:`ModelSpec` is complete and frozen; it is recorded in every run, so two runs of one checkpoint with
different preprocessing never pass for each other. A :class:`SpecOverrides` is a partial spec: what a sidecar
file, a zoo entry or command-line flags say. Overrides are layered (architecture defaults < zoo entry < sidecar
< caller) and resolved into one ModelSpec once the architecture is known.

Normalisation is one unit: a preset *or* explicit mean and std. A later layer that names either replaces the
earlier layer's choice as a whole, so a sidecar's ``preset: imagenet`` and a flag's ``--mean/--std`` never mix.
This module imports no torch: the command line builds its flags from it.
"""

from __future__ import annotations

import enum
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import PRESET_STATS, Preset, Triple

CIFAR_INPUT_SIZE = 32


class Interpolation(str, enum.Enum):
    """How 32x32 inputs are resized to an architecture's input size (``torch.nn.functional.interpolate`` modes)."""

    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    NEAREST = "nearest"


def enum_member(kind: type[enum.Enum], value: Any, what: str) -> Any:
    """``kind(value)``, or a one-line BenchError naming ``what`` and the known values."""
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise BenchError(f"unknown {what} {value!r}; known: {known}") from None


def parse_normalisation(text: str) -> tuple[Preset | None, Triple | None, Triple | None]:
    """``--preprocess`` text -> (preset, mean, std): a preset name, or six numbers ``R,G,B,R,G,B`` (mean then std;
    a ``/`` may separate the two), on the [0, 1] scale."""
    if text.strip() in {member.value for member in Preset}:
        return Preset(text.strip()), None, None
    parts = [p for p in text.replace("/", ",").split(",") if p.strip()]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 6:
        known = ", ".join(member.value for member in Preset)
        raise BenchError(
            f"--preprocess {text!r} is neither a preset ({known}) nor six numbers mean R,G,B,std R,G,B, e.g. "
            "--preprocess 0.4914,0.4822,0.4465,0.2470,0.2435,0.2616"
        )
    return None, _triple(numbers[:3], "mean"), _triple(numbers[3:], "std")


def _triple(value: Sequence[float], what: str) -> Triple:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise BenchError(f"{what} must be three numbers (R, G, B), got {value!r}") from None
    if len(numbers) != 3 or not all(math.isfinite(v) for v in numbers):
        raise BenchError(f"{what} must be three finite numbers (R, G, B), got {value!r}")
    return numbers  # type: ignore[return-value]


def _integer(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _arch_kwargs(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of builder keyword arguments; values must be JSON scalars so records can hold them."""
    kwargs = dict(value or {})
    for key, item in kwargs.items():
        if not isinstance(key, str) or not isinstance(item, (bool, int, float, str)):
            raise BenchError(f"architecture option {key}={item!r} must be a number, a string or a boolean")
    return types.MappingProxyType(dict(sorted(kwargs.items())))


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to feed [0, 1] CIFAR images to a network and read its logits.

    Attributes:
        arch: registry name (``resnet20_a``), ``timm:NAME``, or a user architecture's name.
        num_classes: width of the logits, at least 2.
        mean, std: per-channel normalisation applied inside the wrapper, RGB, on the [0, 1] scale; std > 0.
        preset: the preset mean/std came from, or None for explicit values.
        input_size: side in pixels the network expects; 32x32 inputs are resized when it differs.
        interpolation: resize mode used when ``input_size`` differs from the input's size.
        arch_kwargs: builder keyword arguments beyond ``num_classes`` (e.g. a ViT's ``num_heads``).
        class_map: for a network trained on other classes, the network output scored as each class of the
            source, in class order (see :mod:`libkd_bench.models.loading.class_map`); ``num_classes`` is then the number
            of scored classes. Empty: the outputs as they are.
    """

    # architecture
    arch: str
    num_classes: int
    # normalisation
    mean: Triple
    std: Triple
    preset: Preset | None = None
    # geometry
    input_size: int = CIFAR_INPUT_SIZE
    interpolation: Interpolation = Interpolation.BILINEAR
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # outputs
    class_map: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.arch:
            raise BenchError("a model spec needs an architecture name")
        _integer(self.num_classes, "num_classes", 2)
        _integer(self.input_size, "input_size", 1)
        preset = None if self.preset is None else enum_member(Preset, self.preset, "normalisation preset")
        mean, std = _triple(self.mean, "mean"), _triple(self.std, "std")
        if min(std) <= 0:
            raise BenchError(f"std must be positive in every channel, got {std}")
        if preset is not None and (mean, std) != PRESET_STATS[preset]:
            raise BenchError(f"mean/std {mean}/{std} are not those of preset {preset.value}; give one or the other")
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "interpolation", enum_member(Interpolation, self.interpolation, "interpolation"))
        object.__setattr__(self, "arch_kwargs", _arch_kwargs(self.arch_kwargs))
        class_map = tuple(_integer(i, "class_map index", 0) for i in self.class_map)
        if class_map and len(class_map) != self.num_classes:
            raise BenchError(f"class_map names {len(class_map)} outputs for {self.num_classes} classes")
        object.__setattr__(self, "class_map", class_map)

    def __reduce__(self) -> tuple[type[ModelSpec], tuple[Any, ...]]:
        """Pickle by the constructor's arguments (the read-only ``arch_kwargs`` view does not pickle)."""
        values = (getattr(self, item.name) for item in fields(self))
        return type(self), tuple(dict(value) if isinstance(value, Mapping) else value for value in values)

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict; every run record and logits cache key holds exactly this."""
        return {
            "arch": self.arch,
            "num_classes": self.num_classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "preset": None if self.preset is None else self.preset.value,
            "input_size": self.input_size,
            "interpolation": self.interpolation.value,
            "arch_kwargs": dict(self.arch_kwargs),
            # only when set, so the specs (and logits cache keys) of unmapped models stay as they were
            **({"class_map": list(self.class_map)} if self.class_map else {}),
        }


@dataclass(frozen=True)
class SpecOverrides:
    """A partial model spec: every field None means "not said here".

    ``preset`` and ``mean``/``std`` are one normalisation choice; naming both in one layer is an error, and
    ``mean`` needs ``std``. ``arch_kwargs`` of a later layer update the earlier layer's key by key, unless the
    later layer names another architecture.
    """

    arch: str | None = None
    num_classes: int | None = None
    preset: Preset | None = None
    mean: Triple | None = None
    std: Triple | None = None
    input_size: int | None = None
    interpolation: Interpolation | None = None
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset is not None:
            object.__setattr__(self, "preset", enum_member(Preset, self.preset, "normalisation preset"))
        if self.interpolation is not None:
            object.__setattr__(self, "interpolation", enum_member(Interpolation, self.interpolation, "interpolation"))
        if (self.mean is None) != (self.std is None):
            raise BenchError("give mean and std together (or a preset)")
        if self.mean is not None:
            if self.preset is not None:
                raise BenchError("give a normalisation preset or explicit mean/std, not both")
            object.__setattr__(self, "mean", _triple(self.mean, "mean"))
            object.__setattr__(self, "std", _triple(self.std, "std"))  # type: ignore[arg-type]
        if self.num_classes is not None:
            _integer(self.num_classes, "num_classes", 2)
        if self.input_size is not None:
            _integer(self.input_size, "input_size", 1)
        object.__setattr__(self, "arch_kwargs", _arch_kwargs(self.arch_kwargs))

    def __reduce__(self) -> tuple[type[SpecOverrides], tuple[Any, ...]]:
        """Pickle by the constructor's arguments (the read-only ``arch_kwargs`` view does not pickle)."""
        values = (getattr(self, item.name) for item in fields(self))
        return type(self), tuple(dict(value) if isinstance(value, Mapping) else value for value in values)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> SpecOverrides:
        """A layer that says everything ``spec`` says."""
        normalisation = {"preset": spec.preset} if spec.preset else {"mean": spec.mean, "std": spec.std}
        return cls(
            arch=spec.arch,
            num_classes=spec.num_classes,
            input_size=spec.input_size,
            interpolation=spec.interpolation,
            arch_kwargs=spec.arch_kwargs,
            **normalisation,
        )

    def then(self, later: SpecOverrides) -> SpecOverrides:
        """This layer with ``later`` on top: what ``later`` says wins."""
        changes: dict[str, Any] = {
            f.name: getattr(later, f.name)
            for f in fields(self)
            if f.name not in {"preset", "mean", "std", "arch_kwargs"} and getattr(later, f.name) is not None
        }
        if later.preset is not None or later.mean is not None:
            changes.update(preset=later.preset, mean=later.mean, std=later.std)
        switched = later.arch is not None and later.arch != self.arch  # options of another architecture do not apply
        changes["arch_kwargs"] = {**({} if switched else self.arch_kwargs), **later.arch_kwargs}
        return replace(self, **changes)

    def resolve(self, arch: str, num_classes: int) -> ModelSpec:
        """The complete spec; ``arch`` and ``num_classes`` are the values settled by loading."""
        if self.mean is not None:
            preset, (mean, std) = None, (self.mean, self.std)
        else:
            preset = self.preset or Preset.CIFAR10
            mean, std = PRESET_STATS[preset]
        return ModelSpec(
            arch=arch,
            num_classes=num_classes,
            mean=mean,
            std=std,  # type: ignore[arg-type]
            preset=preset,
            input_size=self.input_size or CIFAR_INPUT_SIZE,
            interpolation=self.interpolation or Interpolation.BILINEAR,
            arch_kwargs=self.arch_kwargs,
        )
