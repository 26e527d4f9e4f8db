"""Processes as /proc shows them (Linux): a process's children, whether one still runs, and
starting a script the way a terminal or a scheduler would, to stop it with a real signal.

Imported by name (tests/conftest.py puts this folder on sys.path).
"""
import glob
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def children(pid):
    """PIDs of ``pid``'s child processes (of any of its threads)."""
    found = set()
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as f:
                found.update(int(p) for p in f.read().split())
        except OSError:  # the thread or process ended meanwhile
            pass
    return sorted(found)


def running(pid):
    """Whether ``pid`` is a process that has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(condition, seconds=180, what="the condition"):
    """Poll ``condition()`` until it is true; fails the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def still_running(pids, seconds=60):
    """The PIDs of ``pids`` that have not ended within ``seconds``: a list that should be empty."""
    deadline = time.monotonic() + seconds
    left = [p for p in pids if running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if running(p)]
    return left


class Script:
    """A top-level script run as a user runs it, in its own session (so a signal can go to its
    whole process group, as Ctrl-C in a terminal does), stderr and stdout kept in files."""

    def __init__(self, tmp_path, args, name="script"):
        self.out_path, self.err_path = tmp_path / f"{name}.stdout", tmp_path / f"{name}.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2",
                   USE_TF="0", TOKENIZERS_PARALLELISM="false")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            # Ctrl-C's default restored: a test run in the background of a shell without job control
            # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it.
            self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=err,
                                            start_new_session=True,
                                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.pid = self.process.pid

    @property
    def stdout(self):
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self):
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum, group=False):
        if group:
            os.killpg(self.pid, signum)
        else:
            os.kill(self.pid, signum)

    def wait(self, seconds=180):
        return self.process.wait(seconds)

    def stop(self, signum, group=False, min_children=0, after=None, what="the condition"):
        """Send ``signum`` (to the whole process group with ``group``, as a terminal's Ctrl-C), once
        ``after()`` holds if given, wait for the script to end, and return its exit status and those
        of its children at the signal that have not ended (a list that should be empty). Whatever is
        left is killed after, also when waiting fails."""
        try:
            if after is not None:
                wait_until(after, what=what)
            workers = children(self.pid)
            assert len(workers) >= min_children, f"{len(workers)} child process(es), expected {min_children}+"
            self.signal(signum, group=group)
            code = self.wait()
            return code, still_running(workers)
        finally:
            self.kill_all()

    def kill_all(self):
        """Whatever the test left: the script and everything in its process group."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        try:
            os.killpg(self.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
