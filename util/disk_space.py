"""A full disk as one line naming the path and the space left, instead of a traceback.

Every writer here already writes under temporary names and renames only finished files
(util/files.py, pretrain/dataset_writer.py, TensorFlow's checkpoint saver), so a full disk
leaves nothing half-written; what was missing is saying so. Python raises
``OSError(ENOSPC)``; TensorFlow raises ``ResourceExhaustedError`` or another ``OpError``
whose message carries the C library's "No space left on device".
"""
import contextlib
import errno
import os
import shutil

from util.errors import UserInputError

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")


def is_disk_full(error):
    """An OSError with ENOSPC/EDQUOT, or a TensorFlow error whose message says the disk is full."""
    if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
        return True
    return type(error).__module__.startswith("tensorflow") and any(m in str(error) for m in FULL_MESSAGES)


def free_bytes(path):
    """Free bytes on the filesystem holding ``path`` (or its nearest existing parent), or None."""
    path = os.path.abspath(os.fspath(path))
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def human(num_bytes):
    if num_bytes is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num_bytes < 1024 or unit == "TB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024


def full_disk_message(path, what, needed=None, kept=None):
    line = f"{what} {path}: the disk is full ({human(free_bytes(path))} left"
    line += f", about {human(needed)} needed)" if needed else ")"
    line += f"; {kept}" if kept else "; nothing half-written was left"
    return line + "; free some space or write elsewhere, then rerun"


@contextlib.contextmanager
def reporting_full_disk(path, what="output", kept=None):
    """Turn a full-disk error raised in the block into a one-line UserInputError.

    ``kept`` (a string, or a callable giving one after the failure) says what is still usable.
    """
    try:
        yield
    except UserInputError:
        raise
    except Exception as e:
        if not is_disk_full(e):
            raise
        note = kept() if callable(kept) else kept
        raise UserInputError(full_disk_message(path, what, kept=note)) from None
