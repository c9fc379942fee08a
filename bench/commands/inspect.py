"""Show what a checkpoint holds: format, where the weights sit, tensors and parameters, the architecture (detected
from keys and shapes, or named with --arch), the preprocessing it loads with, and the metadata stored with it
(epoch, best accuracy, run arguments). With an architecture the model is loaded as `score` would load it."""

from __future__ import annotations

import argparse
import json

NAME = "inspect"
HELP = "show a checkpoint's format, tensors, architecture, preprocessing and stored metadata"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from libkd_bench.models.loading.cli_args import add_model_arguments

    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint file or zoo:NAME")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_model_arguments(parser)


def _short(value: object, limit: int = 100) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _part_line(part: str, other_parts: tuple[str, ...]) -> str:
    """Which network of a distiller's checkpoint is scored, what is dropped, and how to pick the other."""
    other = next((p for p in ("student", "teacher") if p != part and p in other_parts), None)
    switch = f"; --part {other} for the {other}" if other else ""
    return f"{part} (scored; dropped: {', '.join(other_parts)}){switch}"


def run(args: argparse.Namespace) -> int:
    from libkd_bench.models.loading.cli_args import overrides_from_args
    from libkd_bench.models.loading.inspection import inspect_checkpoint
    from libkd_bench.models.user_architectures import add_arch_paths

    add_arch_paths(args.arch_path)
    report = inspect_checkpoint(
        args.checkpoint,
        unsafe_pickle=args.unsafe_pickle,
        arch_modules=args.arch_module,
        overrides=overrides_from_args(args),
        part=args.part,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True, allow_nan=False))
        return 0
    info, spec = report.info, report.spec
    where = f"under '{info.location}'" if info.location else "the file is the state dict"
    if info.stripped_prefix:
        where += f", prefix '{info.stripped_prefix}' removed"
    lines = [
        ("checkpoint", info.path + (f" (zoo:{info.zoo})" if info.zoo else "")),
        ("sha256", info.sha256),
        ("size", f"{info.size_bytes / 1e6:.2f} MB"),
        ("format", info.format),
        ("weights", where),
        *([("part", _part_line(info.part, info.other_parts))] if info.part else []),
        ("tensors", f"{report.num_tensors} ({report.num_values:,} values)"),
    ]
    if spec is None:
        candidates = f" ({', '.join(report.candidates)})" if report.candidates else ""
        lines.append(("architecture", f"not detected: {report.detection_note}{candidates}"))
    else:
        options = ", ".join(f"{k}={v}" for k, v in spec.arch_kwargs.items())
        how = "detected" if report.arch_detected else "named"
        normalisation = f"preset {spec.preset.value}" if spec.preset else f"mean {spec.mean}, std {spec.std}"
        lines += [
            ("architecture", f"{spec.arch}{f'({options})' if options else ''}, {spec.num_classes} classes ({how})"),
            ("layout", report.layout),
            ("parameters", f"{report.num_parameters:,}"),
            ("input", f"{normalisation}; {spec.input_size}x{spec.input_size} ({spec.interpolation.value} resize)"),
        ]
    if info.sidecar:
        lines.append(("sidecar", info.sidecar))
    if info.other_entries:
        lines.append(("also holds", ", ".join(info.other_entries)))
    lines += [(f"metadata.{key}", _short(value)) for key, value in sorted(info.metadata.items())]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label:<{width}}  {value}")
    return 0
