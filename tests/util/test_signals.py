"""SIGTERM is Ctrl-C, and worker processes end with their parent: real processes, real signals.

A scheduler (Slurm, Kubernetes, a preemptible VM) stops a job with SIGTERM; a terminal's Ctrl-C
sends SIGINT to the whole process group. Either way a script says "interrupted" in one line,
exits non-zero and leaves nothing half-written, and its workers end with it, also when it is
killed with -9.
"""
import os
import re
import shutil
import signal
import sys
import textwrap

import pytest

from process_tree import ROOT, Script, children, still_running, wait_until

from util.preprocessing import preprocess_corpus

SAMPLE_DIR = os.path.join(ROOT, "data", "sample")


def last_line(text):
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-1]


def test_sigterm_in_a_script_runs_ctrl_c_cleanup_and_says_interrupted(tmp_path):
    """What every script's run_cli gives: the cleanup of a half-written file runs on SIGTERM."""
    script = tmp_path / "writer.py"
    out = tmp_path / "out"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from util.errors import run_cli
        from util.files import atomic_write

        def main():
            with atomic_write({str(out / "result.txt")!r}) as f:
                f.write("half")
                f.flush()
                print("writing", flush=True)
                time.sleep(600)

        run_cli(main)
    """))
    run = Script(tmp_path, [str(script)])
    code, _ = run.stop(signal.SIGTERM, after=lambda: "writing" in run.stdout, what="the script to start writing")
    assert code == 128 + signal.SIGTERM, run.stderr
    assert run.stderr.strip() == "interrupted (SIGTERM)"
    assert os.listdir(out) == []  # the temporary went, as on Ctrl-C


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_pool_workers_end_with_a_parent_killed_with_9(tmp_path, start_method):
    script = tmp_path / "pool.py"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing, os, sys, time
        sys.path.insert(0, {ROOT!r})
        from util import signals

        def busy(_):
            time.sleep(600)

        if __name__ == "__main__":
            pool = multiprocessing.get_context({start_method!r}).Pool(
                2, initializer=signals.as_worker, initargs=(os.getpid(),))
            pool.map_async(busy, range(2))
            print("started", flush=True)
            time.sleep(600)
    """))
    run = Script(tmp_path, [str(script)])
    _, left = run.stop(signal.SIGKILL, after=lambda: "started" in run.stdout and len(children(run.pid)) >= 2,
                       what="the pool")
    assert left == []


@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory):
    """data/sample's text files 200 times over (3 MB): minutes of cleaning for 2 workers."""
    directory = tmp_path_factory.mktemp("long_corpus")
    for n in range(200):
        for name in ("written.txt", "dialogue.txt"):
            shutil.copy(os.path.join(SAMPLE_DIR, name), directory / f"{n:03d}_{name}")
    return str(directory)


def start_preprocess(tmp_path, corpus, out):
    run = Script(tmp_path, [os.path.join(ROOT, "preprocess.py"), "--corpus_dir", corpus,
                            "--output_file", str(out / "pre.txt"), "--num_processes", "2"], name="preprocess")
    # The first progress line counts the documents of the first batch written: mid-run, workers busy.
    wait_until(lambda: re.search(r"preprocess: [1-9]\d* docs", run.stderr), what="the first progress line")
    return run


@pytest.mark.slow  # a minute on 2 shared cores: spawned workers import kss
def test_preprocess_sigterm_with_two_processes_ends_clean(tmp_path, long_corpus):
    out = tmp_path / "out"
    run = start_preprocess(tmp_path, long_corpus, out)
    code, left = run.stop(signal.SIGTERM, min_children=2)
    assert code == 128 + signal.SIGTERM, run.stderr
    assert "Traceback" not in run.stderr and "Error" not in run.stderr, run.stderr
    assert last_line(run.stderr) == "interrupted (SIGTERM)"
    assert os.listdir(out) == [], "no .pre.txt.*.tmp and no pre.txt"
    assert left == [], "no worker outlives its parent"


@pytest.mark.slow  # a minute on 2 shared cores: spawned workers import kss
def test_preprocess_workers_end_with_a_parent_killed_with_9(tmp_path, long_corpus):
    out = tmp_path / "out"
    run = start_preprocess(tmp_path, long_corpus, out)
    _, left = run.stop(signal.SIGKILL)
    assert left == []
    assert "Traceback" not in run.stderr, run.stderr
    assert [n for n in os.listdir(out) if n.startswith(".pre.txt.")], "kill -9 leaves the temporary"
    # The next run into the same file removes it (the sample corpus: a short run).
    preprocess_corpus(SAMPLE_DIR, str(out / "pre.txt"), show_progress=False)
    assert os.listdir(out) == ["pre.txt"]


@pytest.mark.slow  # a minute on 2 shared cores: spawned workers import kss
def test_preprocess_ctrl_c_to_the_process_group_prints_only_interrupted(tmp_path, long_corpus):
    out = tmp_path / "out"
    run = start_preprocess(tmp_path, long_corpus, out)
    code, left = run.stop(signal.SIGINT, group=True)  # what a terminal's Ctrl-C does
    assert code == 130, run.stderr
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.stderr
    assert last_line(run.stderr) == "interrupted"
    assert os.listdir(out) == [] and left == []


@pytest.mark.slow  # a minute on 2 shared cores: spawned workers import kss
def test_stage_timer_passes_sigterm_to_its_stage_and_waits_for_its_cleanup(tmp_path, long_corpus):
    """make demo runs each stage under util.stage_timer: stopping the timer stops the stage cleanly."""
    out = tmp_path / "out"
    run = Script(tmp_path, ["-m", "util.stage_timer", "--record", str(tmp_path / "timings.json"), "--stage",
                            "preprocess", "--", sys.executable, os.path.join(ROOT, "preprocess.py"),
                            "--corpus_dir", long_corpus, "--output_file", str(out / "pre.txt"),
                            "--num_processes", "2"], name="timer")
    try:
        wait_until(lambda: re.search(r"preprocess: [1-9]\d* docs", run.stderr), what="the first progress line")
        stage = children(run.pid)
        assert len(stage) == 1
        processes = stage + children(stage[0])
        run.signal(signal.SIGTERM)  # to the timer alone, as a scheduler or `timeout` sends it
        code = run.wait()
        left = still_running(processes)
    finally:
        run.kill_all()
    assert code == 128 + signal.SIGTERM, run.stderr
    assert left == [], "the stage and its workers end with the timer"
    assert last_line(run.stderr) == "interrupted (SIGTERM)"
    assert os.listdir(out) == [] and not (tmp_path / "timings.json").exists()
