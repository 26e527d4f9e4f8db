"""Cross-continuation: a torch run continued by the TF backend, and a TF run continued by the torch backend,
through convert/torch_tf.py, continue where they stopped.

The two backends draw masks, generator samples and dropout from different generators, so their
losses cannot be compared step by step (the fixed-batch equality of the two networks, masks fed
to both, is experiments/parity_step's). What the conversion carries is the state: weights, Adam
slots, step (tests/convert/test_torch_checkpoint.py shows them bit for bit). Here, the runs:

- Evaluation. The original checkpoint evaluated by its own backend and the converted one by the
  other backend, on the same evaluation batches, differ only by their masks and samples. The
  tolerance is measured, not assumed: the torch backend evaluates its checkpoint with EVAL_SEEDS
  masking seeds, and the other evaluation must lie within EVAL_BOUND of their standard deviations
  from their mean (for t with 7 degrees of freedom a bound of 5 is crossed by chance with p 0.002;
  a weight lost in the conversion moves the MLM loss of these checkpoints by about 25 of them).
- Training. The first FIRST continued steps under the other backend against the same run
  continued by its own backend from its own checkpoint: their mean losses must agree within
  STEP_BOUND standard errors, the error from the curves' step-to-step noise; and both sit more
  than FRESH_BOUND of them below a fresh start (the original run's own first steps): the trained
  state carried over.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

import numpy as np
import pytest

from torch_runs import ROOT, pretrain_command, quiet_env

from convert import torch_tf
from pretrain import layout

N = 20  # steps before the switch; the continuations run to 2N
FIRST = 8  # continued steps compared
EVAL_SEEDS, EVAL_BOUND = 8, 5.0
STEP_BOUND, FRESH_BOUND = 3.0, 10.0
HPARAMS = dict(num_warmup_steps=5, iterations_per_loop=1, save_checkpoints_steps=N, generator_hidden_size=0.5,
               num_eval_steps=8, seed=11)
METRICS = ("masked_lm_loss", "disc_loss", "disc_auc_real_tokens")
UPSTREAM = os.environ.get("PARITY_UPSTREAM_DIR")


def pretrain(data_dir, model_dir, backend, steps, **hparams):
    """Run run_pretraining.py; returns ({step: total loss} from its TensorBoard events, its log)."""
    from experiments.make_results import scalars

    command = pretrain_command(data_dir, model_dir, "--backend", backend,
                               **dict(HPARAMS, num_train_steps=steps, **hparams))
    done = subprocess.run(command, env=quiet_env(), capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # Every step's loss (the step log leaves out the first after a start): both backends write "loss/total".
    return dict(scalars(model_dir).get("loss/total", [])), done.stdout


def evaluate_tf(data_dir, model_dir):
    """The TF backend's evaluation of the model dir's TF checkpoint (into a copy: the model dir stays as it was)."""
    copy = model_dir + "_eval"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("events.*", "results"))
    pretrain(data_dir, copy, "tf", N, do_train=False, do_eval=True)
    with open(os.path.join(copy, "results", "unsup_results.txt"), encoding="utf-8") as f:
        return {k.strip(): float(v) for k, v in (line.split("=", 1) for line in f if "=" in line)}


def evaluate_torch(data_dir, model_dir, tmp_path):
    """The torch backend's evaluation of the model dir's newest torch checkpoint, once per masking seed."""
    import torch

    from pretrain import input_pipeline
    from pretrain.torch_backend import checkpoint
    from pretrain.torch_backend.model import ElectraPretrainer
    from pretrain.torch_backend.train import evaluate

    config = torch_tf.read_model_config(model_dir)
    config.num_eval_steps = HPARAMS["num_eval_steps"]
    config.results_txt = str(tmp_path / "torch_eval" / "unsup_results.txt")
    model = ElectraPretrainer(config)
    checkpoint.restore(checkpoint.read(layout.torch_checkpoints(model_dir)[-1][1]), model)
    files = input_pipeline.find_tfrecords(data_dir, config.pretrain_tfrecords)
    return [evaluate(config, files, model, "fp32", torch.device("cpu"), seed, N) for seed in range(EVAL_SEEDS)]


def assert_same_evaluation(tf_results, torch_results):
    for metric in METRICS:
        spread = [r[metric] for r in torch_results]
        mean, std = statistics.mean(spread), statistics.stdev(spread)
        print(f"{metric}: TF {tf_results[metric]:.4f}, torch {mean:.4f} ± {std:.4f} over {len(spread)} seeds "
              f"({abs(tf_results[metric] - mean) / std:.1f} sd apart)")
        assert abs(tf_results[metric] - mean) <= EVAL_BOUND * std, (metric, tf_results[metric], spread)


def window(losses, start=N + 1):
    return [losses[s] for s in range(start, start + FIRST)]


def step_noise(*curves):
    """Step-to-step standard deviation of a loss, the trend removed: neighbours' differences over sqrt(2)."""
    return max(statistics.stdev(np.diff(curve)) / np.sqrt(2) for curve in curves)


def assert_continues(other, own, original):
    """The other backend's continuation is its own backend's within the noise, and no fresh start."""
    sigma = step_noise(window(other), window(own))
    error = sigma * np.sqrt(2 / FIRST)  # of the difference of two FIRST-step means
    gap = statistics.mean(window(other)) - statistics.mean(window(own))
    fresh = statistics.mean(window(original, 1)) - statistics.mean(window(own))
    print(f"continued steps {N + 1}-{N + FIRST}: other backend {statistics.mean(window(other)):.3f}, own "
          f"{statistics.mean(window(own)):.3f} (standard error of the difference {error:.3f}); a fresh start's first "
          f"steps {statistics.mean(window(original, 1)):.3f}; step {N + 1} {other[N + 1]:.3f} after step {N} "
          f"{original[N]:.3f} (step noise {sigma:.3f})")
    assert abs(gap) <= STEP_BOUND * error, (window(other), window(own), sigma)
    assert fresh > FRESH_BOUND * error, (window(original, 1), window(own), sigma)
    # The first continued step, before any update under the other backend, on one batch.
    assert abs(other[N + 1] - original[N]) <= STEP_BOUND * sigma * np.sqrt(2), (other[N + 1], original[N], sigma)


@pytest.mark.slow  # five pretraining runs and two TF evaluations: several minutes on a busy 2-core machine
def test_a_torch_run_continued_by_the_tf_backend_continues_where_it_stopped(sample_data, tmp_path):
    torch_dir, own_dir, tf_dir = (str(tmp_path / n) for n in ("torch", "own", "tf"))
    original, _ = pretrain(sample_data, torch_dir, "torch", N)
    shutil.copytree(torch_dir, own_dir)
    torch_tf.torch_to_tf(torch_dir, tf_dir)
    assert_same_evaluation(evaluate_tf(sample_data, tf_dir), evaluate_torch(sample_data, torch_dir, tmp_path))

    other, log = pretrain(sample_data, tf_dir, "tf", 2 * N)
    assert f"resuming from {tf_dir}/model.ckpt-{N} at step {N} of {2 * N}" in log
    own, _ = pretrain(sample_data, own_dir, "torch", 2 * N)
    assert_continues(other, own, original)


@pytest.mark.slow  # likewise
def test_a_tf_run_continued_by_the_torch_backend_continues_where_it_stopped(sample_data, tmp_path):
    tf_dir, own_dir, torch_dir = (str(tmp_path / n) for n in ("tf", "own", "torch"))
    original, _ = pretrain(sample_data, tf_dir, "tf", N)
    shutil.copytree(tf_dir, own_dir)
    torch_tf.tf_to_torch(tf_dir, torch_dir)
    assert_same_evaluation(evaluate_tf(sample_data, tf_dir), evaluate_torch(sample_data, torch_dir, tmp_path))

    other, log = pretrain(sample_data, torch_dir, "torch", 2 * N)
    assert f"resuming from {layout.torch_checkpoint_path(torch_dir, N)} at step {N} of {2 * N}" in log
    assert f"continuing {tf_dir}/model.ckpt-{N}: the model, Adam slots and schedule continue" in log
    own, _ = pretrain(sample_data, own_dir, "tf", 2 * N)
    assert_continues(other, own, original)


@pytest.mark.slow
@pytest.mark.skipif(not UPSTREAM, reason="PARITY_UPSTREAM_DIR unset: no google-research/electra checkout")
def test_upstreams_own_code_continues_a_converted_torch_run(sample_data, tmp_path):
    import tensorflow as tf

    # Upstream sizes its model through model_hparam_overrides only: the tiny network spelled that way.
    sizes = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256,
             "max_position_embeddings": 128}
    hparams = dict(model_size="small", embedding_size=32, generator_hidden_size=0.5, max_seq_length=64,
                   train_batch_size=16, eval_batch_size=16, learning_rate=5e-4, num_warmup_steps=5,
                   save_checkpoints_steps=N, iterations_per_loop=N, model_hparam_overrides=sizes, do_eval=False)
    torch_dir, tf_dir = str(tmp_path / "torch"), str(tmp_path / "tf")
    command = [sys.executable, os.path.join(ROOT, "run_pretraining.py"), "--backend", "torch", "--data_dir",
               sample_data, "--model_name", torch_dir, "--hparams", json.dumps(dict(hparams, num_train_steps=N,
                                                                                     seed=11))]
    assert subprocess.run(command, env=quiet_env(), capture_output=True, cwd=ROOT).returncode == 0
    torch_tf.torch_to_tf(torch_dir, tf_dir)
    vocab_size = sum(1 for _ in open(os.path.join(sample_data, "vocab.txt"), encoding="utf-8"))
    upstream = dict(hparams, num_train_steps=2 * N, iterations_per_loop=1, vocab_size=vocab_size, do_lower_case=False)
    done = subprocess.run([sys.executable, "-m", "experiments.upstream_parity", "--_upstream_train", "--upstream_dir",
                           UPSTREAM, "--data_dir", sample_data, "--work", tf_dir, "--hparams", json.dumps(upstream)],
                          env=quiet_env(), capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    # Upstream's ETAHook prints "<global step>/<steps> = ...% ... - loss: <loss>" after every step.
    logged = {int(m.group(1)): float(m.group(2))
              for m in map(re.compile(r"^(\d+)/\d+ = .* - loss: ([-+.\deE]+)$").match, done.stdout.splitlines()) if m}
    assert min(logged) == N + 1 and max(logged) == 2 * N, sorted(logged)  # it resumed at step N
    reader = tf.train.load_checkpoint(os.path.join(tf_dir, f"model.ckpt-{2 * N}"))
    assert int(reader.get_tensor("global_step")) == 2 * N
    # The trained state, not a fresh start: far below the torch run's own first steps.
    from experiments.make_results import scalars

    original = dict(scalars(torch_dir)["loss/total"])
    error = step_noise(window(logged)) * np.sqrt(2 / FIRST)
    assert statistics.mean(window(original, 1)) - statistics.mean(window(logged)) > FRESH_BOUND * error, \
        (window(logged), window(original, 1))
