"""Converting a run that is not finished: a checkpoint short of num_train_steps, or a model
directory a live run still holds, is said in one line, and the card records it."""
import json
import os
import subprocess
import sys

import pytest

from tiny_checkpoint import bert_config, make_model_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = 120
HOLDER = ("import sys; sys.path.insert(0, {root!r}); from util.dir_lock import hold\n"
          "with hold({directory!r}, 'model dir'):\n    print('held', flush=True); sys.stdin.read()\n")


def model_dir_with_steps(directory, num_train_steps):
    """A model dir whose checkpoint is at step 7 (tiny_checkpoint's), its config planning ``num_train_steps``."""
    model_dir = make_model_dir(str(directory), bert_config(32, 2, 2, 16, VOCAB), bert_config(16, 1, 1, 16, VOCAB),
                               scale=0.05)
    path = os.path.join(model_dir, "pretrain_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config["num_train_steps"] = num_train_steps
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    return model_dir


def convert(tmp_path, model_dir, capsys):
    import pytorch_convert
    from util.errors import run_cli

    out = tmp_path / "pytorch"
    run_cli(lambda: pytorch_convert.main(["--tf_ckpt_path", model_dir, "--pt_discriminator_path", str(out / "d"),
                                          "--pt_generator_path", str(out / "g"), "--seed", "1"]))
    return capsys.readouterr().out.splitlines(), (out / "d" / "README.md").read_text(encoding="utf-8")


def unfinished_lines(lines):
    return [line for line in lines if "not finished" in line or "live run" in line]


def test_a_run_stopped_short_of_its_steps_is_said_and_carded(tmp_path, capsys):
    lines, card = convert(tmp_path, model_dir_with_steps(tmp_path / "model", 200), capsys)
    said = unfinished_lines(lines)
    assert len(said) == 1, lines
    assert "step 7 of num_train_steps 200" in said[0] and "live run" not in said[0]
    assert "| global step | 7 of 200 (not finished) |" in card


def test_a_directory_a_live_run_holds_is_said_and_carded(tmp_path, capsys):
    model_dir = model_dir_with_steps(tmp_path / "model", 200)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=ROOT, directory=model_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lines, card = convert(tmp_path, model_dir, capsys)
        assert (tmp_path / "model" / ".lock").exists(), "the live run's lock is left as it was"
    finally:
        holder.communicate("")
    said = unfinished_lines(lines)
    assert len(said) == 1, lines
    assert "step 7 of num_train_steps 200" in said[0] and f"a live run (PID {holder.pid}) holds" in said[0]
    assert f"still training (PID {holder.pid})" in card


@pytest.mark.parametrize("num_train_steps", [7, None])
def test_a_finished_run_says_nothing_more(tmp_path, capsys, num_train_steps):
    lines, card = convert(tmp_path, model_dir_with_steps(tmp_path / "model", num_train_steps), capsys)
    assert unfinished_lines(lines) == []
    assert "| global step | 7 |" in card and "not finished" not in card
