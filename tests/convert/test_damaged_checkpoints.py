"""A damaged TF checkpoint in the model directory given to pytorch_convert.py (the newest .data
cut short, the newest .index deleted, an empty or binary `checkpoint` state file): one line
naming the damaged file, then the newest intact checkpoint converts with a note, or, with none
left (or a damaged one asked for by its prefix), one error line naming the file and the fix."""
import os
import subprocess
import sys

import pytest

from tiny_checkpoint import bert_config, make_model_dir, save_checkpoint, variable_shapes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DISC, GEN = bert_config(32, 2, 2, 16, 120), bert_config(16, 1, 1, 16, 120)


@pytest.fixture
def model_dir(tmp_path):
    """A model dir with checkpoints at steps 7 and 14, the state file naming both, as the saver writes it."""
    directory = make_model_dir(str(tmp_path / "model"), DISC, GEN, scale=0.05)
    save_checkpoint(os.path.join(directory, "model.ckpt-14"), variable_shapes(DISC, GEN), seed=1, step=14, scale=0.05)
    with open(os.path.join(directory, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "model.ckpt-14"\n'
                'all_model_checkpoint_paths: "model.ckpt-7"\nall_model_checkpoint_paths: "model.ckpt-14"\n')
    return directory


def cut_short(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def convert(tmp_path, source, capsys):
    """The conversion's lines: its log and what it printed (the damage notes)."""
    from convert.pipeline import convert_checkpoint

    lines = []
    convert_checkpoint(source, str(tmp_path / "d"), str(tmp_path / "g"), log=lines.append, seed=1)
    return capsys.readouterr().out.splitlines() + lines


def damage_notes(lines):
    return [line for line in lines if "damaged" in line]


DATA = "model.ckpt-14.data-00000-of-00001"


@pytest.mark.parametrize("damage,named,converted", [
    (lambda d: cut_short(os.path.join(d, DATA)), DATA, "model.ckpt-7"),
    (lambda d: os.remove(os.path.join(d, "model.ckpt-14.index")), "model.ckpt-14.index", "model.ckpt-7"),
    (lambda d: open(os.path.join(d, "checkpoint"), "w").close(), "checkpoint", "model.ckpt-14"),
    (lambda d: open(os.path.join(d, "checkpoint"), "wb").write(os.urandom(300)), "checkpoint", "model.ckpt-14"),
], ids=["data_cut_short", "index_deleted", "state_empty", "state_binary"])
def test_damage_is_named_and_the_newest_intact_checkpoint_converts(tmp_path, model_dir, capsys, damage, named,
                                                                    converted):
    damage(model_dir)
    lines = convert(tmp_path, model_dir, capsys)
    notes = damage_notes(lines)
    assert len(notes) == 1, lines
    assert os.path.join(model_dir, named) in notes[0] and converted in notes[0]
    assert any(line.startswith(f"checkpoint: {os.path.join(model_dir, converted)} ") for line in lines), lines
    card = open(tmp_path / "d" / "README.md", encoding="utf-8").read()
    assert f"`{converted}`" in card


def test_no_intact_checkpoint_left_is_one_line_with_the_fix(tmp_path, model_dir, capsys):
    cut_short(os.path.join(model_dir, DATA))
    cut_short(os.path.join(model_dir, "model.ckpt-7.data-00000-of-00001"))
    from util.errors import UserInputError

    with pytest.raises(UserInputError) as e:
        convert(tmp_path, model_dir, capsys)
    message = str(e.value)
    assert "\n" not in message and os.path.join(model_dir, DATA) in message and "copy" in message
    assert not os.path.exists(tmp_path / "d")


def test_a_damaged_checkpoint_asked_for_by_prefix_is_not_replaced(tmp_path, model_dir, capsys):
    cut_short(os.path.join(model_dir, DATA))
    from util.errors import UserInputError

    with pytest.raises(UserInputError) as e:
        convert(tmp_path, os.path.join(model_dir, "model.ckpt-14"), capsys)
    assert os.path.join(model_dir, DATA) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_the_command_line_names_a_binary_state_file_and_converts(tmp_path, model_dir):
    with open(os.path.join(model_dir, "checkpoint"), "wb") as f:
        f.write(os.urandom(300))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "pytorch_convert.py"), "--tf_ckpt_path", model_dir,
                             "--pt_discriminator_path", str(tmp_path / "d")],
                            cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    assert len(damage_notes(result.stdout.splitlines() + result.stderr.splitlines())) == 1
