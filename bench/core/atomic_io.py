"""Writes that are either complete or absent: temp file (or directory) in the same folder, then rename.

A run that is killed half way leaves at most a hidden ``.tmp-<name>.<pid>.*`` entry behind, never a file or
set that looks complete. Readers ignore the temporary names, and the next write of the same name removes the
leftovers of processes that no longer exist.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from libkd_bench.core.errors import BenchError

TEMP_PREFIX = ".tmp-"


def _default_mode(directory: bool) -> int:
    """Permissions a plain ``open``/``mkdir`` would give under the current umask (mkstemp uses 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def _temp_prefix(final: Path) -> str:
    return f"{TEMP_PREFIX}{final.name}.{os.getpid()}."


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temporaries(final: Path) -> list[Path]:
    """Remove temporaries of ``final`` left by processes that have died; returns what was removed."""
    final = Path(final)
    removed = []
    head = f"{TEMP_PREFIX}{final.name}."
    if not final.parent.is_dir():
        return removed
    for entry in final.parent.iterdir():
        pid_text = entry.name[len(head) :].split(".", 1)[0] if entry.name.startswith(head) else ""
        if not pid_text.isdigit() or _process_exists(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or fail with a message naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot create output directory {path}: {exc.strerror}; choose a writable location") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BenchError(f"output directory {path} is not writable; choose a writable location")
    return path


@contextlib.contextmanager
def removed_if_left_empty(directory: Path) -> Iterator[None]:
    """A block that may create ``directory``: when it fails, a directory it created and left empty is removed, so
    a failed command leaves nothing behind."""
    directory = Path(directory)
    existed = directory.exists()
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty: a failed run never deletes what it did not create
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode(directory=False))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``final``; on success it replaces ``final`` in one rename.

    An existing ``final`` is first moved into a hidden ``.old`` temporary and deleted only after the new
    directory is in place (POSIX has no atomic swap of two directories; a crash between the two renames leaves
    the old copy in that temporary). On any exception the new temporary directory is deleted.
    """
    final = Path(final)
    ensure_writable_dir(final.parent)
    sweep_stale_temporaries(final)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, _default_mode(directory=True))
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(final) + "old.", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_temporary(path: Path) -> bool:
    return Path(path).name.startswith(TEMP_PREFIX)
