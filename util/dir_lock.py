"""One run at a time per output directory.

Two copies of the same command (two terminal panes, a scheduler retrying a job that is still
alive) would otherwise both write into one directory: pre-training checkpoints from two
trajectories interleave, and both runs end with exit 0. Each script that writes a directory
holds ``<dir>/.lock`` with ``fcntl.flock`` for as long as it writes there; the file holds
the holder's PID, so a second run's one-line error can name it. The kernel drops a flock
when its process dies, however it dies, so a lock left by a killed run is simply free: the
PID it still records is noted and the lock taken over. Any end but a kill removes the file,
and the directory too when this made it and nothing was written there.

Holding the lock proves that no run of this stage is alive in the directory, so whatever
temporaries are there were left by a killed one: they are removed as the lock is taken
(``util.files.remove_stale_temporaries_in``), with a note naming them.
"""
import contextlib
import errno
import fcntl
import os
import sys

from util.errors import UserInputError
from util.files import make_dirs, remove_stale_temporaries_in

LOCK_NAME = ".lock"


class DirectoryInUseError(UserInputError):
    """Another live process holds the directory's lock."""


def _recorded_pid(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _open_locked(path, what, directory):
    """An fd of ``path`` holding its flock; DirectoryInUseError when another process holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserInputError(f"{what} {directory}: cannot create its lock {path} ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            pid = _recorded_pid(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserInputError(f"{what} {directory}: cannot lock {path} ({e.strerror})") from None
            holder = f"PID {pid}" if pid else "another process"
            raise DirectoryInUseError(f"{what} {directory} is in use by {holder} (lock {path}): wait for that "
                                      "run to end or stop it, or write to another directory") from None
        # The holder before us may have removed the file between our open and our flock:
        # then we hold a lock on a file nobody else will open. Start again.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def live_holder(directory):
    """The PID of a live process holding ``directory``'s lock (0 when it recorded none yet), or
    None: no lock, or one a killed run left. Only looks: a shared lock is taken and dropped at
    once, and the lock file is not created."""
    if "://" in os.fspath(directory):
        return None
    try:
        fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return _recorded_pid(fd) or 0
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold(directory, what="output directory", note=None):
    """Hold ``directory``'s lock for the ``with`` block; a held lock is a DirectoryInUseError.

    Remote directories (gs://...) are not locked: flock does not reach them.
    """
    if "://" in os.fspath(directory):
        yield None
        return
    note = note or (lambda line: print(line, file=sys.stderr, flush=True))
    made = _missing_ancestors(directory)
    make_dirs(directory, what)
    path = os.path.join(directory, LOCK_NAME)
    fd = _open_locked(path, what, directory)
    try:
        stale = _recorded_pid(fd)
        if stale and stale != os.getpid():
            note(f"note: {what} {directory}: taking over the lock left by PID {stale}, which no longer holds it "
                 "(a run that was killed)")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        try:
            remove_stale_temporaries_in(directory, note)
            yield path
        finally:
            # Any end but a kill removes the file (while still holding it), so the directory
            # holds only the outputs; a killed run leaves it, with its PID, for the note above.
            with contextlib.suppress(OSError):
                os.remove(path)
    finally:
        os.close(fd)  # releases the flock
        # A run that stopped before writing anything (no TFRecords, a bad setting) leaves no
        # empty directory behind: those this call made and nothing filled go again.
        for made_dir in made:
            try:
                os.rmdir(made_dir)
            except OSError:
                break


def _missing_ancestors(directory):
    """``directory`` and its parents that do not exist yet, deepest first."""
    missing, path = [], os.path.abspath(os.fspath(directory))
    while not os.path.exists(path) and os.path.dirname(path) != path:
        missing.append(path)
        path = os.path.dirname(path)
    return missing
