"""End to end on the tiny config: training lowers the loss, checkpoints carry upstream ELECTRA's
names, evaluation writes every metric, a killed run resumes, and bfloat16 mixed precision trains."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from configure_pretraining import PretrainingConfig
from pretrain import training

from .conftest import ROOT, tiny_hparams


def expected_variables(config):
    """Upstream ELECTRA's checkpoint layout for this config: name -> shape."""
    bert, gen = config.to_dict()["bert_config"], config.to_dict()["generator_bert_config"]
    v, e = bert["vocab_size"], bert["embedding_size"]
    names = {"electra/embeddings/word_embeddings": [v, e],
             "electra/embeddings/position_embeddings": [bert["max_position_embeddings"], e],
             "electra/embeddings/token_type_embeddings": [2, e],
             "electra/embeddings/LayerNorm/gamma": [e], "electra/embeddings/LayerNorm/beta": [e],
             "generator_predictions/LayerNorm/gamma": [e], "generator_predictions/LayerNorm/beta": [e],
             "generator_predictions/dense/kernel": [gen["hidden_size"], e], "generator_predictions/dense/bias": [e],
             "generator_predictions/output_bias": [v],
             "discriminator_predictions/dense/kernel": [bert["hidden_size"]] * 2,
             "discriminator_predictions/dense/bias": [bert["hidden_size"]],
             "discriminator_predictions/dense_1/kernel": [bert["hidden_size"], 1],
             "discriminator_predictions/dense_1/bias": [1],
             "global_step": []}
    for scope, cfg in (("electra", bert), ("generator", gen)):
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        if h != e:
            names.update({f"{scope}/embeddings_project/kernel": [e, h], f"{scope}/embeddings_project/bias": [h]})
        for n in range(cfg["num_hidden_layers"]):
            p = f"{scope}/encoder/layer_{n}"
            for part in ("query", "key", "value"):
                names.update({f"{p}/attention/self/{part}/kernel": [h, h], f"{p}/attention/self/{part}/bias": [h]})
            names.update({f"{p}/attention/output/dense/kernel": [h, h], f"{p}/attention/output/dense/bias": [h],
                          f"{p}/attention/output/LayerNorm/gamma": [h], f"{p}/attention/output/LayerNorm/beta": [h],
                          f"{p}/intermediate/dense/kernel": [h, i], f"{p}/intermediate/dense/bias": [i],
                          f"{p}/output/dense/kernel": [i, h], f"{p}/output/dense/bias": [h],
                          f"{p}/output/LayerNorm/gamma": [h], f"{p}/output/LayerNorm/beta": [h]})
    return names


def summaries(model_dir, tag):
    values = {}
    for name in os.listdir(model_dir):
        if name.startswith("events.out"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(model_dir, name)):
                for value in event.summary.value:
                    if value.tag == tag:
                        values[event.step] = value.simple_value
    return [values[s] for s in sorted(values)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data):
    model_dir = str(tmp_path_factory.mktemp("trained") / "model")
    config = PretrainingConfig(model_dir, tiny_data, **tiny_hparams(
        num_train_steps=40, iterations_per_loop=5, save_checkpoints_steps=40, seed=0))
    training.train_or_eval(config)
    return config


def test_training_lowers_the_loss_and_logs_summaries(trained):
    losses = summaries(trained.model_dir, "loss/total")
    assert len(losses) >= 6
    assert np.mean(losses[-2:]) < np.mean(losses[:2]) - 1.0
    for tag in ("loss/mlm", "loss/disc", "learning_rate", "accuracy/mlm_accuracy", "accuracy/disc_accuracy",
                "speed/examples_per_sec", "speed/tokens_per_sec", "speed/fill_rate", "speed/model_flops_per_sec"):
        assert summaries(trained.model_dir, tag), tag


def test_checkpoint_names_and_shapes_are_upstream_electras(trained):
    found = dict(tf.train.list_variables(trained.model_dir))
    model_variables = {n: s for n, s in found.items() if not n.endswith(("/adam_m", "/adam_v"))}
    expected = expected_variables(trained)
    assert "generator/embeddings_project/kernel" in expected  # generator hidden 64 != embedding 32
    assert model_variables == expected
    assert tf.train.load_variable(trained.model_dir, "global_step") == 40


def test_model_dir_has_config_and_vocab(trained):
    with open(os.path.join(trained.model_dir, "pretrain_config.json")) as f:
        saved = json.load(f)
    assert saved["bert_config"]["hidden_size"] == 64 and saved["generator_bert_config"]["hidden_size"] == 64
    assert saved["num_train_steps"] == 40 and saved["vocab_size"] == 130
    with open(os.path.join(trained.model_dir, "tokenizer_config.json")) as f:
        assert json.load(f)["tokenizer_type"] == "wordpiece"
    with open(os.path.join(trained.model_dir, "vocab.txt")) as f:
        assert len(f.read().splitlines()) == 130


def test_eval_writes_every_metric(trained):
    config = PretrainingConfig(trained.model_dir, trained.data_dir, **tiny_hparams(
        do_train=False, do_eval=True, num_eval_steps=3, num_train_steps=40))
    results = training.train_or_eval(config)
    with open(os.path.join(trained.model_dir, "results", "unsup_results.txt")) as f:
        written = dict(line.strip().split(" = ") for line in f if line.strip())
    metrics = ["masked_lm_accuracy", "masked_lm_loss", "sampled_masked_lm_accuracy", "disc_loss", "disc_accuracy",
               "disc_precision", "disc_recall", "disc_auc"]
    for name in metrics:
        assert np.isfinite(float(written[name])), name
        assert float(written[name]) == pytest.approx(results[name])
    for name in ("masked_lm_accuracy", "disc_accuracy", "disc_auc"):
        assert 0.0 <= float(written[name]) <= 1.0
    assert int(written["global_step"]) == 40


def test_killed_run_resumes_from_the_last_checkpoint(tmp_path, tiny_data):
    model_dir = str(tmp_path / "model")
    hparams = json.dumps(tiny_hparams(num_train_steps=1000, iterations_per_loop=5, save_checkpoints_steps=10))
    command = [sys.executable, "run_pretraining.py", "--data_dir", tiny_data, "--model_name", model_dir,
               "--hparams", hparams]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (tf.train.latest_checkpoint(model_dir) or "").endswith(("-10", "-20")):
            time.sleep(0.5)
        # The same command started again while the first still trains: refused, naming the first.
        second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"error: model dir {model_dir} is in use by PID {first.pid} (lock {model_dir}/.lock): wait for that "
            "run to end or stop it, or write to another directory"]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    last = tf.train.latest_checkpoint(model_dir)
    assert last and int(last.rsplit("-", 1)[1]) >= 10
    resumed_from = int(last.rsplit("-", 1)[1])
    # The same command again, with the run shortened so the test ends soon after resuming.
    command[-1] = json.dumps(dict(json.loads(hparams), num_train_steps=resumed_from + 10))
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    steps = [int(line.split()[2].split("/")[0]) for line in result.stdout.splitlines() if line.startswith("train step")]
    assert steps and min(steps) > resumed_from
    assert f"resuming from {last} at step {resumed_from} of {resumed_from + 10}" in result.stdout
    assert f"taking over the lock left by PID {first.pid}" in result.stderr  # the killed run's
    assert all(" tokens/s (" in line and " positions/s), " in line and " model GFLOP/s, " in line and " left" in line
               for line in result.stdout.splitlines() if line.startswith("train step"))
    assert tf.train.load_variable(model_dir, "global_step") == resumed_from + 10


def test_mixed_precision_bfloat16_trains_with_float32_checkpoints(tmp_path, tiny_data):
    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, **tiny_hparams(
        num_train_steps=6, iterations_per_loop=3, save_checkpoints_steps=6, mixed_precision=True))
    assert training.precision_mode(config) == "bf16_cpu"
    rewrites = training.session_config("bf16_cpu").graph_options.rewrite_options
    assert rewrites.auto_mixed_precision_onednn_bfloat16 == rewrites.ON
    training.train_or_eval(config)
    reader = tf.train.load_checkpoint(config.model_dir)
    assert reader.get_tensor("global_step") == 6
    for name in expected_variables(config):
        value = reader.get_tensor(name)
        if name != "global_step":
            assert value.dtype == np.float32 and np.isfinite(value).all(), name


def test_tpu_run_config_is_built_from_the_config(tmp_path):
    config = PretrainingConfig(str(tmp_path / "model"), str(tmp_path), use_tpu=True, num_tpu_cores=8,
                               iterations_per_loop=100, save_checkpoints_steps=500, keep_checkpoint_max=2,
                               tpu_name="grpc://10.240.1.2:8470", tpu_zone="europe-west4-a", gcp_project="proj",
                               tpu_job_name="worker", mixed_precision=True)
    assert training.precision_mode(config) == "bf16_tpu"
    run_config = training.run_config(config, "bf16_tpu")
    tpu = run_config.tpu_config
    assert (tpu.iterations_per_loop, tpu.num_shards, tpu.tpu_job_name) == (100, 8, "worker")
    assert tpu.per_host_input_for_training == tf.compat.v1.estimator.tpu.InputPipelineConfig.PER_HOST_V2
    assert run_config.master == "grpc://10.240.1.2:8470"
    assert (run_config.model_dir, run_config.save_checkpoints_steps, run_config.keep_checkpoint_max) == (
        config.model_dir, 500, 2)
    config.vocab_size = 130
    estimator = training.build_estimator(config, "bf16_tpu")
    assert estimator.config.tpu_config.num_shards == 8 and estimator.model_dir == config.model_dir
