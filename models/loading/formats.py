"""Reading checkpoint files of every format KD code writes, without running code hidden in them.

Formats, told apart by their first bytes: ``torch.save`` zip archives (PyTorch >= 1.6), legacy pre-zip
``torch.save`` pickles, safetensors, and TorchScript archives (a zip with ``code/``; only its weights are kept,
its program never runs). Pickled checkpoints are always unpickled with ``weights_only=True``, which refuses
every class or function that is not plain data; on top of torch's own list it allows what KD training
scripts routinely store beside the weights: the ``argparse.Namespace`` of the run (RepDistiller, torchdistill,
DeiT), numpy scalars and arrays, and paths. Anything else, a whole pickled ``nn.Module`` included, is refused
unless the caller opts into unsafe unpickling, which then warns. Tensors saved on a GPU are read onto the CPU.

Every failure (empty, truncated, garbage, refused) is a one-line BenchError naming the file.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import hashlib
import io
import json
import pathlib
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libkd_bench.core.errors import BenchError, BenchWarning

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
_UNSAFE_HINT = "load it with --unsafe-pickle only if you trust where the file came from"


class CheckpointFormat(str, enum.Enum):
    TORCH_ZIP = "torch-zip"
    TORCH_LEGACY = "torch-legacy"
    SAFETENSORS = "safetensors"
    TORCHSCRIPT = "torchscript"


class UnsafePickleWarning(BenchWarning):
    """A checkpoint was unpickled with arbitrary code allowed, because the caller asked for it."""


@dataclass(frozen=True)
class CheckpointFile:
    """What a checkpoint file held.

    Attributes:
        path: the file.
        sha256: hex digest of the file's bytes: the checkpoint's identity in every record.
        size_bytes: file size.
        format: how the file was written.
        content: the unpickled object (a mapping, a module...), or the tensor dict of safetensors/TorchScript.
        header: safetensors' ``__metadata__`` strings (empty for other formats).
    """

    path: Path
    sha256: str
    size_bytes: int
    format: CheckpointFormat
    content: Any
    header: Mapping[str, str] = field(default_factory=dict)


def sniff_format(data: bytes, path: Path) -> CheckpointFormat:
    """The format of a checkpoint's bytes, or a BenchError saying the file is none of them."""
    if not data:
        raise BenchError(f"checkpoint {path} is empty (0 bytes); the download or copy did not finish")
    if data.startswith(ZIP_MAGIC):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            raise BenchError(f"checkpoint {path} is a truncated or damaged zip archive; copy it again") from None
        is_script = any(name.endswith("/constants.pkl") or "/code/" in name for name in names)
        return CheckpointFormat.TORCHSCRIPT if is_script else CheckpointFormat.TORCH_ZIP
    if len(data) > 8:  # before pickles: a safetensors header size may start with the byte 0x80
        (header_size,) = struct.unpack("<Q", data[:8])
        if 0 < header_size <= len(data) - 8 and data[8:9] == b"{":
            return CheckpointFormat.SAFETENSORS
    if data.startswith(PICKLE_PROTO):
        return CheckpointFormat.TORCH_LEGACY
    raise BenchError(
        f"checkpoint {path} is not a torch.save, safetensors or TorchScript file (it starts with {data[:8]!r})"
    )


def _safe_globals() -> list[Any]:
    """Classes and functions beyond torch's defaults that unpickle to plain data, never to behaviour."""
    import numpy as np

    multiarray = np._core.multiarray
    dtype_classes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSUV"}
    return [
        argparse.Namespace,
        pathlib.PosixPath,
        pathlib.PurePosixPath,
        np.dtype,
        np.ndarray,
        multiarray.scalar,
        multiarray._reconstruct,
        (multiarray.scalar, "numpy.core.multiarray.scalar"),  # pickled by numpy < 2
        (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        *sorted(dtype_classes, key=lambda c: c.__name__),
    ]


@contextlib.contextmanager
def _quiet_torch_loading() -> Iterator[None]:
    """Silence torch's notes that are about its own internals, not the user's file."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected pickle protocol", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
        yield


def _refusal(path: Path, exc: pickle.UnpicklingError) -> BenchError:
    text = str(exc)
    unsupported = re.search(r"GLOBAL ([\w.]+)", text)
    if unsupported:
        what = unsupported.group(1)
        return BenchError(
            f"checkpoint {path} needs {what} to be unpickled, which safe (weights-only) loading refuses because "
            f"unpickling can run code; {_UNSAFE_HINT}"
        )
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", text, flags=re.DOTALL)
    reason = " ".join(detail.group(1).split())[:120] if detail else "unreadable pickle"
    return BenchError(
        f"checkpoint {path} cannot be read safely ({reason}): it is damaged, not a torch.save file, or uses "
        f"pickle features weights-only loading refuses; {_UNSAFE_HINT}"
    )


def _torch_load(data: bytes, path: Path, unsafe_pickle: bool) -> Any:
    """Unpickle a torch.save file: weights-only, or with arbitrary code when ``unsafe_pickle`` allows it (warns)."""
    import torch

    try:
        with _quiet_torch_loading(), torch.serialization.safe_globals(_safe_globals()):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refusal = _refusal(path, exc)
        if not unsafe_pickle:
            raise refusal from None
    except (RuntimeError, EOFError, ValueError, struct.error, zipfile.BadZipFile) as exc:
        message = " ".join(str(exc).split())[:120]
        raise BenchError(f"checkpoint {path} is truncated or damaged ({message}); copy it again") from None
    warnings.warn(
        f"unpickling {path} with arbitrary code allowed (--unsafe-pickle): {refusal}", UnsafePickleWarning, stacklevel=3
    )
    with _quiet_torch_loading():
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def _safetensors_load(data: bytes, path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
        (header_size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
    except (SafetensorError, ValueError) as exc:
        raise BenchError(f"safetensors checkpoint {path} is truncated or damaged ({exc}); copy it again") from None
    return tensors, {str(k): str(v) for k, v in header.items()}


def _torchscript_weights(data: bytes, path: Path) -> dict[str, Any]:
    import torch

    try:
        with _quiet_torch_loading():
            scripted = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except RuntimeError as exc:
        message = " ".join(str(exc).split())[:120]
        raise BenchError(f"TorchScript checkpoint {path} cannot be read ({message}); copy it again") from None
    return dict(scripted.state_dict())


def read_checkpoint_file(path: str | Path, *, unsafe_pickle: bool = False) -> CheckpointFile:
    """Read and identify one checkpoint file (see the module docstring for what is allowed)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BenchError(f"checkpoint {path} does not exist; give a checkpoint file or zoo:NAME") from None
    except IsADirectoryError:
        raise BenchError(f"checkpoint {path} is a directory; give the checkpoint file inside it") from None
    except OSError as exc:
        raise BenchError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    fmt = sniff_format(data, path)
    header: dict[str, str] = {}
    if fmt is CheckpointFormat.SAFETENSORS:
        content, header = _safetensors_load(data, path)
    elif fmt is CheckpointFormat.TORCHSCRIPT:
        content = _torchscript_weights(data, path)
    else:
        content = _torch_load(data, path, unsafe_pickle)
    return CheckpointFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        format=fmt,
        content=content,
        header=header,
    )
