"""Files the package writes: atomically, with the usual mode, and a run folder owned by one process at a time.

* :func:`atomic_output` -- every file (checkpoint, ONNX, report, metrics, converted weights) is written to a
  temporary file in its folder and renamed over the target only when complete: a crash, Ctrl-C or a full disk
  never leaves half a file, and an existing good file survives a failed overwrite.
* :class:`RunLock` -- ``<run>/.lock`` held with ``fcntl.flock`` while a run writes there: a second run on the
  same folder is refused with one line, and a crashed run leaves nothing stuck (the kernel drops the lock
  with the process). Temporaries a killed run left behind are removed by the next owner.
* OSErrors (read-only disk, full disk, a file where a folder should be) become one sentence naming the path;
  the ``errno`` is kept, so callers can still tell them apart.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from .errors import UserError

__all__ = ["atomic_output", "write_text_atomic", "write_json_atomic", "RunLock", "RunFolderBusy", "unwritable",
           "make_folder", "remove_orphan_temporaries"]

PathLike = Union[str, os.PathLike]
LOCK_NAME = ".lock"
_TMP_SUFFIX = ".tmp"


class RunFolderBusy(UserError, RuntimeError):
    """Another live process holds the run folder (a user error: the command line prints it as one line)."""


def unwritable(path: Path, err: OSError) -> OSError:
    """One sentence for an OSError met while writing ``path`` (same errno)."""
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
              errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied", errno.ENOTDIR: "a part of the folder path is a file",
              errno.EEXIST: "a part of the folder path is a file",
              errno.EISDIR: "it is a folder"}.get(err.errno, err.strerror or str(err))
    kept = " (the existing file is unchanged)" if path.is_file() else ""
    return OSError(err.errno, f"could not write {path}: {reason}{kept}; free space or choose another path")


def make_folder(folder: PathLike) -> Path:
    """``mkdir -p`` with one-sentence errors (a file in the way, read-only disk, no permission)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OSError(errno.ENOTDIR, f"{folder} is a file, not a folder; choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise unwritable(folder, err) from None
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` (one ``os.replace``) only when the block
    succeeds, else it is removed and ``path`` is untouched. The file gets ``0o666`` minus the umask, like a
    plain ``open``. ``overwrite=False`` never replaces a file: ``path`` is refused when it exists before the block
    and also when another process creates it meanwhile (the finished file is hard-linked into place, which fails
    on an existing name), so two commands writing one name cannot both report success."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder; name a file to write")
    if not overwrite and os.path.lexists(path):
        raise _exists(path)
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    except OSError as err:
        raise unwritable(path, err) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(err, OSError) and not isinstance(err, (FileNotFoundError, FileExistsError)):
            raise unwritable(path, err) from None
        raise


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, f"{path} already exists and was left as it is; this command never "
                                         "replaces a file: remove it or choose another name")


def _link_new(tmp: str, path: Path) -> None:
    """Put the finished ``tmp`` at ``path`` only if no file is there (``link`` fails on an existing name, unlike
    ``replace``); on a file system without hard links, check and rename (a race can then still replace)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError:  # no hard links here (some network or FUSE file systems)
        if os.path.lexists(path):
            raise _exists(path) from None
        os.replace(tmp, path)
        return
    os.remove(tmp)


def write_text_atomic(path: PathLike, text: str) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=1))


def remove_orphan_temporaries(folder: PathLike) -> int:
    """Delete temporaries that a killed writer left in ``folder`` (``.<name>.*.tmp``, and the older
    ``<name>.*.tmp`` form); call only while owning the folder (:class:`RunLock`). Returns how many."""
    removed = 0
    for p in Path(folder).glob("*" + _TMP_SUFFIX):
        if p.is_file() and (p.name.startswith(".") or ".pth." in p.name):
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed


class RunLock:
    """Exclusive ownership of a run folder for one process (``with RunLock(folder): ...``).

    Uses ``fcntl.flock`` on ``<folder>/.lock``: released by the kernel when the process ends, however it ends,
    so no stale lock outlives a crash. A second owner gets :class:`RunFolderBusy` with the holder's pid.
    On systems without ``fcntl`` the lock is a no-op.
    """

    def __init__(self, folder: PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._file: Optional[Any] = None

    def acquire(self) -> "RunLock":
        make_folder(self.folder)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        try:
            f = open(self.path, "a+")
        except OSError as err:
            raise unwritable(self.path, err) from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RunFolderBusy(f"run folder {self.folder} is in use by {holder}; wait for it to finish or choose "
                                "another --out (out_dir)") from None
        if not self._still_linked(f):  # the previous owner removed the file between our open and our lock
            f.close()
            return self.acquire()
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()}")
        f.flush()
        self._file = f
        remove_orphan_temporaries(self.folder)
        return self

    def _still_linked(self, f) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._file.close()  # closing drops the flock
            self._file = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
