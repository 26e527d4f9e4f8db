"""Pre-training over several GPUs or machines with TensorFlow's own strategies.

``distribution: mirrored`` trains one model over the local GPUs with MirroredStrategy;
``multi_worker`` trains over the machines named in ``TF_CONFIG`` with
MultiWorkerMirroredStrategy (collective all-reduce, one process per machine). Both run
the same ``model_fn`` as the TPUEstimator path through ``tf.estimator.Estimator``, so
variables, checkpoints and ``pytorch_convert.py`` are shared by every path. The global
``train_batch_size`` is split over all replicas and each machine reads its own shard of
the TFRecords (pretrain/input_pipeline.py). Only the chief (task ``chief``, else worker 0)
writes checkpoints, summaries and the model dir's files; TensorFlow makes the other
workers run their (collective) save ops into ``MODEL_DIR/tmp_worker_N``, which each
worker removes when it finishes.
"""
import contextlib
import json
import os
import shutil
import socket

import tensorflow.compat.v1 as tf

from pretrain.step_log import log_every
from util.errors import UserInputError


def read_tf_config():
    """TF_CONFIG as a dict, checked: a cluster with chief/worker addresses and this task in it."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UserInputError("distribution multi_worker needs the TF_CONFIG environment variable "
                             "(cluster and task; see docs/scaling.md)")
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UserInputError(f"TF_CONFIG: malformed JSON ({e.msg} at column {e.colno})") from None
    cluster, task = tf_config.get("cluster"), tf_config.get("task")
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise UserInputError("TF_CONFIG: \"cluster\" must list the \"worker\" (and optionally \"chief\") addresses")
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise UserInputError(f"TF_CONFIG: job {job!r} is not used by multi_worker (only chief and worker)")
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise UserInputError(f"TF_CONFIG: cluster.{job} must be a list of \"host:port\" strings")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise UserInputError(f"TF_CONFIG: task.type must be one of {', '.join(cluster)}, got {task!r}")
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise UserInputError(f"TF_CONFIG: task.index {index!r} is outside cluster.{task['type']} "
                             f"({len(cluster[task['type']])} addresses)")
    return tf_config


def is_chief(config):
    """Whether this process writes the checkpoints: always, except a multi_worker non-chief."""
    if config.distribution != "multi_worker":
        return True
    tf_config = read_tf_config()
    task = tf_config["task"]
    return task["type"] == "chief" or (task["type"] == "worker" and task.get("index", 0) == 0
                                       and "chief" not in tf_config["cluster"])


def local_replicas(config):
    """(device names, kind) of this machine's replicas: the GPUs, else ``cpu_replicas`` CPU devices."""
    visible = len(tf.config.list_physical_devices("GPU"))
    wanted = visible if config.num_gpus is None else config.num_gpus
    if wanted > visible:
        raise UserInputError(f"num_gpus {wanted}: only {visible} GPU(s) visible on this machine")
    if wanted:
        return [f"/gpu:{i}" for i in range(wanted)], "GPU"
    return [f"/cpu:{i}" for i in range(config.cpu_replicas)], "CPU"


def split_cpu(num_devices):
    """Make ``num_devices`` logical CPU devices (before TensorFlow initialises its runtime)."""
    if num_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError:  # already initialised (e.g. a second run in one process): keep what is there
        pass


def make_strategy(config):
    """(strategy, number of replicas in sync over the whole cluster)."""
    if config.distribution == "mirrored":
        if os.environ.get("TF_CONFIG"):
            raise UserInputError("TF_CONFIG is set: distribution mirrored is for one machine; use multi_worker "
                                 "or unset TF_CONFIG")
        devices, kind = local_replicas(config)
        cross_device_ops = None  # NCCL all-reduce between GPUs
        if kind == "CPU":
            split_cpu(len(devices))
            # The default for CPUs outside TF1 mode is collective ops, which hang in a session here.
            cross_device_ops = tf.distribute.ReductionToOneDevice()
        return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops), len(devices)
    tf_config = read_tf_config()
    devices, kind = local_replicas(config)
    if kind == "CPU" and len(devices) > 1:
        raise UserInputError("cpu_replicas > 1 is for mirrored only; multi_worker runs one CPU replica per worker")
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(tf_config["cluster"]), task_type=tf_config["task"]["type"],
        task_id=tf_config["task"].get("index", 0), num_accelerators={"GPU": len(devices) if kind == "GPU" else 0},
        rpc_layer="grpc")
    strategy = tf.distribute.experimental.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    num_workers = sum(len(tf_config["cluster"].get(job, [])) for job in ("chief", "worker"))
    return strategy, num_workers * len(devices)


def per_replica_batch_size(config, num_replicas):
    if config.train_batch_size % num_replicas:
        raise UserInputError(f"{config._source}: train_batch_size {config.train_batch_size} is not divisible by "
                             f"the {num_replicas} replicas of distribution {config.distribution}")
    return config.train_batch_size // num_replicas


def loopback_tf_configs(num_workers):
    """TF_CONFIG values for ``num_workers`` multi_worker processes on this machine, one per
    worker, on free loopback ports: how the tests and the benchmark try the path without a
    cluster. The ports are free when chosen; a process that takes one meanwhile fails the run."""
    sockets = [socket.socket() for _ in range(num_workers)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            for index in range(num_workers)]


@contextlib.contextmanager
def without_tf_config():
    """RunConfig reads TF_CONFIG itself; the single-process evaluation must not join the cluster."""
    saved = os.environ.pop("TF_CONFIG", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["TF_CONFIG"] = saved


def build_estimator(config, model_fn, session_config, strategy, batch_size):
    """A tf.estimator.Estimator running ``model_fn`` (which returns TPUEstimatorSpecs) under ``strategy``."""

    def estimator_model_fn(features, labels, mode, params):
        return model_fn(features, labels, mode, params).as_estimator_spec()

    # The V1 Estimator wants V1 strategies in graph mode; both strategy classes have one.
    run_config = tf.estimator.RunConfig(
        model_dir=config.model_dir, save_checkpoints_steps=config.save_checkpoints_steps,
        keep_checkpoint_max=config.keep_checkpoint_max or None, save_summary_steps=log_every(config),
        log_step_count_steps=None, session_config=session_config, train_distribute=strategy,
        tf_random_seed=config.seed)
    return tf.estimator.Estimator(estimator_model_fn, config=run_config, params={"batch_size": batch_size})


def train(config, estimator, input_fn, hooks=(), saving_listeners=()):
    """Train to num_train_steps: Estimator.train for mirrored; for multi_worker the Estimator's
    only multi-worker entry point, train_and_evaluate (with no evaluator task it only trains,
    and takes no saving listeners)."""
    if config.distribution == "mirrored":
        estimator.train(input_fn, max_steps=config.num_train_steps, hooks=list(hooks),
                        saving_listeners=list(saving_listeners))
        return
    train_spec = tf.estimator.TrainSpec(input_fn, max_steps=config.num_train_steps, hooks=list(hooks))
    eval_spec = tf.estimator.EvalSpec(input_fn, steps=1)
    try:
        tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
    finally:
        if not is_chief(config):
            task = read_tf_config()["task"]
            shutil.rmtree(os.path.join(config.model_dir, f"tmp_{task['type']}_{task.get('index', 0)}"),
                          ignore_errors=True)
