"""Every command block in README.md is marked and run as written.

Each block sits between ``<!-- NAME -->`` and ``<!-- /NAME -->``, and each NAME has its test:

* ``first-commands`` (``make demo``, ``make test``): the targets exist and ``.ci/run`` runs the test
  one, here; the demo itself runs in tests/test_pipeline.py (TF) and tests/test_without_tensorflow.py
  (torch backend);
* ``from-scratch-commands``: run here, in a scratch copy of the repository's layout;
* ``continued-pretraining-commands``: tests/test_readme_continued.py.

``make continued-demo``, the released-model path through make, runs in tests/test_pipeline.py.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTED_BLOCKS = {"first-commands", "from-scratch-commands", "continued-pretraining-commands"}


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def block(name):
    found = re.search(rf"<!-- {name} -->\n```bash\n(.*?)```\n<!-- /{name} -->", readme(), re.S)
    assert found, f"README.md has no {name} block"
    return found.group(1)


def commands(text):
    """The block's commands, comments and blank lines dropped, continuation lines joined."""
    lines = [line.split("#", 1)[0].rstrip() for line in text.replace("\\\n", " ").splitlines()]
    return [" ".join(line.split()) for line in lines if line.strip()]


def scratch_checkout(tmp_path):
    """The repository's files, linked, with a data/ of its own holding only the bundled data."""
    work = tmp_path / "checkout"
    work.mkdir()
    for entry in os.listdir(ROOT):
        if entry not in ("data", ".git", ".venv"):
            os.symlink(os.path.join(ROOT, entry), work / entry)
    (work / "data").mkdir()
    for bundled in ("sample", "finetune_sample"):
        os.symlink(os.path.join(ROOT, "data", bundled), work / "data" / bundled)
    return work


def run_block(name, cwd):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block(name)], cwd=cwd, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def test_every_command_block_is_marked_with_a_tested_name():
    text = readme()
    fences = [m.start() for m in re.finditer(r"^```", text, re.M)]
    assert len(fences) % 2 == 0, "an unclosed ``` fence in README.md"
    marked = {m.group(1): (m.start(), m.end()) for m in
              re.finditer(r"<!-- ([a-z-]+) -->\n```bash\n.*?```\n<!-- /\1 -->", text, re.S)}
    assert set(marked) == TESTED_BLOCKS, sorted(marked)
    for opening in fences[::2]:
        assert any(start < opening < end for start, end in marked.values()), (
            f"README.md line {text[:opening].count(chr(10)) + 1}: a command block outside the tested markers")


def test_first_commands_are_make_targets_and_ci_runs_the_test_one(tmp_path):
    first = commands(block("first-commands"))
    assert first == ["make demo", "make test"], first
    for command in first:
        # -n: what the target would run, nothing run; a missing target is "No rule to make target".
        dry = subprocess.run([*command.split(), "-n", "-o", ".venv/.installed", f"PY={sys.executable}",
                              f"WORK={tmp_path / 'work'}"], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr[-2000:]
    assert "run_finetune.py" in subprocess.run(["make", "-n", "-o", ".venv/.installed", "demo", f"WORK={tmp_path}"],
                                               cwd=ROOT, capture_output=True, text=True).stdout
    # Issue 29: on a machine whose newest Python is 3.12/3.13 the two commands take the torch backend.
    after = readme().split("<!-- /first-commands -->", 1)[1].split("\n\n")[1]
    assert all(word in after for word in ("3.12", "3.13", "--backend torch", "(docs/install.md)")), after
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert "make test" in ci and ci[-1] == "exec make test-torch-stack", ci


@pytest.mark.slow
def test_readme_from_scratch_commands_run_as_written(tmp_path):
    work = scratch_checkout(tmp_path)
    run_block("from-scratch-commands", work)
    out = work / "data" / "scratch"
    stats = json.loads((out / "tfrecords" / "stats.json").read_text(encoding="utf-8"))
    vocab = (out / "vocab" / "vocab.txt").read_bytes()
    assert stats["examples"] > 0 and stats["vocab_sha256"] == hashlib.sha256(vocab).hexdigest()
    assert (out / "model" / "model.ckpt-300.index").is_file()
    assert (out / "pytorch" / "discriminator" / "model.safetensors").is_file()
    results = json.loads((out / "finetune" / "nsmc_sample" / "results.json").read_text(encoding="utf-8"))
    assert any(e.get("final") for e in results["evaluations"])
