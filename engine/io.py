"""Atomic file and folder writes: a crash or a full disk never leaves a half-written output behind.

Files and folders come out with the usual modes (0644 / 0755 under umask 022): `mkstemp` and
`mkdtemp` create private ones, so the process umask is applied before they are moved into place.
Temporaries are named `.<name>.<pid>.<random>.tmp...` beside their target: the next write of that
target removes those whose process is gone (killed with SIGKILL, or the machine lost power), so
interrupted runs do not pile up hidden copies of large outputs.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import re
import shutil
import tempfile
import tokenize
import zipfile
from collections.abc import Iterator
from pathlib import Path

from engine.errors import UserFacingError

_RENAME_EXCHANGE = 2     # renameat2 flag (Linux >= 3.15): swap two paths in one atomic step
_AT_FDCWD = -100


class OutputFolderError(UserFacingError):
    """An output folder that cannot be replaced without losing something the user made."""


# What numpy raises on a damaged .npy / .npz (zip, header parsed by ast and tokenize, data): every
# reader of the project's array files catches this one tuple.
DAMAGED_ARRAY_FILE = (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile,
                      SyntaxError, tokenize.TokenError)


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: Path, *, directory: bool = False) -> None:
    """chmod `path` to 0666 (files) or 0777 (folders) less the process umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # another user's process
        return True
    return True


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


_TEMPORARY_TAIL = re.compile(r"(\d+)\.[a-z0-9_]{8}\.tmp")     # after `.<name>.`: the pid, mkstemp's 8 characters


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries beside `target` (files or folders named by _temporary_prefix) whose
    process no longer runs; returns them. A live process's temporary is left alone. The names are
    matched by one pattern, not one made per target: a folder whose names never repeat (the view
    weights' store) would fill re's and pathlib's caches with patterns used once."""
    stale = []
    prefix = f".{target.name}."
    with os.scandir(target.parent) as entries:
        names = [entry.name for entry in entries if entry.name.startswith(prefix)]
    for name in names:
        path, match = target.parent / name, _TEMPORARY_TAIL.match(name, len(prefix))
        if match and not _process_alive(int(match[1])):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            stale.append(path)
    return stale


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, else remove it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp" + target.suffix,
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        public_mode(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write bytes or text to `path` atomically (temporary file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically with renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def check_output_dir(path: str | os.PathLike, marker: str) -> Path:
    """Refuse (OutputFolderError) an output folder path that is a file, lies under a file, cannot be
    created, or is a non-empty folder without `marker` (not an earlier output); creates its parent.
    Commands call it before their work; atomic_dir calls it again."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise OutputFolderError(f"{target} exists and is a file: give --out a folder path")
    if target.is_dir() and any(target.iterdir()) and not (target / marker).exists():
        raise OutputFolderError(f"{target} holds files that are not an earlier output (no {marker}): "
                                "give --out a new or empty folder")
    blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputFolderError(f"{blocking} is a file, so {target} cannot be a folder: give --out another path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputFolderError(f"cannot create {target.parent} ({error.strerror}): give --out a writable "
                                "folder") from None
    if not os.access(target.parent, os.W_OK):
        raise OutputFolderError(f"{target.parent} is not writable: give --out a writable folder")
    return target


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, marker: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` as a whole.

    An interrupted run leaves `path` exactly as it was (the old output, or nothing); a finished one
    leaves exactly the new output. The swap is one atomic exchange where the kernel has one, else
    two renames. `marker` names a file every output of this kind holds (e.g. "summary.json"): an
    existing non-empty folder without it is not ours to replace, and is refused before any work.
    """
    target = check_output_dir(path, marker)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        public_mode(tmp, directory=True)
        if not target.exists():
            os.replace(tmp, target)
        elif _exchange(tmp, target):
            shutil.rmtree(tmp)                  # tmp now holds the old output
        else:
            old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp.old", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes: the identity of a field or checkpoint file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
