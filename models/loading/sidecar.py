"""Sidecar files: a checkpoint's model spec written next to it, ``CKPT.json`` or ``CKPT.yaml``.

For ``runs/student.pth`` the sidecar is ``runs/student.pth.json`` (or ``.yaml``/``.yml``): a mapping with any
of ``arch``, ``num_classes``, ``preset`` or ``mean``+``std``, ``input_size``, ``interpolation`` and
``arch_kwargs`` (builder options, e.g. ``{num_heads: 8}``). What it says overrides the architecture's
defaults; command-line flags override it. A ``training`` mapping (how the weights were made: recipe, method,
teachers...) is allowed and not part of the spec. Anything else in the file is an error, so a typo never passes
silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.models.spec import SpecOverrides

SUFFIXES = (".json", ".yaml", ".yml")
FIELDS = ("arch", "num_classes", "preset", "mean", "std", "input_size", "interpolation", "arch_kwargs")
INFO_FIELDS = ("training",)  # provenance, read by people and tools but not by the loader


def sidecar_path(checkpoint: Path) -> Path | None:
    """The sidecar of ``checkpoint``, None without one; two sidecars are an error."""
    found = [p for p in (checkpoint.with_name(checkpoint.name + s) for s in SUFFIXES) if p.is_file()]
    if len(found) > 1:
        raise BenchError(f"{checkpoint} has several sidecars ({', '.join(p.name for p in found)}); keep one")
    return found[0] if found else None


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise BenchError(f"sidecar {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise BenchError(f"sidecar {path} is not valid YAML{where}") from None


def read_sidecar(path: Path) -> SpecOverrides:
    """The spec fields a sidecar file sets."""
    data = _parse(path)
    if not isinstance(data, dict):
        raise BenchError(f"sidecar {path} must be a mapping of {', '.join(FIELDS)}; it holds a {type(data).__name__}")
    for key in data:
        if key not in FIELDS + INFO_FIELDS:
            raise BenchError(f"sidecar {path}: " + unknown_name_message("field", str(key), FIELDS + INFO_FIELDS))
    for key in ("arch_kwargs", *INFO_FIELDS):
        if not isinstance(data.get(key, {}), dict):
            raise BenchError(f"sidecar {path}: {key} must be a mapping")
    try:
        return SpecOverrides(**{k: v for k, v in data.items() if v is not None and k in FIELDS})
    except BenchError as exc:
        raise BenchError(f"sidecar {path}: {exc}") from None
