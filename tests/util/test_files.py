import os
import stat

import pytest

from util.errors import UserInputError
from util.files import atomic_write, list_files, read_json


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary left behind
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text(encoding="utf-8") == "new"


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644


def test_read_json_names_file_and_line(tmp_path):
    bad = tmp_path / "h.json"
    bad.write_text('{\n  "a": 1,\n  "b": \n}', encoding="utf-8")
    with pytest.raises(UserInputError, match=r"h\.json:4: malformed JSON"):
        read_json(bad)
    with pytest.raises(UserInputError, match="not found"):
        read_json(tmp_path / "missing.json")


def test_list_files_sorted_and_skips_hidden(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/2.txt", "a.txt", ".hidden", "b/1.txt"):
        (tmp_path / name).write_text("x")
    assert [os.path.relpath(p, tmp_path) for p in list_files(tmp_path)] == ["a.txt", "b/1.txt", "b/2.txt"]


def test_directory_built_beside_target_replaces_it_with_ordinary_modes(tmp_path):
    from util.files import put_in_place, temp_dir_beside

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    old = os.umask(0o022)
    try:
        tmp = temp_dir_beside(target)
        os.makedirs(os.path.join(tmp, "sub"))
        with open(os.path.join(tmp, "sub", "w.bin"), "w") as f:
            f.write("new")
        put_in_place(tmp, str(target))
    finally:
        os.umask(old)
    assert os.listdir(tmp_path) == ["model"]  # neither the temporary nor the old copy is left
    assert os.listdir(target) == ["sub"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(target / "sub" / "w.bin").st_mode) == 0o644


def test_atomic_write_through_a_symlink_keeps_the_link_and_writes_its_target(tmp_path):
    target = tmp_path / "real" / "out.jsonl"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with atomic_write(link) as f:
        f.write("new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text(encoding="utf-8") == "new"
    assert sorted(os.listdir(tmp_path)) == ["link.jsonl", "real"] and os.listdir(target.parent) == ["out.jsonl"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "real" / "later.txt")
    with atomic_write(dangling) as f:
        f.write("made")
    assert dangling.is_symlink() and (tmp_path / "real" / "later.txt").read_text(encoding="utf-8") == "made"


def test_atomic_write_writes_through_a_fifo_and_a_device(tmp_path):
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, encoding="utf-8").read()), daemon=True)
    reader.start()
    with atomic_write(fifo) as f:
        f.write("through the pipe\n")
    reader.join(timeout=30)  # a reader left waiting means nothing was written into the pipe
    assert received == ["through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]
    # /dev/null is a character device: it stays one (a rename over it would replace the system's).
    before = os.stat("/dev/null")
    with atomic_write("/dev/null") as f:
        f.write("discarded")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
