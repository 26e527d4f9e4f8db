"""File safety shared by every stage.

A later stage must never mistake a half-written file for a finished one, so
outputs are written under a temporary name in the same directory and renamed
into place only once complete (rename is atomic on POSIX filesystems).

A run killed with -9 cannot remove its temporaries, so each is held with ``fcntl.flock``
while it is written; the kernel drops that lock when its process dies, however it dies. The
next write of the same target removes the temporaries nobody holds (a live run writing the
same target keeps its own), and ``remove_stale_temporaries_in`` clears a whole directory whose
lock (util/dir_lock.py) proves no run of its stage is alive.
"""
import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import sys
import tempfile

from util.errors import UserInputError


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """Open a temporary sibling of ``path`` for writing; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.

    Only a regular file (or a new path) is replaced that way. A symlink is followed and its
    target written, the link kept; a FIFO, a device or a socket is written through, never
    renamed over (as root, a rename over ``/dev/null`` would replace the system's).
    """
    path = os.fspath(path)
    if os.path.islink(path):
        path = os.path.realpath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # Checked before the caller does its (possibly long) work, not at the rename after it.
    if os.path.isdir(path):
        raise UserInputError(f"{path} is a directory; give the name of a file to write")
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        with _open_through(path, mode, encoding) as f:
            yield f
        return
    make_dirs(directory)
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as e:
        raise UserInputError(f"{path}: cannot write in {directory} ({e.strerror})") from None
    _lock(fd)  # held until the rename: marks the temporary as a live run's
    # mkstemp creates the file private (0600); outputs get the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as f:
            yield f
        try:
            os.replace(tmp, path)
        except OSError as e:  # a directory created at path meanwhile, a read-only mount, ...
            raise UserInputError(f"{path}: cannot write ({e.strerror})") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def _open_through(path, mode, encoding):
    """A FIFO or device opened as it is: what is written goes to its reader or driver."""
    kwargs = {} if "b" in mode else {"encoding": encoding}
    try:
        f = open(path, mode, **kwargs)
    except OSError as e:
        raise UserInputError(f"{path}: cannot write ({e.strerror})") from None
    with f:
        yield f


def make_dirs(directory, what="output directory"):
    """``os.makedirs(directory, exist_ok=True)``, failing with one line that names the directory.

    Every script creates the parents of what it writes; where it cannot (a file in the way,
    no permission) the user sees why instead of a traceback.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserInputError(_blocked_by_a_file(directory, what)) from None
    except OSError as e:
        raise UserInputError(f"{what} {directory}: cannot create it ({e.strerror})") from None
    return directory


def check_dir_can_be_made(directory, what="output directory"):
    """Fail now, with one line, if ``directory`` could not be created or written later.

    For scripts that write their outputs only after long work: nothing is created here.
    """
    if "://" in os.fspath(directory):  # gs:// and the like: gfile creates what it needs
        return
    path = _nearest_existing(directory)
    if not os.path.isdir(path):
        raise UserInputError(_blocked_by_a_file(directory, what))
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserInputError(f"{what} {directory}: cannot write in {path} (Permission denied)")


def _nearest_existing(directory):
    path = os.path.abspath(directory)
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _blocked_by_a_file(directory, what):
    path = _nearest_existing(directory)
    if path == os.path.abspath(directory):
        return f"{what} {directory} exists and is not a directory"
    return f"{what} {directory} cannot be created: {path} is a file"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, obj):
    """Write ``obj`` as indented UTF-8 JSON (Korean kept readable), atomically."""
    with atomic_write(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path, what="JSON file"):
    """Read a JSON file, turning a missing file or a syntax error into a one-line UserInputError."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserInputError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise UserInputError(f"{what} {path} is a directory, not a JSON file") from None
    except OSError as e:
        raise UserInputError(f"{what} {path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise UserInputError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None


def list_files(directory, what="corpus directory"):
    """Every regular, non-hidden file below ``directory``, sorted, so runs are reproducible.

    Raises UserInputError when the directory is missing or holds no files.
    """
    if not os.path.isdir(directory):
        raise UserInputError(f"{what} not found or not a directory: {directory}")
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, name) for name in sorted(files) if not name.startswith("."))
    if not found:
        raise UserInputError(f"{what} has no files: {directory}")
    return found


def sha256_of_file(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_dir_beside(target):
    """A new, empty temporary directory next to ``target``, to build ``target`` in.

    It is held (see above) until ``put_in_place`` or ``discard`` ends it, or the process does.
    """
    parent = os.path.dirname(os.path.abspath(target))
    make_dirs(parent)
    remove_stale_temporaries(target)
    try:
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(target)) + ".", suffix=".tmp",
                               dir=parent)
    except OSError as e:
        raise UserInputError(f"{target}: cannot write in {parent} ({e.strerror})") from None
    fd = os.open(tmp, os.O_RDONLY)
    _lock(fd)
    _held_dirs[os.path.abspath(tmp)] = fd
    return tmp


def discard(tmp):
    """Remove a temporary directory from ``temp_dir_beside`` (or a file) and let go of it."""
    if os.path.isdir(tmp) and not os.path.islink(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    _release(tmp)


# Temporary directories of this process and the fds that hold their locks.
_held_dirs = {}
# util.files' own temporaries: mkstemp/mkdtemp names (8 characters of [a-z0-9_]) beside a
# target, and put_in_place's directory for the target it replaces.
_OURS = r"\.{target}\.(?:[a-z0-9_]{{8}}\.tmp|old\.[a-z0-9_]{{8}})"
# TensorFlow's, in a model directory: tf.io.gfile's atomic writes (`checkpoint`, graph.pbtxt)
# and the Saver's sharded-save directory.
_TENSORFLOW = re.compile(r".+\.tmp[0-9a-f]{32}|model\.ckpt-\d+_temp(?:_[0-9a-f]+)?")


def _lock(fd):
    """Take ``fd``'s flock; False where the filesystem has no flock (then nothing is held)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        return False


def _release(tmp):
    fd = _held_dirs.pop(os.path.abspath(tmp), None)
    if fd is not None:
        os.close(fd)


def _remove_if_unheld(path):
    """Remove a temporary no live process holds; True when it went."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if not _lock(fd):
            return False  # no flock here, so no telling a live run's from a dead one's: keep it
    except OSError:
        os.close(fd)
        return False  # held: a live run is writing it
    try:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    finally:
        os.close(fd)
    return not os.path.lexists(path)


def _note_removed(directory, names, note=None):
    if names:
        line = f"note: removed {', '.join(sorted(names))} in {directory}, left by a run that was killed"
        (note or (lambda text: print(text, file=sys.stderr, flush=True)))(line)


def remove_stale_temporaries(target):
    """Remove the temporaries of ``target`` (a file or directory path) that no live process holds."""
    directory = os.path.dirname(os.path.abspath(target))
    pattern = re.compile(_OURS.format(target=re.escape(os.path.basename(os.path.abspath(target)))))
    try:
        names = [n for n in os.listdir(directory) if pattern.fullmatch(n)]
    except OSError:
        return []
    removed = [n for n in names if _remove_if_unheld(os.path.join(directory, n))]
    _note_removed(directory, removed)
    return removed


def remove_stale_temporaries_in(directory, note=None):
    """Remove every temporary in ``directory`` left by a run that is no longer alive: ours
    when no live process holds them, TensorFlow's always. Call it only while holding the
    directory's lock (util/dir_lock.hold does), which proves no run of this stage is alive."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    ours = re.compile(_OURS.format(target=".+"))
    removed = []
    for name in names:
        path = os.path.join(directory, name)
        if ours.fullmatch(name):
            if _remove_if_unheld(path):
                removed.append(name)
        elif _TENSORFLOW.fullmatch(name):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            removed.append(name)
    _note_removed(directory, removed, note)
    return removed


def put_in_place(tmp, target):
    """Rename a finished ``tmp`` (file or directory) to ``target``, replacing what was there.

    mkdtemp/mkstemp entries are private (0700/0600); the result gets the modes a plain
    mkdir/open would. An existing target is moved aside first and removed only after the
    rename succeeded, so a failure never leaves neither.
    """
    mask = _umask()
    if os.path.isdir(tmp):
        os.chmod(tmp, 0o777 & ~mask)
        for root, dirs, files in os.walk(tmp):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(tmp, 0o666 & ~mask)
    old = None
    if os.path.lexists(target):
        old = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(target)) + ".old.",
                               dir=os.path.dirname(os.path.abspath(target)))
        _held_dirs[os.path.abspath(old)] = os.open(old, os.O_RDONLY)
        _lock(_held_dirs[os.path.abspath(old)])
        os.replace(target, os.path.join(old, "previous"))
    os.replace(tmp, target)
    _release(tmp)
    if old:
        shutil.rmtree(old, ignore_errors=True)
        _release(old)
