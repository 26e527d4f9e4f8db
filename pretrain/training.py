"""Pre-training and evaluation under TPUEstimator (``use_tpu=False`` on CPU/GPU).

Everything the user can get wrong is checked in ``prepare`` (pretrain/prepare.py, shared with
the torch backend) before a graph is built; the model directory then gets
``pretrain_config.json`` and a copy of the vocab so it converts on another machine. The
Estimator resumes from the newest checkpoint in the model dir, so rerunning a killed command
continues the step count (its input pipeline starts over: docs/pretraining.md). ``saved_model`` warm-starts the first
run from another checkpoint (pretrain/warm_start.py).
"""
import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from model import optimization
from model.electra_model import PretrainingModel
from pretrain import (damage_check, distribution, eval_summary, input_pipeline, resume_check, schedule_check,
                      warm_start)
from pretrain.eval_summary import with_real_token_spread, write_results
from pretrain.prepare import CONFIG_NAME, prepare, resolve_vocab, write_model_dir  # noqa: F401 (both backends')
from pretrain.step_log import log_every, resume_line
from pretrain.tf_backend.hooks import CollapseMonitorHook, StepLogHook, train_kwargs


def precision_mode(config):
    """Which kind of mixed precision this run gets: none, fp16 (GPU), bf16 (TPU or CPU)."""
    if not config.mixed_precision:
        return "fp32"
    if config.use_tpu:
        return "bf16_tpu"
    if tf.config.list_physical_devices("GPU"):
        return "fp16_gpu"
    return "bf16_cpu"


def session_config(mode):
    """Grappler does the float16 (GPU) and oneDNN bfloat16 (CPU) rewrites of the whole graph."""
    proto = tf.ConfigProto(allow_soft_placement=True)
    proto.gpu_options.allow_growth = True
    rewrites = proto.graph_options.rewrite_options
    if mode == "fp16_gpu":
        rewrites.auto_mixed_precision = rewriter_config_pb2.RewriterConfig.ON
    elif mode == "bf16_cpu":
        rewrites.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    return proto


def run_config(config, mode="fp32"):
    """The TPUEstimator RunConfig; with use_tpu it points at the Cloud TPU named in the config."""
    cluster = None
    if config.use_tpu and config.tpu_name:
        cluster = tf.distribute.cluster_resolver.TPUClusterResolver(
            config.tpu_name, zone=config.tpu_zone, project=config.gcp_project)
    tpu_config = tf.estimator.tpu.TPUConfig(
        iterations_per_loop=config.iterations_per_loop, num_shards=config.num_tpu_cores,
        tpu_job_name=config.tpu_job_name,
        per_host_input_for_training=tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2)
    return tf.estimator.tpu.RunConfig(
        cluster=cluster, model_dir=config.model_dir, save_checkpoints_steps=config.save_checkpoints_steps,
        keep_checkpoint_max=config.keep_checkpoint_max or None, save_summary_steps=log_every(config),
        log_step_count_steps=None, session_config=session_config(mode), tpu_config=tpu_config,
        tf_random_seed=config.seed)


def first_replica():
    """Whether this code builds the first replica (always true without a strategy)."""
    if not optimization.in_replica_context():
        return True
    return tf.get_static_value(tf.distribute.get_replica_context().replica_id_in_sync_group) == 0


def model_fn_builder(config, mode_name="fp32"):
    compute_dtype = tf.bfloat16 if mode_name == "bf16_tpu" else tf.float32

    def model_fn(features, labels, mode, params):
        model = PretrainingModel(config, features, mode == tf.estimator.ModeKeys.TRAIN, compute_dtype)
        loss = model.total_loss
        # The warm start goes through the scaffold so it runs under use_tpu too. The Estimator uses it
        # only when the model dir has no checkpoint to restore: the first training run, or evaluation
        # alone of a saved_model, where the initializers it sets up load the checkpoint.
        scaffold_fn = config.warm_start.scaffold_fn if config.warm_start else None
        if mode == tf.estimator.ModeKeys.TRAIN:
            report = {}
            if not config.use_tpu:  # summaries from model_fn are host-side only
                report = {"loss/total": loss, "loss/mlm": model.mlm_loss,
                          **{f"accuracy/{k}": v for k, v in model.accuracies().items()}}
                if model.disc_output is not None:
                    report["loss/disc"] = model.disc_output.loss
                # The step log's tokens/s and fill rate: positions that are not padding.
                report["real_tokens"] = tf.reduce_sum(tf.cast(features["input_mask"], tf.float32))
            train_op, lr, loss_scale, report = optimization.create_train_op(
                loss, config.learning_rate, config.num_train_steps, config.weight_decay_rate,
                config.num_warmup_steps, config.lr_decay_power,
                num_shards=config.num_tpu_cores if config.use_tpu else 1,
                loss_scaling=mode_name == "fp16_gpu", report=report)
            logged = {"loss": loss}
            if not config.use_tpu:
                # Under a strategy the report is the global batch's (averaged over replicas);
                # the first replica alone writes it. The real tokens are summed over the replicas.
                real_tokens = report.pop("real_tokens") * tf.distribute.get_strategy().num_replicas_in_sync
                scalars = dict(report, learning_rate=lr)
                if loss_scale is not None:
                    scalars["loss_scale"] = loss_scale
                if first_replica():
                    for name, value in scalars.items():
                        tf.summary.scalar(name, value)
                logged.update(loss=report["loss/total"], mlm_loss=report["loss/mlm"], lr=lr, real_tokens=real_tokens)
                if "loss/disc" in report:
                    logged["disc_loss"] = report["loss/disc"]
                    logged["disc_auc_real"] = report["accuracy/disc_auc_real"]
            hooks = [StepLogHook(logged, config, log_every(config),
                                 config.model_dir if not config.use_tpu and first_replica() else None)]
            if "loss/disc" in report:
                real = {k.split("/", 1)[1]: v for k, v in report.items() if k.endswith("_real")}
                hooks.append(CollapseMonitorHook(real, config.num_warmup_steps, config.iterations_per_loop))
            return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=loss, train_op=train_op,
                                                     training_hooks=hooks, scaffold_fn=scaffold_fn)
        if mode == tf.estimator.ModeKeys.EVAL:
            return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=loss, eval_metrics=model.eval_metrics(),
                                                     scaffold_fn=scaffold_fn)
        raise ValueError("only TRAIN and EVAL are supported")

    return model_fn


def build_estimator(config, mode="fp32"):
    return tf.estimator.tpu.TPUEstimator(
        use_tpu=config.use_tpu, model_fn=model_fn_builder(config, mode), config=run_config(config, mode),
        train_batch_size=config.train_batch_size, eval_batch_size=config.eval_batch_size)


def train_distributed(config, files, mode, guarded):
    """Training under distribution mirrored or multi_worker (pretrain/distribution.py)."""
    strategy, num_replicas = distribution.make_strategy(config)
    batch_size = distribution.per_replica_batch_size(config, num_replicas)
    print(f"distribution {config.distribution}: {num_replicas} replica(s) in sync, {batch_size} examples "
          f"each per step (global batch {config.train_batch_size})", flush=True)
    proto = session_config(mode)
    devices, kind = distribution.local_replicas(config)
    if kind == "CPU":  # graph-mode sessions count their own devices
        proto.device_count["CPU"] = len(devices)
    estimator = distribution.build_estimator(config, model_fn_builder(config, mode), proto, strategy, batch_size)
    distribution.train(config, estimator, input_pipeline.input_fn_builder(files, config.max_seq_length, True),
                       **guarded)


def train_or_eval(config):
    """Train and/or evaluate as the config says; returns the eval results (or None)."""
    chief = distribution.is_chief(config)
    if chief:  # before anything reads a step: past damaged checkpoints to the newest intact one
        resume_check.tf_resume(config.model_dir, printer=lambda line: print(line, flush=True))
    tokenizer, files = prepare(config)
    if chief:
        write_model_dir(config, tokenizer)
    mode = precision_mode(config)
    print(f"model dir {config.model_dir}; {len(files)} TFRecord file(s); precision {mode}", flush=True)
    if config.warm_start:
        warm_start.report(config.warm_start, config.model_dir, write=chief and config.do_train)
    if config.do_train:
        resuming = resume_line(config.model_dir, config.num_train_steps, "tf")
        for line in schedule_check.schedule_warnings(config) + [resuming]:
            if line:
                print(line, flush=True)
    guarded = train_kwargs(config, mode)  # stop at a NaN/Inf loss, never checkpoint one
    with damage_check.naming_damaged_files(files, config.max_seq_length, config.model_dir):
        if config.do_train and config.distribution != "none":
            train_distributed(config, files, mode, guarded)
        elif config.do_train:
            build_estimator(config, mode).train(input_pipeline.input_fn_builder(files, config.max_seq_length, True),
                                                max_steps=config.num_train_steps, **guarded)
    if config.do_eval and chief:
        # Evaluation is cheap next to training: the chief runs it alone, outside the cluster.
        with distribution.without_tf_config():
            estimator = build_estimator(config, mode)
        results = estimator.evaluate(input_pipeline.input_fn_builder(files, config.max_seq_length, False),
                                     steps=config.num_eval_steps)
        results = with_real_token_spread({k: (v.item() if hasattr(v, "item") else v) for k, v in results.items()})
        write_results(config.results_txt, results)
        for line in eval_summary.summary_lines(results):
            print(line, flush=True)
        return results
    return None
