"""run_pretraining.py --backend torch on data/sample: the TF backend's model directory, logs, guards
and evaluation keys, without importing TensorFlow; and the hparams and directories it refuses."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pretrain import layout
from pretrain.torch_backend import metrics

from .conftest import ROOT, pretrain_command, quiet_env

STEPS = 6
# docs/design.md: upstream ELECTRA's eight metrics, the four over real tokens, and the mean loss
# and step the Estimator adds to every evaluation.
EVAL_KEYS = {"masked_lm_accuracy", "masked_lm_loss", "sampled_masked_lm_accuracy", "disc_loss", "disc_auc",
             "disc_accuracy", "disc_precision", "disc_recall", "disc_auc_real_tokens", "disc_accuracy_real_tokens",
             "disc_prob_mean_real_tokens", "disc_prob_std_real_tokens", "loss", "global_step"}
# Reports, at exit, whether anything imported TensorFlow (installed here, so only a stray import would).
WATCH_TF = ("import atexit, runpy, sys; sys.path.insert(0, {root!r}); "
            "atexit.register(lambda: print('tensorflow imported:', 'tensorflow' in sys.modules)); "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(scope="module")
def torch_run(sample_data, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("torch_run") / "model")
    command = pretrain_command(sample_data, model_dir, "--backend", "torch", num_train_steps=STEPS,
                               save_checkpoints_steps=4, num_warmup_steps=2, do_eval=True, num_eval_steps=2, seed=3)
    done = subprocess.run([sys.executable, "-c", WATCH_TF.format(root=ROOT)] + command[1:], env=quiet_env(),
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return model_dir, done.stdout


def test_a_torch_run_writes_the_model_dir_the_tf_backend_writes(torch_run, sample_data):
    model_dir, log = torch_run
    assert log.splitlines()[0] == "backend torch: --backend torch"
    assert log.rstrip().endswith("tensorflow imported: False")
    for name in ("pretrain_config.json", "tokenizer_config.json", "vocab.txt"):
        assert os.path.isfile(os.path.join(model_dir, name))
    with open(os.path.join(model_dir, "vocab.txt"), "rb") as a, open(os.path.join(sample_data, "vocab.txt"), "rb") as b:
        assert a.read() == b.read()
    with open(os.path.join(model_dir, "pretrain_config.json")) as f:
        assert json.load(f)["bert_config"]["hidden_size"] == 64  # conf/pretrain/tiny.json's
    # Its own checkpoints only, nothing TF's tools could take for theirs; the lock is gone.
    assert [s for s, _ in layout.torch_checkpoints(model_dir)] == [4, STEPS]
    assert layout.latest_tf_checkpoint(model_dir) is None
    assert not any(n.startswith(("model.ckpt", "checkpoint", ".lock")) for n in os.listdir(model_dir))


def test_the_step_log_and_tensorboard_carry_the_tf_backends_figures(torch_run):
    model_dir, log = torch_run
    lines = [line for line in log.splitlines() if line.startswith("train step ")]
    assert lines and lines[-1].startswith(f"train step {STEPS}/{STEPS}: disc_auc_real(batch) ")
    for part in (" disc_loss ", " mlm_loss ", " lr ", " examples/s, ", " tokens/s (", " positions/s), ",
                 " model GFLOP/s, ", " left"):
        assert part in lines[-1]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(model_dir)
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/mlm", "loss/disc", "learning_rate", "accuracy/disc_auc_real",
            "speed/examples_per_sec", "speed/tokens_per_sec", "speed/fill_rate"} <= tags
    assert [e.step for e in events.Scalars("loss/total")][-1] == STEPS


def test_evaluation_writes_upstreams_metrics(torch_run):
    model_dir, log = torch_run
    with open(os.path.join(model_dir, "results", "unsup_results.txt")) as f:
        results = dict(line.strip().split(" = ") for line in f)
    assert set(results) == EVAL_KEYS
    assert int(results["global_step"]) == STEPS
    assert 0.0 <= float(results["disc_auc_real_tokens"]) <= 1.0
    assert "discriminator on real tokens (no padding, [CLS] or [SEP]): AUC" in log


def test_the_tf_backend_refuses_to_continue_the_torch_checkpoints(torch_run, sample_data):
    from configure_pretraining import PretrainingConfig
    from pretrain.prepare import check_model_dir
    from util.errors import UserInputError

    model_dir, _ = torch_run
    with open(os.path.join(ROOT, "conf", "pretrain", "tiny.json")) as f:
        config = PretrainingConfig(model_dir, sample_data, **json.load(f))
    with pytest.raises(UserInputError) as error:
        check_model_dir(config, "tf")
    assert str(error.value) == (
        f"{model_dir}: its newest checkpoint {layout.torch_checkpoint_path(model_dir, STEPS)} is a torch "
        f"({layout.TORCH_CHECKPOINT_DIR}/) one, and this run uses --backend tf: continue it with --backend torch, "
        f"convert it to continue with tf at the same step (python pytorch_convert.py --tf_ckpt_path {model_dir} "
        "--to_tf_model_dir DIR)")


@pytest.mark.parametrize("backend, extra, hparams, expected", [
    ("torch", ["--use_tpu"], {}, "--use_tpu: honoured only by the tf backend, and this run uses --backend torch: "
                                 "Cloud TPU needs the TF backend; remove it, or run --backend tf"),
    ("torch", [], {"distribution": "mirrored", "num_gpus": 2},
     "distribution 'mirrored', num_gpus 2: honoured only by the tf backend"),
    ("tf", [], {"torch_compile": True}, "torch_compile True: honoured only by the torch backend, and this run "
                                        "uses --backend tf: remove it, or run --backend torch"),
])
def test_an_hparam_only_the_other_backend_honours_is_one_line(tmp_path, sample_data, backend, extra, hparams,
                                                               expected):
    done = subprocess.run(pretrain_command(sample_data, str(tmp_path / "m"), "--backend", backend, *extra, **hparams),
                          env=quiet_env(), capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and expected in done.stderr
    assert not os.path.exists(tmp_path / "m")  # refused before anything is written


def test_streamed_auc_and_means_equal_tf_metrics():
    tf = pytest.importorskip("tensorflow.compat.v1")
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 2, (4, 16)), rng.random((4, 16)).astype(np.float32), rng.integers(0, 2, (4, 16)))
               for _ in range(3)]
    auc, mean = metrics.StreamingAUC(), metrics.WeightedMean()
    with tf.Graph().as_default(), tf.Session() as session:
        labels, probs, weights = (tf.placeholder(dtype, [4, 16]) for dtype in (tf.int64, tf.float32, tf.int64))
        tf_auc, auc_update = tf.metrics.auc(labels, probs, weights=weights)
        tf_acc, acc_update = tf.metrics.accuracy(labels, tf.cast(probs > 0.5, tf.int64), weights=weights)
        session.run(tf.local_variables_initializer())
        for y, p, w in batches:
            session.run([auc_update, acc_update], {labels: y, probs: p, weights: w})
            auc.update(y, p, w)
            mean.update(y == (p > 0.5), w)
        expected_auc, expected_acc = session.run([tf_auc, tf_acc])
    assert auc.result() == pytest.approx(expected_auc, abs=1e-6)
    assert mean.result() == pytest.approx(expected_acc, abs=1e-7)


def test_batch_auc_is_the_rank_auc_over_real_tokens():
    from sklearn.metrics import roc_auc_score

    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(4, 32, generator=generator)
    labels = (torch.rand(4, 32, generator=generator) < 0.3).float()
    real = (torch.rand(4, 32, generator=generator) < 0.7).float()
    keep = real.bool()
    expected = roc_auc_score(labels[keep].numpy(), probs[keep].numpy())
    figures = metrics.real_token_stats(probs, labels, (probs > 0.5).float(), real)
    assert figures["disc_auc_real"].item() == pytest.approx(expected, abs=1e-6)


def test_a_nan_loss_stops_in_one_line_and_the_last_good_checkpoint_resumes(sample_data, tmp_path, monkeypatch):
    from configure_pretraining import PretrainingConfig
    from pretrain import guards
    from pretrain.torch_backend import model as model_module
    from pretrain.torch_backend import train

    original = model_module.ElectraPretrainer
    calls = []

    class Diverging(original):
        """The real model whose loss turns NaN from train step 5 on."""

        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            calls.append(1)
            if len(calls) >= 5:
                out["total_loss"] = out["total_loss"] * float("nan")
            return out

    with open(os.path.join(ROOT, "conf", "pretrain", "tiny.json")) as f:
        hparams = dict(json.load(f), num_train_steps=8, save_checkpoints_steps=3, seed=1)
    model_dir = str(tmp_path / "model")
    monkeypatch.setattr(model_module, "ElectraPretrainer", Diverging)
    with pytest.raises(guards.NonFiniteTrainingError) as error:
        train.main(PretrainingConfig(model_dir, sample_data, **hparams))
    assert str(error.value).startswith("loss is nan at train step 5; stopped without saving, the last good "
                                       "checkpoint step-3.pt is kept")
    assert '"learning_rate": 0.00025' in str(error.value)
    assert [s for s, _ in layout.torch_checkpoints(model_dir)] == [3]
    assert not os.path.exists(os.path.join(model_dir, ".lock"))
    monkeypatch.setattr(model_module, "ElectraPretrainer", original)
    train.main(PretrainingConfig(model_dir, sample_data, **dict(hparams, learning_rate=2.5e-4)))
    assert [s for s, _ in layout.torch_checkpoints(model_dir)][-1] == 8


def test_a_checkpoint_the_disk_cannot_hold_is_one_line_and_leaves_nothing(sample_data, mount_tmpfs, tmp_path):
    from configure_pretraining import PretrainingConfig
    from pretrain.torch_backend import train
    from util.errors import UserInputError

    small_disk = str(mount_tmpfs("2m"))  # the config files fit, a checkpoint of tiny.json's model (3.7 MB) does not
    with open(os.path.join(ROOT, "conf", "pretrain", "tiny.json")) as f:
        hparams = dict(json.load(f), num_train_steps=2, seed=1)
    with pytest.raises(UserInputError) as error:
        train.main(PretrainingConfig(os.path.join(small_disk, "model"), sample_data, **hparams))
    message = str(error.value)
    assert "\n" not in message and "model dir (checkpoint at step 2) " in message
    assert ": the disk is full (" in message and "no checkpoint was saved; a rerun starts from step 0" in message
    left = os.listdir(os.path.join(small_disk, "model"))
    assert layout.TORCH_CHECKPOINT_DIR not in left or not os.listdir(
        os.path.join(small_disk, "model", layout.TORCH_CHECKPOINT_DIR))
    assert ".lock" not in left


def test_evaluating_a_model_dir_without_checkpoints_is_refused(sample_data, tmp_path):
    from configure_pretraining import PretrainingConfig
    from pretrain.torch_backend import train
    from util.errors import UserInputError

    with open(os.path.join(ROOT, "conf", "pretrain", "tiny.json")) as f:
        hparams = dict(json.load(f), do_train=False, do_eval=True)
    model_dir = str(tmp_path / "model")
    with pytest.raises(UserInputError, match=r"^do_eval alone: .* has no torch checkpoint to evaluate; train first"):
        train.main(PretrainingConfig(model_dir, sample_data, **hparams))
    assert not os.path.exists(os.path.join(model_dir, "pretrain_config.json"))
