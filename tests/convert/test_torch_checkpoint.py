"""A torch backend model directory converts like a TF one: to transformers directories and ONNX without
TensorFlow, and to a TF model directory (and back) holding the weights, Adam slots and step a resumed
run needs, with every variable the TF backend's training graph builds."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from torch_runs import ROOT, pretrain_command, quiet_env

from convert import torch_tf
from pretrain import layout
from util.errors import UserInputError

STEPS = 4
# Any import of TensorFlow in the process fails: a sitecustomize run before the command itself.
NO_TENSORFLOW = 'import sys\nsys.modules["tensorflow"] = None\n'


@pytest.fixture(scope="module")
def torch_run(sample_data, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("torch_run") / "model")
    command = pretrain_command(sample_data, model_dir, "--backend", "torch", num_train_steps=STEPS,
                               save_checkpoints_steps=STEPS, num_warmup_steps=2, generator_hidden_size=0.5, seed=5)
    done = subprocess.run(command, env=quiet_env(), capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return model_dir


def convert_without_tensorflow(tmp_path, *args):
    site = tmp_path / "no_tensorflow"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NO_TENSORFLOW)
    env = dict(quiet_env(), PYTHONPATH=str(site))
    return subprocess.run([sys.executable, os.path.join(ROOT, "pytorch_convert.py"), *args], env=env,
                          capture_output=True, text=True, cwd=ROOT)


def test_a_torch_model_dir_converts_to_transformers_and_onnx_without_tensorflow(torch_run, tmp_path):
    out = tmp_path / "out"
    done = convert_without_tensorflow(tmp_path, "--tf_ckpt_path", torch_run, "--pt_discriminator_path",
                                      str(out / "disc"), "--pt_generator_path", str(out / "gen"),
                                      "--onnx_path", str(out / "disc.onnx"))
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = layout.torch_checkpoint_path(torch_run, STEPS)
    assert done.stdout.splitlines()[0] == f"checkpoint: {checkpoint} (global_step {STEPS}) (torch backend)"
    checks = ["discriminator: transformers vs torch backend", "discriminator: onnxruntime vs torch backend",
              "discriminator: onnxruntime vs transformers", "generator MLM: transformers vs torch backend"]
    parity = json.loads((out / "disc" / "parity.json").read_text())
    assert sorted(parity["max_relative_error"]) == sorted(checks)
    assert all(error < 1e-4 for error in parity["max_relative_error"].values()), parity
    for directory in ("disc", "gen"):
        names = set(os.listdir(out / directory))
        assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                "README.md"} <= names
        card = (out / directory / "README.md").read_text()
        assert "converted from the PyTorch backend's checkpoint by `pytorch_convert.py`" in card
        assert f"| global step | {STEPS} |" in card
    assert (out / "disc.onnx").is_file()


def test_the_torch_and_the_tf_route_write_the_same_models(torch_run, tmp_path):
    """The torch checkpoint converted directly, and through a TF model directory by the TF route: the same files."""
    from safetensors.numpy import load_file

    from convert.pipeline import convert_checkpoint

    tf_dir = str(tmp_path / "tf")
    torch_tf.torch_to_tf(torch_run, tf_dir, log=lambda _: None)
    results = {}
    for route, source in (("torch", torch_run), ("tf", tf_dir)):
        out = tmp_path / route
        results[route] = convert_checkpoint(source, str(out / "disc"), str(out / "gen"), log=lambda _: None)
    assert [r.name for r in results["tf"]] == ["discriminator: PyTorch vs TF", "generator MLM: PyTorch vs TF"]
    assert [r.name for r in results["torch"]] == ["discriminator: transformers vs torch backend",
                                                  "generator MLM: transformers vs torch backend"]
    for directory in ("disc", "gen"):
        a, b = (load_file(str(tmp_path / route / directory / "model.safetensors")) for route in ("torch", "tf"))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        for name in ("config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
            files = [tmp_path / route / directory / name for route in ("torch", "tf")]
            assert files[0].read_bytes() == files[1].read_bytes()


def test_torch_to_tf_and_back_keeps_every_weight_adam_slot_and_the_step(torch_run, tmp_path):
    tf_dir, back = str(tmp_path / "tf"), str(tmp_path / "back")
    prefix = torch_tf.torch_to_tf(torch_run, tf_dir, log=lambda _: None)
    assert prefix == os.path.join(tf_dir, f"model.ckpt-{STEPS}")
    assert layout.latest_tf_checkpoint(tf_dir) == prefix  # named by TF's state file, as the Estimator finds it
    for name in ("pretrain_config.json", "vocab.txt", "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(tf_dir, name))
    path = torch_tf.tf_to_torch(tf_dir, back, log=lambda _: None)
    assert path == layout.torch_checkpoint_path(back, STEPS)

    original = torch.load(layout.torch_checkpoint_path(torch_run, STEPS), weights_only=True)
    again = torch.load(path, weights_only=True)
    assert again["step"] == STEPS and again["converted_from"] == prefix and again["ranks"] == []
    assert original["model"].keys() == again["model"].keys()
    assert all(torch.equal(original["model"][k], again["model"][k]) for k in original["model"])
    before, after = original["optimizer"]["state"], again["optimizer"]["state"]
    slots = [(before[i], after[i]) for i in before]
    assert before.keys() == after.keys() and slots
    assert all(torch.equal(a[s], b[s]) for a, b in slots for s in ("adam_m", "adam_v"))
    assert again["scheduler"]["last_epoch"] == original["scheduler"]["last_epoch"] == STEPS


def test_the_tf_model_dir_holds_every_variable_the_tf_backends_training_graph_builds(torch_run, tmp_path):
    import tensorflow.compat.v1 as tf

    from model import optimization
    from model.electra_model import PretrainingModel

    prefix = torch_tf.torch_to_tf(torch_run, str(tmp_path / "tf"), log=lambda _: None)
    config = torch_tf.read_model_config(str(tmp_path / "tf"))
    with tf.Graph().as_default():
        shape = (2, config.max_seq_length)
        features = {name: tf.zeros(shape, tf.int32) for name in ("input_ids", "input_mask", "segment_ids")}
        model = PretrainingModel(config, features, True)
        # With the loss scale of fp16 on a GPU: a continuation in either precision finds its variables.
        optimization.create_train_op(model.total_loss, config.learning_rate, config.num_train_steps,
                                     config.weight_decay_rate, config.num_warmup_steps, loss_scaling=True)
        graph = {v.op.name: (v.shape.as_list(), v.dtype.base_dtype.name) for v in tf.global_variables()}
    reader = tf.train.load_checkpoint(prefix)
    written = {name: (shape, reader.get_variable_to_dtype_map()[name].name)
               for name, shape in reader.get_variable_to_shape_map().items()}
    assert written == graph
    assert int(reader.get_tensor("global_step")) == STEPS
    assert np.any(reader.get_tensor("electra/embeddings/word_embeddings/adam_v"))  # the trained slots, not zeros


def test_a_conversion_beside_the_original_lets_either_backend_continue(torch_run, tmp_path):
    from pretrain.prepare import check_model_dir

    model_dir = str(tmp_path / "run")
    shutil.copytree(torch_run, model_dir)
    torch_tf.torch_to_tf(model_dir, model_dir, log=lambda _: None)
    assert layout.latest_checkpoint(model_dir, "tf")[1:] == (os.path.join(model_dir, f"model.ckpt-{STEPS}"), STEPS)
    assert layout.latest_checkpoint(model_dir, "torch")[2] == STEPS
    config = torch_tf.read_model_config(model_dir)  # the run's own config, as a rerun gives it
    for backend in ("tf", "torch"):
        check_model_dir(config, backend)
    # The torch run continues past the TF checkpoint: only the torch backend may go on from there.
    shutil.copy(layout.torch_checkpoint_path(model_dir, STEPS), layout.torch_checkpoint_path(model_dir, STEPS + 2))
    check_model_dir(config, "torch")
    with pytest.raises(UserInputError, match=rf"--backend tf: continue it with --backend torch, convert it to continue "
                                             rf"with tf at the same step \(python pytorch_convert.py --tf_ckpt_path "):
        check_model_dir(config, "tf")


def test_a_directory_with_both_kinds_converts_its_newest_and_says_so(torch_run, tmp_path):
    from convert.checkpoint import open_checkpoint

    model_dir = str(tmp_path / "run")
    shutil.copytree(torch_run, model_dir)
    torch_tf.torch_to_tf(model_dir, model_dir, log=lambda _: None)
    said = []
    source = open_checkpoint(model_dir, said.append)
    assert (source.kind, source.prefix) == ("torch", layout.torch_checkpoint_path(model_dir, STEPS))
    assert said == [f"{model_dir} holds TF and torch checkpoints: converting the newest, {source.prefix} "
                    f"(step {STEPS})"]
    for name in os.listdir(model_dir):  # the TF checkpoint ahead
        if name.startswith(f"model.ckpt-{STEPS}."):
            os.rename(os.path.join(model_dir, name), os.path.join(model_dir, name.replace(f"-{STEPS}.", "-9.")))
    said.clear()
    assert open_checkpoint(model_dir, said.append).kind == "tf"
    assert said == [f"{model_dir} holds TF and torch checkpoints: converting the newest, the TF one at step 9"]


def test_model_dir_conversions_refuse_in_one_line(torch_run, tmp_path):
    from tiny_checkpoint import bert_config, make_model_dir

    from convert.checkpoint import open_checkpoint
    from pytorch_convert import main

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserInputError, match=r"empty: no checkpoint in this directory, neither a TF one \(\*\.index\) "
                                             r"nor the torch backend's \(torch_checkpoints/step-<N>\.pt\)$"):
        open_checkpoint(str(empty))
    released = make_model_dir(str(tmp_path / "released"), bert_config(32, 2, 2, 16, 150),
                              bert_config(16, 1, 1, 16, 150))
    with pytest.raises(UserInputError, match="released: no torch checkpoint"):
        torch_tf.torch_to_tf(released, str(tmp_path / "x"))
    with pytest.raises(UserInputError, match="torch_run.*: no TF checkpoint"):  # the way back starts from a TF one
        torch_tf.tf_to_torch(torch_run, str(tmp_path / "x"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(UserInputError, match="busy: already exists and is not empty; pass --overwrite to replace it"):
        torch_tf.torch_to_tf(torch_run, str(busy))
    with pytest.raises(UserInputError, match=r"^--pt_discriminator_path: not with --to_tf_model_dir"):
        main(["--tf_ckpt_path", torch_run, "--to_tf_model_dir", str(tmp_path / "y"), "--pt_discriminator_path", "d"])


def test_a_released_checkpoint_has_nothing_to_resume(tmp_path):
    from tiny_checkpoint import bert_config, make_model_dir, save_checkpoint, variable_shapes

    disc, gen = bert_config(32, 2, 2, 16, 150), bert_config(16, 1, 1, 16, 150)
    model_dir = make_model_dir(str(tmp_path / "released"), disc, gen)
    save_checkpoint(os.path.join(model_dir, "model.ckpt-7"), variable_shapes(disc, gen), optimizer_slots=False)
    with pytest.raises(UserInputError, match=r"model.ckpt-7: no Adam slots, so nothing to resume \(a released "
                                             r"checkpoint holds the weights only\); warm-start a torch run"):
        torch_tf.tf_to_torch(model_dir, str(tmp_path / "out"))


def test_the_tf_backend_warm_starts_from_a_torch_run_through_the_tf_checkpoint_beside_it(torch_run, tmp_path):
    from pretrain import warm_start

    model_dir = str(tmp_path / "run")
    shutil.copytree(torch_run, model_dir)
    config = torch_tf.read_model_config(model_dir)
    config.model_dir, config.saved_model = str(tmp_path / "next"), model_dir
    with pytest.raises(UserInputError, match=rf"holds torch checkpoints, which the TF backend does not read: "
                                             rf"warm-start with --backend torch, or write a TF one beside the newest "
                                             rf"\(python pytorch_convert.py --tf_ckpt_path {model_dir} "
                                             "--to_tf_model_dir "):
        warm_start.source_variables(config, "tf")
    torch_tf.torch_to_tf(model_dir, model_dir, log=lambda _: None)
    variables, prefix, resuming = warm_start.source_variables(config, "tf")
    assert (prefix, resuming, variables.global_step) == (os.path.join(model_dir, f"model.ckpt-{STEPS}"), False, STEPS)
