"""Opening a checkpoint reference (a file path or ``zoo:NAME``): its identity, its weights, what it says about itself.

The identity (:class:`CheckpointInfo`) is what run records keep: the file's sha256, format, where the weights
sat inside it, and the training metadata stored beside them. The spec defaults a checkpoint brings are its
zoo entry's and its sidecar's (the sidecar wins).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libkd_bench.core.locations import ZOO_PREFIX, as_given
from libkd_bench.models.loading.contents import StateDict, find_state_dict
from libkd_bench.models.loading.formats import CheckpointFile, read_checkpoint_file
from libkd_bench.models.loading.sidecar import read_sidecar, sidecar_path
from libkd_bench.models.spec import SpecOverrides
from libkd_bench.models.zoo import fetch, is_zoo_reference, zoo_entry


@dataclass(frozen=True)
class CheckpointInfo:
    """Identity of a loaded checkpoint.

    Attributes:
        path: the file read (for ``zoo:NAME``, the verified mirror or cache copy).
        sha256: hex digest of the file's bytes.
        format: ``torch-zip``, ``torch-legacy``, ``safetensors`` or ``torchscript``.
        metadata: JSON-able training metadata stored in the file (``epoch``, ``best_prec1``, ``args``...).
        size_bytes: file size.
        location: wrapper keys followed to the weights, "/"-joined ("" when the file is the state dict).
        stripped_prefix: key prefix removed to fit the architecture (``module.``...).
        zoo: the zoo name, for ``zoo:NAME`` references.
        sidecar: the sidecar file whose spec fields were used, if any.
        other_entries: top-level entries kept neither as weights nor as metadata (optimizer state, EMA...).
        part: for a distiller's checkpoint, the network loaded (``student`` or ``teacher``); "" otherwise.
        other_parts: what a distiller's checkpoint also holds and was not loaded (``teacher``, connectors).
    """

    path: str
    sha256: str
    format: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    size_bytes: int = 0
    location: str = ""
    stripped_prefix: str = ""
    zoo: str | None = None
    sidecar: str | None = None
    other_entries: tuple[str, ...] = ()
    part: str = ""
    other_parts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "format": self.format,
            "metadata": dict(self.metadata),
            "size_bytes": self.size_bytes,
            "location": self.location,
            "stripped_prefix": self.stripped_prefix,
            "zoo": self.zoo,
            "sidecar": self.sidecar,
            "other_entries": list(self.other_entries),
            # only for a distiller's checkpoint, so the records of single networks stay as they were
            **({"part": self.part, "other_parts": list(self.other_parts)} if self.part else {}),
        }


@dataclass(frozen=True)
class OpenedCheckpoint:
    """A read checkpoint: file, weights, and the spec fields its zoo entry and sidecar set."""

    file: CheckpointFile
    weights: StateDict
    defaults: SpecOverrides
    zoo: str | None = None
    sidecar: Path | None = None

    def info(self, stripped_prefix: str = "") -> CheckpointInfo:
        return CheckpointInfo(
            path=f"{ZOO_PREFIX}{self.zoo}" if self.zoo else as_given(self.file.path),
            sha256=self.file.sha256,
            format=self.file.format.value,
            metadata={**self.file.header, **self.weights.metadata},
            size_bytes=self.file.size_bytes,
            location=self.weights.location,
            stripped_prefix=stripped_prefix,
            zoo=self.zoo,
            sidecar=None if self.sidecar is None else self.sidecar.name if self.zoo else as_given(self.sidecar),
            other_entries=self.weights.other_entries,
            part=self.weights.part,
            other_parts=self.weights.other_parts,
        )


def open_checkpoint(
    checkpoint: str | os.PathLike[str], *, unsafe_pickle: bool = False, part: str | None = None
) -> OpenedCheckpoint:
    """Read ``checkpoint`` (a path or ``zoo:NAME``) and find its weights; every failure is a one-line BenchError.

    ``part`` picks the student (default) or the teacher of a distiller's checkpoint.
    """
    zoo_name, defaults = None, SpecOverrides()
    if is_zoo_reference(checkpoint):
        zoo_name = str(checkpoint)[len(ZOO_PREFIX) :]
        defaults = zoo_entry(zoo_name).spec
        path = fetch(zoo_name)
    else:
        path = Path(checkpoint)
    sidecar = sidecar_path(path)
    if sidecar is not None:
        defaults = defaults.then(read_sidecar(sidecar))
    file = read_checkpoint_file(path, unsafe_pickle=unsafe_pickle)
    weights = find_state_dict(file.content, f"checkpoint {path}", part)
    return OpenedCheckpoint(file, weights, defaults, zoo_name, sidecar)
