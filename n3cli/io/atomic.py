"""Atomic file writes: a temp file in the target directory, then ``os.replace``.

A reader never sees a half-written output: either the old file (or none) or the new
one. Temp files are hidden (``.name.<random>.tmp``) so a batch walk skips them, and are
removed on any exception, ``KeyboardInterrupt`` included. :func:`install_signal_cleanup`
turns SIGTERM into the same unwinding path so a killed batch leaves no debris.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable

from n3cli.errors import ImageWriteError

# Temp files being written right now; removed by the signal handler as a last resort.
_ACTIVE: set[str] = set()
_LOCK = threading.Lock()


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives (subclass: same cleanup paths)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"signal {signum}")
        self.signum = signum


def describe_os_error(err: OSError) -> str:
    """Short, user-facing reason for an OS error (no errno noise)."""
    return err.strerror.lower() if err.strerror else str(err)


def writable_folder(folder: Path | str, what: str) -> Path:
    """Create ``folder`` (and parents) and check that files can be written in it, before
    any long work; a :class:`UsageError` naming ``what`` (e.g. "--out") otherwise."""
    from n3cli.errors import UsageError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".n3-probe-", suffix=".tmp"):
            pass
    except OSError as err:
        raise UsageError(f"{what} {folder} is not a writable folder: {describe_os_error(err)}",
                         "choose another folder") from None
    return folder


def atomic_write(path: Path | str, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file to ``path``.

    ``write`` receives a path in the same directory (so the rename cannot cross file
    systems). Missing parent directories are created. Any failure removes the temp file
    and raises :class:`ImageWriteError` naming ``path``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ImageWriteError(f"{path}: cannot create directory {parent}: {describe_os_error(err)}") from None
    if path.is_dir():
        raise ImageWriteError(f"{path}: is a directory, cannot write a file there")
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=parent)
    except OSError as err:
        raise ImageWriteError(f"{path}: cannot write to {parent}: {describe_os_error(err)}") from None
    os.close(fd)
    with _LOCK:
        _ACTIVE.add(tmp)
    try:
        write(tmp)
        _copy_mode(path, tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise ImageWriteError(f"{path}: cannot write: {describe_os_error(err)}") from None
    finally:
        # Runs on success too, when the temp name no longer exists.
        _discard(tmp)
    return path


NAME_MAX = 255  # bytes in one file name (ext4, XFS, btrfs, APFS, NTFS in UTF-16 units)


def temp_prefix(name: str) -> str:
    """``.NAME.`` for a temp file beside ``NAME``, the name shortened so that the whole temp
    name (8 random characters and ``.tmp`` added) still fits a file name's limit."""
    room = NAME_MAX - 2 - 8 - 4
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > room:
        name = raw[:room].decode("utf-8", "ignore")
    return f".{name}."


def _copy_mode(target: Path, tmp: str) -> None:
    """mkstemp creates 0600 files; give outputs normal permissions (umask, or the old file's)."""
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def _discard(tmp: str) -> None:
    with _LOCK:
        _ACTIVE.discard(tmp)
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    except OSError:  # pragma: no cover - nothing better to do while unwinding
        pass


def cleanup_temp_files() -> None:
    """Remove every temp file still being written (used on abrupt exits)."""
    with _LOCK:
        pending = list(_ACTIVE)
    for tmp in pending:
        _discard(tmp)


def install_signal_cleanup() -> None:
    """Make SIGTERM (and SIGHUP) unwind like Ctrl-C, so ``finally`` blocks remove temp files.

    Only possible in the main thread; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):  # noqa: ARG001 - signal API
        raise Terminated(signum)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError):  # pragma: no cover - exotic platforms
                pass
