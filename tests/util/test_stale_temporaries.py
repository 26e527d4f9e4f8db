"""Temporaries a killed run left (``.pre.txt.*.tmp``, ``.d.*.tmp/``, TensorFlow's
``model.ckpt-0_temp/`` and ``checkpoint.tmp<hash>``) are removed when the next run starts, and
a live run's are never touched. The leftovers are made by real processes killed with -9."""
import os
import re
import signal
import textwrap

from process_tree import ROOT, Script, wait_until

from util.dir_lock import DirectoryInUseError, hold
from util.files import atomic_write, put_in_place, temp_dir_beside
from util.preprocessing import preprocess_corpus

SAMPLE_DIR = os.path.join(ROOT, "data", "sample")
WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from util.files import atomic_write, temp_dir_beside
{body}
print("writing", flush=True)
time.sleep(600)
"""


def start_writer(tmp_path, body, name="writer"):
    """A process in the middle of writing (its temporaries exist), as a run is when it gets killed."""
    script = tmp_path / f"{name}.py"
    script.write_text(WRITER.format(root=ROOT, body=textwrap.dedent(body)))
    run = Script(tmp_path, [str(script)], name=name)
    wait_until(lambda: "writing" in run.stdout, what="the writer to start")
    return run


def killed_writer(tmp_path, body, name="writer"):
    run = start_writer(tmp_path, body, name)
    run.signal(signal.SIGKILL)
    run.wait()
    run.kill_all()


def hidden(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith("."))


def test_a_killed_preprocess_runs_temporary_goes_when_the_next_run_writes(tmp_path):
    out = tmp_path / "out"
    killed_writer(tmp_path, f"""
        writing = atomic_write({str(out / "pre.txt")!r})
        f = writing.__enter__()
        f.write("half a corpus"); f.flush()
    """)
    assert [n for n in hidden(out) if re.fullmatch(r"\.pre\.txt\.\w{8}\.tmp", n)], hidden(out)
    preprocess_corpus(SAMPLE_DIR, str(out / "pre.txt"), show_progress=False)
    assert hidden(out) == [] and os.listdir(out) == ["pre.txt"]


def test_a_live_runs_temporary_is_kept(tmp_path):
    out = tmp_path / "out"
    live = start_writer(tmp_path, f"""
        writing = atomic_write({str(out / "pre.txt")!r})
        f = writing.__enter__()
        f.write("half a corpus"); f.flush()
        d = temp_dir_beside({str(out / "d")!r})
    """)
    try:
        before = hidden(out)
        assert len(before) == 2
        with atomic_write(out / "pre.txt") as f:  # a second run writing the same file meanwhile
            f.write("whole")
        tmp = temp_dir_beside(out / "d")
        put_in_place(tmp, out / "d")
        assert hidden(out) == before, "the live run's temporaries are untouched"
    finally:
        live.signal(signal.SIGTERM)
        live.wait()
        live.kill_all()


def test_a_killed_conversions_directory_goes_when_the_next_one_starts(tmp_path):
    out = tmp_path / "out"
    killed_writer(tmp_path, f"""
        d = temp_dir_beside({str(out / "d")!r})
        open(d + "/model.safetensors", "wb").write(b"half")
    """)
    assert [n for n in hidden(out) if re.fullmatch(r"\.d\.\w{8}\.tmp", n)], hidden(out)
    tmp = temp_dir_beside(out / "d")
    assert hidden(out) == [os.path.basename(tmp)]
    put_in_place(tmp, out / "d")
    assert hidden(out) == []


def test_a_killed_pretraining_saves_leave_nothing_once_the_next_run_holds_the_dir(tmp_path):
    model_dir = tmp_path / "model"
    # A TF save killed midway: the sharded save's `_temp` directory, the state file's atomic-write
    # temporary (named as tf.io.gfile names it), and one of our own atomic writes.
    killed_writer(tmp_path, f"""
        import os
        os.makedirs({str(model_dir / "model.ckpt-0_temp")!r})
        open({str(model_dir / "model.ckpt-0_temp" / "part-00000-of-00001.data-00000-of-00001")!r}, "wb").write(b"x")
        open({str(model_dir / "checkpoint.tmp0123456789abcdef0123456789abcdef")!r}, "w").write("model_")
        writing = atomic_write({str(model_dir / "pretrain_config.json")!r})
        writing.__enter__()
    """)
    (model_dir / "model.ckpt-10.index").write_bytes(b"kept")  # what is not a temporary stays
    assert len(os.listdir(model_dir)) == 4
    notes = []
    with hold(model_dir, "model dir", note=notes.append):
        assert sorted(os.listdir(model_dir)) == [".lock", "model.ckpt-10.index"]
    assert any("model.ckpt-0_temp" in n and "checkpoint.tmp0123456789abcdef0123456789abcdef" in n for n in notes)


def test_a_live_pretraining_runs_files_are_not_swept(tmp_path):
    model_dir = tmp_path / "model"
    live = start_writer(tmp_path, f"""
        from util.dir_lock import hold
        holding = hold({str(model_dir)!r}, "model dir")
        holding.__enter__()
        import os
        os.makedirs({str(model_dir / "model.ckpt-20_temp")!r})
    """)
    try:
        try:
            with hold(model_dir, "model dir", note=lambda line: None):
                raise AssertionError("the lock of a live run was taken")
        except DirectoryInUseError:
            pass
        assert (model_dir / "model.ckpt-20_temp").is_dir()
    finally:
        live.signal(signal.SIGTERM)
        live.wait()
        live.kill_all()
