"""pretrain/checkpoint_state.py: TF checkpoints read without TensorFlow, checked against what
TensorFlow itself wrote and reads: the index's variables, the shards' sizes and crc32c, the
state file; the newest intact checkpoint chosen past damage, and the state file pointed at it."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pretrain import checkpoint_state
from pretrain.checkpoint_state import Damaged
from util.errors import UserInputError

from .conftest import ROOT


def save(prefix, seed, step):
    """A TF checkpoint as the saver writes one: float32 weights, an int64 global_step, a bf16 slot."""
    rng = np.random.default_rng(seed)
    tensors = {f"electra/encoder/layer_{i}/dense/kernel": rng.standard_normal((48, 32)).astype(np.float32)
               for i in range(40)}  # enough entries for several index blocks
    tensors["global_step"] = np.int64(step)
    names = sorted(tensors)
    values = [tf.constant(tensors[n]) for n in names] + [tf.cast(tf.constant(tensors[names[0]]), tf.bfloat16)]
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names + ["electra/bf16_slot"], shape_and_slices=[""] * len(values),
                      tensors=values)
    return tensors


@pytest.fixture
def model_dir(tmp_path):
    directory = str(tmp_path / "model")
    os.makedirs(directory)
    for step in (10, 20):
        save(os.path.join(directory, f"model.ckpt-{step}"), step, step)
    with open(os.path.join(directory, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "model.ckpt-20"\nall_model_checkpoint_paths: "model.ckpt-10"\n'
                'all_model_checkpoint_paths: "model.ckpt-20"\n')
    return directory


def data_file(model_dir, step):
    return os.path.join(model_dir, f"model.ckpt-{step}.data-00000-of-00001")


def test_the_index_lists_what_tensorflow_reads(model_dir):
    prefix = os.path.join(model_dir, "model.ckpt-20")
    entries, shards = checkpoint_state.read_index(prefix)
    reader = tf.train.load_checkpoint(prefix)
    assert set(entries) == set(reader.get_variable_to_shape_map()) and shards == 1
    checkpoint_state.check_checkpoint(prefix, full=True)
    assert checkpoint_state.read_state(model_dir) == [os.path.join(model_dir, f"model.ckpt-{s}") for s in (10, 20)]
    choice = checkpoint_state.newest_intact(model_dir, full=True)
    assert (choice.prefix, choice.step, choice.notes) == (prefix, 20, [])


def test_imports_no_tensorflow(model_dir):
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); from pretrain import checkpoint_state as c; "
            f"print(c.newest_intact({model_dir!r}, full=True).step); assert 'tensorflow' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "20", result.stderr


def test_a_newest_data_file_cut_short_is_passed_over(model_dir):
    path = data_file(model_dir, 20)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    with pytest.raises(Damaged, match="cut short"):
        checkpoint_state.check_checkpoint(os.path.join(model_dir, "model.ckpt-20"))
    choice = checkpoint_state.newest_intact(model_dir)
    assert choice.step == 10 and len(choice.notes) == 1 and path in choice.notes[0]


def test_flipped_bytes_fail_the_full_check_only(model_dir):
    path = data_file(model_dir, 20)
    with open(path, "r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    checkpoint_state.check_checkpoint(os.path.join(model_dir, "model.ckpt-20"))  # sizes still agree
    with pytest.raises(Damaged, match="fails its checksum"):
        checkpoint_state.check_checkpoint(os.path.join(model_dir, "model.ckpt-20"), full=True)
    with pytest.raises(tf.errors.OpError, match="Checksum does not match"):  # TensorFlow agrees
        reader = tf.train.load_checkpoint(os.path.join(model_dir, "model.ckpt-20"))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)


def test_a_deleted_index_is_named(model_dir):
    os.remove(os.path.join(model_dir, "model.ckpt-20.index"))
    choice = checkpoint_state.newest_intact(model_dir)
    assert choice.step == 10 and "model.ckpt-20.index is damaged (missing)" in choice.notes[0]


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (bytes(range(256)) * 2, "binary"),
                                            (b"model_checkpoint_path model.ckpt-20\n", "line 1")])
def test_a_damaged_state_file_is_named_and_the_newest_by_step_taken(model_dir, content, reason):
    with open(os.path.join(model_dir, "checkpoint"), "wb") as f:
        f.write(content)
    with pytest.raises(Damaged, match=reason):
        checkpoint_state.read_state(model_dir)
    choice = checkpoint_state.newest_intact(model_dir)
    assert choice.step == 20 and len(choice.notes) == 1 and os.path.join(model_dir, "checkpoint") in choice.notes[0]


def test_the_state_files_newest_is_kept_over_a_later_unlisted_save(model_dir):
    with open(os.path.join(model_dir, "checkpoint"), "w") as f:  # as after removing the newest by hand
        f.write('model_checkpoint_path: "model.ckpt-10"\nall_model_checkpoint_paths: "model.ckpt-10"\n'
                "all_model_checkpoint_timestamps: 1796693025.5\nlast_preserved_timestamp: 1796690000.25\n")
    assert checkpoint_state.newest_intact(model_dir).step == 10


def test_nothing_intact_is_one_line_naming_the_newest_damage(model_dir):
    for step in (10, 20):
        os.truncate(data_file(model_dir, step), 100)
    open(os.path.join(model_dir, "checkpoint"), "w").close()
    with pytest.raises(UserInputError) as e:
        checkpoint_state.newest_intact(model_dir)
    message = str(e.value)
    assert message.startswith(data_file(model_dir, 20) + ": damaged checkpoint (cut short")
    assert "\n" not in message and "copy the checkpoint files again" in message
    assert checkpoint_state.newest_intact(os.path.dirname(model_dir)) is None  # no checkpoint at all


def test_write_state_points_tensorflow_at_the_fallback(model_dir):
    os.truncate(data_file(model_dir, 20), 100)
    choice = checkpoint_state.newest_intact(model_dir)
    checkpoint_state.write_state(model_dir, choice.prefix)
    assert tf.train.latest_checkpoint(model_dir) == choice.prefix
    state = tf.train.get_checkpoint_state(model_dir)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["model.ckpt-10"]
    assert checkpoint_state.newest_intact(model_dir).notes == []
