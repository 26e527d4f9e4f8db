"""SIGTERM treated as Ctrl-C, and worker processes that end with their parent.

Schedulers stop a job with SIGTERM (Slurm at the time limit or on preemption, Kubernetes on
eviction, preemptible TPU and GPU VMs), then SIGKILL after a grace period. Python's default
for SIGTERM is to die on the spot: no ``finally`` runs, so temporaries stay and nothing says
why. ``terminate_as_interrupt`` (installed by ``util.errors.run_cli`` in every script) turns
SIGTERM into ``Terminated``, a KeyboardInterrupt, so every cleanup written for Ctrl-C runs for it
too: temporaries are removed, the directory lock is released, run_cli prints "interrupted" and
exits 128 + 15 (Ctrl-C: 130).

Pool workers (preprocess.py, build_vocab.py's mecab counting, the dataset builder) call
``as_worker`` first. Ctrl-C reaches the terminal's whole process group, so workers ignore
SIGINT and leave the decision to the parent, which stops them; they keep SIGTERM's default,
which is how a pool stops them, quietly. And they end with their parent however it ends,
kill -9 included: on Linux the kernel sends them SIGKILL when it dies (``PR_SET_PDEATHSIG``),
elsewhere a thread watches the parent. A worker that outlived its parent would finish its
batch for nobody and then fail writing the result to a closed pipe.
"""
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_SECONDS = 1.0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, as SIGINT raises KeyboardInterrupt."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    # A scheduler may repeat its SIGTERM: the first one's cleanup must not be cut short by the next.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def terminate_as_interrupt():
    """From now on SIGTERM raises ``Terminated`` in the main thread. A SIGTERM that was set to
    be ignored (by whoever started us) stays ignored; outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)


def exit_status(interrupt):
    """The shell's convention for a process ended by a signal: 128 + its number."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


def interrupted_line(interrupt):
    return "interrupted (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"


def as_worker(parent_pid):
    """Call first in a worker process (a pool's ``initializer``, with ``os.getpid()`` of the parent)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _die_with_parent_linux():
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                         name="parent-watch").start()
    if os.getppid() != parent_pid:  # the parent ended before the worker got here
        os._exit(1)


def _die_with_parent_linux():
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def stop_workers(executor):
    """End a ``concurrent.futures.ProcessPoolExecutor`` now: running work is not waited for
    (``shutdown`` alone waits for every running task to finish) and queued work is dropped."""
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    # Before 3.14 only the executor's own table knows its processes.
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()  # SIGTERM: as_worker left its default, so the worker just ends
    # The executor's thread now marks every future broken; cancelling them first (shutdown's
    # cancel_futures) would race it, and 3.11 prints InvalidStateError for a cancelled one.
    executor.shutdown(wait=True)
