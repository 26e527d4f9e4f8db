"""The directory lock, held by a real second process."""
import os
import signal
import subprocess
import sys

import pytest

from util.dir_lock import LOCK_NAME, DirectoryInUseError, hold, live_holder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLDER = ("import sys; sys.path.insert(0, {root!r}); from util.dir_lock import hold\n"
          "with hold({directory!r}):\n    print('held', flush=True); sys.stdin.read()\n")


def start_holder(directory):
    process = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=ROOT, directory=str(directory))],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_holder_is_refused_naming_the_first_pid(tmp_path):
    holder = start_holder(tmp_path)
    try:
        with pytest.raises(DirectoryInUseError, match=rf"in use by PID {holder.pid} "):
            with hold(tmp_path):
                pass
    finally:
        holder.communicate("")
    with hold(tmp_path) as path:  # free again once the holder ended
        assert open(path).read().strip() == str(os.getpid())
    assert not (tmp_path / LOCK_NAME).exists()  # a clean release leaves nothing to take over from


def test_a_killed_holders_lock_is_taken_over_with_a_note(tmp_path):
    holder = start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    notes = []
    with hold(tmp_path, note=notes.append):
        pass
    assert len(notes) == 1 and f"left by PID {holder.pid}" in notes[0]


def test_a_directory_the_holder_made_and_left_empty_goes_with_the_lock(tmp_path):
    made = tmp_path / "runs" / "model"
    with pytest.raises(RuntimeError):
        with hold(made, "model dir"):
            raise RuntimeError("stopped before writing anything")
    assert not (tmp_path / "runs").exists()
    with hold(made, "model dir"):
        (made / "checkpoint").write_text("x")
    assert os.listdir(made) == ["checkpoint"]  # what a run wrote stays, the lock goes
    existing = tmp_path / "existing"
    existing.mkdir()
    with hold(existing, "model dir"):
        pass
    assert existing.is_dir()  # a directory the user made is not the lock's to remove


def test_live_holder_names_a_live_run_and_not_a_killed_one(tmp_path):
    assert live_holder(tmp_path) is None  # no lock file: and looking creates none
    assert not (tmp_path / LOCK_NAME).exists()
    holder = start_holder(tmp_path)
    try:
        assert live_holder(tmp_path) == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / LOCK_NAME).exists() and live_holder(tmp_path) is None
