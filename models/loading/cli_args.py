"""Command-line flags that say how to load a model, shared by every command that loads one.

``add_model_arguments`` adds them to a parser (importing nothing heavy, so ``--help`` stays instant);
``load_options_from_args`` turns the parsed flags into :class:`LoadOptions`, a typed, picklable value that
travels to the scoring session and to its workers in place of the parsed flags, and
:meth:`LoadOptions.load` makes the :func:`libkd_bench.models.loading.load.load_model` call. Flags override a
checkpoint's sidecar, which overrides the architecture's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libkd_bench.core.errors import BenchError
from libkd_bench.core.normalisation import Preset
from libkd_bench.models.spec import Interpolation, SpecOverrides, parse_normalisation

KD_PARTS = ("student", "teacher")  # as libkd_bench.models.loading.contents, which imports torch

if TYPE_CHECKING:
    from libkd_bench.models.loading.load import LoadedModel


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --arch, --arch-module, --arch-path, --arch-option, --num-classes, --preprocess, --preset, --mean, --std,
    --input-size, --interpolation, --part and --unsafe-pickle."""
    group = parser.add_argument_group("model loading")
    group.add_argument("--arch", help="architecture (libkd-bench list-models) or timm:NAME; default: detected")
    group.add_argument(
        "--arch-module",
        action="append",
        default=[],
        metavar="FILE.py[:BUILDER]",
        help="import a user architecture file (repeatable); BUILDER(num_classes=...) is registered under its name",
    )
    group.add_argument(
        "--arch-path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory put first on the import path for --arch-module, e.g. your KD repository's root (repeatable)",
    )
    group.add_argument(
        "--arch-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option, e.g. num_heads=8 for vit_cifar (repeatable)",
    )
    group.add_argument("--num-classes", type=int, help="expected number of classes (default: from the checkpoint)")
    group.add_argument(
        "--preprocess",
        metavar="PRESET|MEAN,STD",
        help=f"normalisation: a preset ({', '.join(p.value for p in Preset)}) or six numbers mean R,G,B,std R,G,B "
        "([0, 1] scale); default: the architecture's published preset",
    )
    group.add_argument("--preset", choices=[p.value for p in Preset], help="normalisation preset (mean/std)")
    group.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), help="normalisation mean ([0, 1] scale)")
    group.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="normalisation std ([0, 1] scale)")
    group.add_argument("--input-size", type=int, help="side the network expects; inputs are resized to it")
    group.add_argument("--interpolation", choices=[i.value for i in Interpolation], help="resize mode")
    group.add_argument(
        "--part",
        choices=list(KD_PARTS),
        help="network of a distiller's checkpoint holding a student and a teacher (default: student)",
    )
    group.add_argument(
        "--unsafe-pickle",
        action="store_true",
        help="allow checkpoints that need arbitrary code to unpickle (e.g. a whole pickled model); trusted files only",
    )


def _option_value(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (bool, int, float, str)) else text


def parse_arch_options(items: list[str]) -> dict[str, Any]:
    """``["num_heads=8", "distilled=true"]`` -> ``{"num_heads": 8, "distilled": True}`` (JSON scalars, else strings)."""
    options = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key.strip().isidentifier():
            raise BenchError(f"--arch-option {item!r} must be KEY=VALUE, e.g. num_heads=8")
        options[key.strip()] = _option_value(value.strip())
    return options


def overrides_from_args(args: argparse.Namespace) -> SpecOverrides:
    """The spec fields the flags set (arch and num_classes included)."""
    mean = tuple(args.mean) if args.mean is not None else None
    std = tuple(args.std) if args.std is not None else None
    preset = args.preset
    if getattr(args, "preprocess", None) is not None:
        if preset is not None or mean is not None or std is not None:
            raise BenchError("give --preprocess or --preset/--mean/--std, not both")
        preset, mean, std = parse_normalisation(args.preprocess)
    return SpecOverrides(
        arch=args.arch,
        num_classes=args.num_classes,
        preset=preset,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        input_size=args.input_size,
        interpolation=args.interpolation,
        arch_kwargs=parse_arch_options(args.arch_option),
    )


@dataclass(frozen=True)
class LoadOptions:
    """How to load a checkpoint, beyond its reference: the model-loading flags, parsed and validated.

    Attributes:
        overrides: spec fields the caller sets (architecture, classes, normalisation, input size...).
        arch_modules: ``FILE.py[:BUILDER]`` user architecture files to import first.
        arch_paths: directories put first on the import path for ``arch_modules``.
        part: ``student`` or ``teacher`` of a distiller's checkpoint (None: the student).
        unsafe_pickle: allow checkpoints that need arbitrary code to unpickle.
    """

    overrides: SpecOverrides = field(default_factory=SpecOverrides)
    arch_modules: tuple[str, ...] = ()
    arch_paths: tuple[str, ...] = ()
    part: str | None = None
    unsafe_pickle: bool = False

    def portable(self) -> LoadOptions:
        """These options with every file made absolute, for a worker whose working directory is not ours."""
        return replace(
            self,
            arch_modules=tuple(_absolute_arch_module(item) for item in self.arch_modules),
            arch_paths=tuple(str(Path(item).expanduser().resolve()) for item in self.arch_paths),
        )

    def load(self, checkpoint: str | os.PathLike[str], device: str = "cpu") -> LoadedModel:
        """Load ``checkpoint`` (a file or ``zoo:NAME``) as these options say."""
        from libkd_bench.models.loading.load import load_model
        from libkd_bench.models.user_architectures import add_arch_paths

        add_arch_paths(self.arch_paths)
        return load_model(
            checkpoint,
            unsafe_pickle=self.unsafe_pickle,
            arch_modules=self.arch_modules,
            device=device,
            overrides=self.overrides,
            part=self.part,
        )


def _absolute_arch_module(reference: str) -> str:
    """``FILE.py[:BUILDER]`` with FILE made absolute."""
    head, separator, tail = reference.rpartition(":")
    if separator and head.endswith(".py") and tail.isidentifier():
        return f"{Path(head).expanduser().resolve()}:{tail}"
    return str(Path(reference).expanduser().resolve())


def load_options_from_args(args: argparse.Namespace) -> LoadOptions:
    """The :class:`LoadOptions` the flags added by :func:`add_model_arguments` say (validated now)."""
    return LoadOptions(
        overrides=overrides_from_args(args),
        arch_modules=tuple(args.arch_module),
        arch_paths=tuple(args.arch_path),
        part=getattr(args, "part", None),
        unsafe_pickle=args.unsafe_pickle,
    )


def load_model_from_args(checkpoint: str, args: argparse.Namespace, device: str = "cpu") -> LoadedModel:
    """Load ``checkpoint`` as the flags added by :func:`add_model_arguments` say."""
    return load_options_from_args(args).load(checkpoint, device)
