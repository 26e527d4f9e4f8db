"""Distributed pre-training (pretrain/distribution.py) on a 2-core CPU machine.

MirroredStrategy over two logical CPU devices must train exactly what one device trains on
the same global batch; MultiWorkerMirroredStrategy with two local worker processes on
loopback ports must train, leave one checkpoint set, and have each worker read its own
shard. Both runs go through run_pretraining.py in subprocesses (logical devices and
collective ops are per-process state).

Randomness: masking and the generator's sampling draw from stateful random ops, whose
numbers depend on how the batch is split. The runs here swap in noise that is a pure
function of each example (masking.uniform_noise's row keys), read the records in file
order and switch dropout off, so the comparison isolates what distribution changes: the
split batch, the gradient all-reduce and the mirrored updates.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pretrain import distribution, input_pipeline

from .conftest import ROOT, tiny_hparams, write_tfrecords, write_vocab

DRIVER = """
import sys
import tensorflow.compat.v1 as tf
from model import masking

def content_noise(shape, row_keys, seed=None):
    rest = tf.reshape(tf.range(tf.reduce_prod(shape[1:])), [1] + list(shape[1:]))
    keys = tf.reshape(row_keys, [-1] + [1] * (len(shape) - 1))
    x = tf.sin(tf.cast(keys, tf.float64) * 12.9898 + tf.cast(rest, tf.float64) * 78.233) * 43758.5453
    return tf.cast(x - tf.floor(x), tf.float32)

masking.uniform_noise = content_noise

# Batches in file order, so the global batch is the same examples however it is split.
from pretrain import input_pipeline
shuffled = input_pipeline.input_fn_builder
input_pipeline.input_fn_builder = lambda files, length, is_training, **kw: shuffled(files, length, False, **kw)
import run_pretraining
from util.errors import run_cli
run_cli(lambda: run_pretraining.main(sys.argv[1:]))
"""

STEPS = 4


def full_length_examples(num_examples, max_seq_length, vocab_size, seed=0):
    """Every example fills the sequence ([CLS] a [SEP] b [SEP], no padding), so every replica's
    batch has the same number of masked and real tokens and the mean of the replicas' mean
    losses is the global batch's mean loss."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(num_examples):
        body = list(rng.integers(10, vocab_size, size=max_seq_length - 3))
        split = len(body) // 2
        ids = [2] + body[:split] + [3] + body[split:] + [3]
        segments = [0] * (split + 2) + [1] * (len(ids) - split - 2)
        rows.append((ids, [1] * max_seq_length, segments))
    return rows


@pytest.fixture(scope="module")
def full_data(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("full_length"))
    _, vocab_size = write_vocab(directory)
    write_tfrecords(directory, full_length_examples(64, 32, vocab_size), num_files=2)
    return directory


def hparams(**overrides):
    values = tiny_hparams(max_seq_length=32, train_batch_size=8, num_train_steps=STEPS, num_warmup_steps=2,
                          iterations_per_loop=1, save_checkpoints_steps=STEPS, do_eval=False, seed=1,
                          model_hparam_overrides={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                                                  "max_position_embeddings": 32})
    values.update(overrides)
    return values


def pretrain(data_dir, model_dir, env=None, **overrides):
    command = [sys.executable, "-c", DRIVER, "--data_dir", data_dir, "--model_name", model_dir,
               "--hparams", json.dumps(hparams(**overrides))]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="", **(env or {})))


def finish(process, timeout=300):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"training did not finish in {timeout} s:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]
    return output


def losses(model_dir):
    values = {}
    for name in os.listdir(model_dir):
        if name.startswith("events.out"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(model_dir, name)):
                for value in event.summary.value:
                    if value.tag == "loss/total":
                        values[event.step] = value.simple_value
    return [values[s] for s in sorted(values)]


def variables(model_dir):
    reader = tf.train.load_checkpoint(model_dir)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_mirrored_over_two_cpu_devices_trains_what_one_device_trains(full_data, tmp_path):
    single = str(tmp_path / "single")
    mirrored = str(tmp_path / "mirrored")
    # Sequential: the two cores are all CI has.
    single_output = finish(pretrain(full_data, single))
    output = finish(pretrain(full_data, mirrored, distribution="mirrored", cpu_replicas=2))
    assert "distribution mirrored: 2 replica(s) in sync, 4 examples each" in output
    # The step log's real tokens are the global batch's, summed over the replicas: the same fill rate.
    fill = [[m for m in re.findall(r" tokens/s \((\d+)% of \d+ positions/s\)", text)]
            for text in (single_output, output)]
    assert fill[0] and fill[0] == fill[1]

    single_losses, mirrored_losses = losses(single), losses(mirrored)
    assert len(single_losses) == STEPS and len(mirrored_losses) == STEPS
    np.testing.assert_allclose(mirrored_losses, single_losses, rtol=1e-4)
    assert single_losses[-1] != single_losses[0]  # it trained

    a, b = variables(single), variables(mirrored)
    assert sorted(a) == sorted(b)  # same names: checkpoints move between the paths
    assert int(b["global_step"]) == STEPS
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-3, atol=1e-5, err_msg=name)
    # Both started from the same initial weights and moved away from them.
    name = "discriminator_predictions/dense/kernel"
    start = tf.train.load_checkpoint(os.path.join(single, "model.ckpt-0")).get_tensor(name)
    np.testing.assert_array_equal(tf.train.load_checkpoint(os.path.join(mirrored, "model.ckpt-0")).get_tensor(name),
                                  start)
    assert np.abs(a[name] - start).max() > 1e-4


def test_multi_worker_two_local_processes_train_one_checkpoint_set_from_disjoint_shards(full_data, tmp_path):
    model_dir = str(tmp_path / "multi")
    processes = []
    try:
        for tf_config in distribution.loopback_tf_configs(2):
            processes.append(pretrain(full_data, model_dir, env={"TF_CONFIG": tf_config},
                                      distribution="multi_worker", mixed_precision=True, do_eval=True,
                                      num_eval_steps=2))
        outputs = [finish(p) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()

    shards = []
    for output in outputs:
        assert "distribution multi_worker: 2 replica(s) in sync, 4 examples each" in output
        assert "precision bf16_cpu" in output  # --mixed_precision rides along on this path too
        line = next(l for l in output.splitlines() if l.startswith("input pipeline "))
        shards.append(set(line.rsplit(": ", 1)[1].split(",")))
    # The workers trained one model: every step's loss (averaged over both) is the same on both.
    steps = [[l for l in output.splitlines() if l.startswith("train step ")] for output in outputs]
    assert len(steps[0]) >= STEPS - 1
    assert [l.split(", ", 1)[0] for l in steps[0]] == [l.split(", ", 1)[0] for l in steps[1]]  # speeds differ
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert shards[0] | shards[1] == {os.path.basename(f) for f in input_pipeline.find_tfrecords(full_data)}

    # One checkpoint set, written by the chief (worker 0); the other worker's scratch copy is gone.
    assert tf.train.latest_checkpoint(model_dir).endswith(f"model.ckpt-{STEPS}")
    assert not [n for n in os.listdir(model_dir) if n.startswith("tmp_")]
    assert len(losses(model_dir)) == STEPS
    # Only the chief evaluated.
    assert "masked_lm_accuracy" in outputs[0] and "masked_lm_accuracy" not in outputs[1]
    assert os.path.exists(os.path.join(model_dir, "results", "unsup_results.txt"))


# Configuration: checked before any graph or server exists.

def config_for(data_dir="d", **overrides):
    from configure_pretraining import PretrainingConfig

    return PretrainingConfig("m", data_dir, **tiny_hparams(**overrides))


@pytest.mark.parametrize("overrides, message", [
    ({"distribution": "horovod"}, "distribution 'horovod' is not one of none, mirrored, multi_worker"),
    ({"distribution": "mirrored", "use_tpu": True}, "a TPU .* spreads over its num_tpu_cores by itself"),
    ({"num_gpus": -1}, "num_gpus must be >= 0"),
])
def test_bad_distribution_settings_are_one_line(overrides, message):
    from util.errors import UserInputError

    with pytest.raises(UserInputError, match=message):
        config_for(**overrides).validate()


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "TF_CONFIG: malformed JSON"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "must list the \"worker\""),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker"}}', "job 'ps' is not used"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "task.index 2 is outside"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator"}}', "task.type must be one of worker"),
])
def test_bad_tf_config_is_one_line(monkeypatch, tf_config, message):
    from pretrain import distribution
    from util.errors import UserInputError

    monkeypatch.delenv("TF_CONFIG", raising=False)
    if tf_config is not None:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UserInputError, match=message):
        distribution.read_tf_config()


@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, True),
    ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, False),
    ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
    ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
])
def test_the_chief_is_task_chief_else_worker_0(monkeypatch, cluster, task, chief):
    from pretrain import distribution

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert distribution.is_chief(config_for(distribution="multi_worker")) is chief
    assert distribution.is_chief(config_for()) is True  # without multi_worker TF_CONFIG is not consulted


def test_global_batch_must_split_evenly_over_replicas():
    from pretrain import distribution
    from util.errors import UserInputError

    assert distribution.per_replica_batch_size(config_for(train_batch_size=16, distribution="mirrored"), 4) == 4
    with pytest.raises(UserInputError, match="train_batch_size 16 is not divisible by the 3 replicas"):
        distribution.per_replica_batch_size(config_for(train_batch_size=16, distribution="mirrored"), 3)


def test_more_gpus_than_visible_is_refused():
    from pretrain import distribution
    from util.errors import UserInputError

    with pytest.raises(UserInputError, match="num_gpus 2: only 0 GPU"):
        distribution.local_replicas(config_for(distribution="mirrored", num_gpus=2))


def test_tpu_pod_slice_is_configuration_only():
    from pretrain import training

    config = config_for(use_tpu=True, num_tpu_cores=32, train_batch_size=256)
    config.validate()
    run_config = training.run_config(config)
    assert run_config.tpu_config.num_shards == 32
    assert run_config.tpu_config.per_host_input_for_training == tf.compat.v1.estimator.tpu.InputPipelineConfig.PER_HOST_V2


# Input sharding: what each worker actually reads.

def read_pipeline(files, num_pipelines, pipeline_id, num_examples):
    context = tf.distribute.InputContext(num_input_pipelines=num_pipelines, input_pipeline_id=pipeline_id,
                                         num_replicas_in_sync=num_pipelines)
    dataset = input_pipeline.input_fn_builder(files, 32, False)({"batch_size": 1}, input_context=context)
    return [tuple(batch["input_ids"].numpy()[0]) for batch in dataset.take(num_examples)]


@pytest.mark.parametrize("num_files", [1, 2])
def test_workers_read_disjoint_shards_that_cover_the_data(tmp_path, num_files):
    _, vocab_size = write_vocab(str(tmp_path))
    rows = full_length_examples(24, 32, vocab_size, seed=3)
    files = write_tfrecords(str(tmp_path), rows, num_files=num_files)
    everything = {tuple(ids) for ids, _, _ in rows}
    shards = [read_pipeline(files, 2, i, 12) for i in range(2)]
    assert all(len(set(shard)) == 12 for shard in shards)  # one epoch of the shard, no repeats
    assert not set(shards[0]) & set(shards[1])
    assert set(shards[0]) | set(shards[1]) == everything
