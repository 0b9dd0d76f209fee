"""Atomic file writes: the file at `path` is either the old one or the complete new one, with
the permissions a plain open() would give it (0o666 & ~umask), and a failed write leaves
nothing behind.

On Linux the data goes into an unnamed O_TMPFILE in the target directory, which gets a name
only once it is complete and synced, so even a killed process leaves no temporary file.
Elsewhere (or where the file system cannot link such a file) a named temporary in the same
directory is used and removed on every exception.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
from typing import Any, BinaryIO, Callable, Optional, Set

from ._types import PathLike

# Writes a file's new contents into the binary file object it is given.
Writer = Callable[[BinaryIO], Any]

_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
# Devices where an O_TMPFILE could not be given a name: go straight to a named temporary.
_unlinkable_devices: Set[int] = set()


def _libc_linkat() -> Optional[Callable[..., int]]:
    try:
        linkat = ctypes.CDLL(None, use_errno=True).linkat
    except (OSError, AttributeError):
        return None
    linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    linkat.restype = ctypes.c_int
    return linkat


_linkat = _libc_linkat() if hasattr(os, "O_TMPFILE") else None


def _temporary_name(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")


def _give_name(fd: int, name: str) -> bool:
    """Link the unnamed file open at fd to `name`; False if this system cannot."""
    if _linkat is not None and _linkat(fd, b"", _AT_FDCWD, os.fsencode(name), _AT_EMPTY_PATH) == 0:
        return True
    try:  # without CAP_DAC_READ_SEARCH, AT_EMPTY_PATH is refused but /proc's link may work
        os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)
        return True
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMLINK):
            raise
        return False


def _write_fd(fd: int, write: Writer) -> None:
    with os.fdopen(fd, "wb", closefd=False) as f:
        write(f)
        f.flush()
        os.fsync(fd)


def _publish(temporary: str, path: str) -> None:
    try:
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _sync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some systems cannot open directories; the rename itself is done
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _via_named_temporary(path: str, write: Writer, source_fd: Optional[int] = None) -> None:
    temporary = _temporary_name(path)
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_BINARY", 0)
    )
    fd = os.open(temporary, flags, 0o666)
    is_open = True
    try:
        if source_fd is None:
            _write_fd(fd, write)
        else:
            _copy_fd(source_fd, fd)
            os.fsync(fd)
        os.close(fd)
        is_open = False
        _publish(temporary, path)
    except BaseException:
        if is_open:
            os.close(fd)
            os.unlink(temporary)
        raise


def _copy_fd(source: int, target: int) -> None:
    os.lseek(source, 0, os.SEEK_SET)
    while chunk := os.read(source, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(target, view) :]


def _via_unnamed_temporary(path: str, directory: str, write: Writer) -> bool:
    """False when the directory's file system has no O_TMPFILE (nothing was written)."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if err.errno in (errno.EISDIR, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP):
            return False
        raise
    try:
        _write_fd(fd, write)
        temporary = _temporary_name(path)
        if _give_name(fd, temporary):
            _publish(temporary, path)
        else:
            _unlinkable_devices.add(os.fstat(fd).st_dev)
            _via_named_temporary(path, write, source_fd=fd)
    finally:
        os.close(fd)
    return True


def write_atomically(path: PathLike, write: Writer) -> None:
    """Call write(binary file object) to produce the new contents of `path`, then put them in
    place atomically. An OSError names `path` (not a temporary or its directory)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or os.curdir
    try:
        done = False
        if _linkat is not None or os.path.isdir("/proc/self/fd"):
            if hasattr(os, "O_TMPFILE") and os.stat(directory).st_dev not in _unlinkable_devices:
                done = _via_unnamed_temporary(path, directory, write)
        if not done:
            _via_named_temporary(path, write)
    except OSError as err:
        if err.errno is None:
            raise
        reason = err.strerror
        if err.errno == errno.ENOENT and not os.path.isdir(directory):
            reason = f"{reason} (no directory {directory!r})"
        elif err.errno == errno.ENOTDIR:
            reason = f"{reason} ({directory!r} is not a directory)"
        elif err.errno == errno.EISDIR or os.path.isdir(path):
            reason = f"{reason} ({path!r} is a directory)"
        raise type(err)(err.errno, reason, path) from None
    _sync_directory(directory)


def unnamed_temporaries_work(directory: str) -> bool:
    """Whether a write into `directory` goes through an unnamed temporary (so a killed writer
    leaves nothing behind); tests use it to know what to expect."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666)
    except (AttributeError, OSError):
        return False
    try:
        probe = _temporary_name(os.path.join(directory, "probe"))
        if not _give_name(fd, probe):
            return False
        os.unlink(probe)
        return True
    finally:
        os.close(fd)
