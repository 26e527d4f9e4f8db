"""The torch backend's pre-training loop: ``run_pretraining.py --backend torch``.

A flat loop over the same config, checks and logs as the TF backend (pretrain/prepare.py,
step_log.py, monitor.py, guards.py, schedule_check.py): build the model (model.py), upstream's
optimizer and schedule (optim.py), the batches (data.py); each step runs
``gradient_accumulation_steps`` micro-batches, clips the global norm to 1.0 and steps.

- Precision: ``mixed_precision`` is bf16 autocast on CPU and fp16 autocast with a gradient
  scaler on CUDA; weights, optimizer slots and checkpoints stay float32.
- Processes: under torchrun each rank reads its own part of the data (data.py's shard plan),
  DDP averages the gradients (gloo on CPU, NCCL on CUDA), and ``train_batch_size`` stays the
  global batch, split over the ranks and the micro-batches, as the TF backend splits it over
  replicas. Rank 0 alone logs, writes TensorBoard events and checkpoints, and evaluates.
- Checkpoints: every ``save_checkpoints_steps`` and at the end, ``keep_checkpoint_max`` kept,
  each holding what an exact resume needs (checkpoint.py); a rerun continues from the newest.
"""
import contextlib
import os
import random
import sys
import types

import numpy as np
import torch

from pretrain import checkpoint_space, eval_summary, guards, resume_check, schedule_check, warm_start
from pretrain.monitor import CollapseMonitor
from pretrain.prepare import prepare, write_model_dir
from pretrain.step_log import StepLog, log_every, resume_line
from pretrain.torch_backend import checkpoint, metrics
from pretrain.torch_backend.processes import Processes
from util.errors import UserInputError


def precision_mode(config, device):
    """fp32, or mixed: fp16 with a gradient scaler on CUDA, bf16 on CPU (the TF backend's mode names)."""
    if not config.mixed_precision:
        return "fp32"
    return "fp16_gpu" if device.type == "cuda" else "bf16_cpu"


def autocast(mode, device):
    if mode == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if mode == "fp16_gpu" else torch.bfloat16)


def device_line(procs):
    from util.devices import torch_build

    where = (f"GPU {procs.device} ({torch.cuda.get_device_name(procs.device)})" if procs.device.type == "cuda"
             else "CPU, torch sees no GPU")
    ranks = f"{procs.world} processes (torchrun), each on " if procs.world > 1 else ""
    return f"devices: {ranks}{where} ({torch_build()})"


def split_batch(config, procs):
    """Examples per micro-batch on each rank: the global batch over ranks and accumulation steps."""
    parts = procs.world * config.gradient_accumulation_steps
    if config.train_batch_size % parts:
        raise UserInputError(f"{config._source}: train_batch_size {config.train_batch_size} is not divisible by "
                             f"{procs.world} process(es) x gradient_accumulation_steps "
                             f"{config.gradient_accumulation_steps}")
    return config.train_batch_size // parts


def masking_generator(seed, rank, device):
    """The masking and sampling draws' own generator, apart from dropout's global one."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(np.random.SeedSequence([seed, rank, 1]).generate_state(1)[0]))
    return generator


def run_seed(config, procs, resumed):
    """The run's seed: the checkpoint's on resume, else the config's, else drawn (and said)."""
    if resumed is not None:
        return resumed["seed"]
    if config.seed is not None:
        return config.seed
    seed = procs.first(int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF)
    print(f"seed {seed} (drawn: set \"seed\" to repeat the run)", flush=True)
    return seed


def main(config):
    """Everything ``run_pretraining.py --backend torch`` does; returns the eval results or None."""
    procs = Processes()
    if not procs.is_main:  # one log: rank 0's; errors still reach stderr
        sys.stdout = open(os.devnull, "w")
    try:
        from util import dir_lock, disk_space
        from util.files import check_dir_can_be_made

        check_dir_can_be_made(config.model_dir, "model dir")
        print(device_line(procs), flush=True)
        lock = dir_lock.hold(config.model_dir, "model dir") if procs.is_main else contextlib.nullcontext()
        with lock, disk_space.reporting_full_disk(config.model_dir, "model dir",
                                                  kept=lambda: checkpoint_space.clear_failed_save(config.model_dir)):
            return train_or_eval(config, procs)
    finally:
        procs.close()


def train_or_eval(config, procs):
    from pretrain.torch_backend.model import ElectraPretrainer
    from pretrain.torch_backend.optim import build_optimizer, build_scheduler

    say = (lambda line: print(line, flush=True)) if procs.is_main else (lambda line: None)
    if procs.is_main:  # a TF checkpoint converted beside ours: its state file, before prepare reads it
        resume_check.tf_resume(config.model_dir, printer=say)
    procs.barrier()
    tokenizer, files = prepare(config, backend="torch")
    # Every rank loads the same checkpoint, past damaged newer ones (rank 0 names them).
    found = resume_check.torch_resume(config.model_dir, printer=say)
    resumed, latest = (found[0], ("torch", found[1], found[2])) if found else (None, None)
    if not config.do_train and not found and not config.warm_start:
        raise UserInputError(f"do_eval alone: {config.model_dir} has no torch checkpoint to evaluate; train first, "
                             "or give saved_model")
    if procs.is_main:
        write_model_dir(config, tokenizer)
    procs.barrier()  # the other ranks read nothing rank 0 writes, but start together
    mode = precision_mode(config, procs.device)
    print(f"model dir {config.model_dir}; {len(files)} TFRecord file(s); precision {mode}", flush=True)
    if config.warm_start:
        warm_start.report(config.warm_start, config.model_dir, write=procs.is_main and config.do_train)
    if config.do_train:
        resuming = resume_line(config.model_dir, config.num_train_steps, "torch", latest)
        for line in schedule_check.schedule_warnings(config) + [resuming]:
            if line:
                print(line, flush=True)
    seed = run_seed(config, procs, resumed)
    torch.manual_seed(seed)
    model = ElectraPretrainer(config)
    if resumed is None and config.warm_start:
        from pretrain.torch_backend.warm_start import load_into

        load_into(model, config.warm_start)
    model.to(procs.device)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    scaler = torch.amp.GradScaler("cuda") if mode == "fp16_gpu" else None
    step = 0
    if resumed is not None:
        checkpoint.restore(resumed, model, optimizer, scheduler, scaler)
        step = resumed["step"]
        # The rate of the next step from this run's schedule (num_train_steps may have grown since).
        for group, rate, base in zip(optimizer.param_groups, scheduler.lr_lambdas, scheduler.base_lrs):
            group["lr"] = base * rate(scheduler.last_epoch)
    if config.do_train and step < config.num_train_steps:
        train(config, procs, files, model, optimizer, scheduler, scaler, mode, seed, step, resumed)
        step = config.num_train_steps
    results = None
    if config.do_eval and procs.is_main:
        # Evaluation is cheap next to training: rank 0 runs it alone, as the TF backend's chief.
        results = evaluate(config, files, model, mode, procs.device, seed, step)
    return results


@torch.no_grad()
def evaluate(config, files, model, mode, device, seed, step):
    """upstream's unsupervised metrics over num_eval_steps batches, into results/unsup_results.txt."""
    from pretrain.torch_backend.data import PretrainingBatches

    model.eval()
    batches = iter(PretrainingBatches(files, config.eval_batch_size, config.max_seq_length, 0, 1, seed,
                                      is_training=False))
    generator = masking_generator(seed, 0, device)
    evaluation = metrics.Evaluation(config.disc_weight)
    for _ in range(config.num_eval_steps):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        with autocast(mode, device):
            out = model(batch["input_ids"], batch["input_mask"], batch["segment_ids"], generator=generator)
        evaluation.update(out)
    results = eval_summary.with_real_token_spread(dict(evaluation.results(), global_step=step))
    eval_summary.write_results(config.results_txt, results)
    for line in eval_summary.summary_lines(results):
        print(line, flush=True)
    return results


def all_finite(model):
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def save(config, procs, step, model, optimizer, scheduler, scaler, seed, tf_names, rank_state):
    """A checkpoint of this step (rank 0 writes it, every rank's RNG and data position inside)."""
    ranks = procs.gather(rank_state)
    if not procs.is_main:
        return
    guards.check_weights(all_finite(model), step, config.model_dir, config.learning_rate)
    needed = checkpoint_space.OVERHEAD_BYTES + 3 * sum(p.numel() * 4 for p in model.parameters())
    checkpoint_space.check_room(config.model_dir, needed, step)
    checkpoint.save(config.model_dir, step, model, optimizer, scheduler, scaler, seed, tf_names, ranks)
    checkpoint.prune(config.model_dir, config.keep_checkpoint_max)


def step_logger(config, procs):
    """The StepLog and CollapseMonitor (rank 0's), and a TensorBoard writer into the model dir."""
    if not procs.is_main:
        return None, None, None
    try:
        # TensorBoard imports TensorFlow whenever it is installed (11 s here) unless its
        # tensorboard.compat.notf marker module exists; the torch backend needs only the event
        # writer, which TensorBoard's own TF stub provides.
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("TensorBoard events are not written: the tensorboard package is not installed "
              "(pip install tensorboard)", flush=True)
        writer = None
    else:
        writer = SummaryWriter(config.model_dir)
    every = log_every(config)
    monitor = CollapseMonitor(config.num_warmup_steps, config.iterations_per_loop) if config.electra_objective \
        else None
    return StepLog(config, every, writer), monitor, writer


def global_lookup_norms(model, procs, scaler):
    """Make the lookup-only tables' squared gradient norms (model.Embeddings.count_lookup_rows) the
    global batch's, as clipping reads them: unscaled like .grad, and over every rank's rows, each
    scaled by 1/world as DDP's averaged gradient is."""
    for param in model.parameters():
        counted = getattr(param, "tf_lookup_sq_norm", None)
        if counted is None:
            continue
        if scaler is not None:
            counted = counted / scaler.get_scale() ** 2
        param.tf_lookup_sq_norm = procs.mean(counted.reshape(1)).reshape(()) / procs.world


def reported(out):
    """{TensorBoard name: 0-d tensor} of one micro-batch: losses and batch_accuracies, in the TF backend's names."""
    values = {"loss/total": out["total_loss"].detach(), "loss/mlm": out["mlm_loss"].detach()}
    if "disc_loss" in out:
        values["loss/disc"] = out["disc_loss"].detach()
    values.update({f"accuracy/{k}": v for k, v in metrics.batch_accuracies(out).items()})
    return values


def train_step(config, procs, runner, model, optimizer, scheduler, scaler, mode, records, generator, step):
    """Optimizer step ``step`` + 1 over ``gradient_accumulation_steps`` micro-batches drawn from ``records``.

    Returns the reported values (the micro-batches' and ranks' mean), the global batch's real
    tokens and the learning rate the update used. bench/bench_pretraining.py times this function.
    """
    from pretrain.torch_backend.optim import clip_by_global_norm

    device, accum = procs.device, config.gradient_accumulation_steps
    sums, real_tokens = None, 0
    for micro in range(accum):
        batch = {k: v.to(device, non_blocking=True) for k, v in next(records).items()}
        last = micro == accum - 1
        # DDP averages the gradients once per step, on the last micro-batch.
        with runner.no_sync() if procs.world > 1 and not last else contextlib.nullcontext():
            with autocast(mode, device):
                out = runner(batch["input_ids"], batch["input_mask"], batch["segment_ids"], generator=generator)
            loss = out["total_loss"] / accum
            (scaler.scale(loss) if scaler is not None else loss).backward()
        values = reported(out)
        sums = values if sums is None else {k: sums[k] + v for k, v in values.items()}
        real_tokens = real_tokens + batch["input_mask"].sum()
    names = sorted(sums)
    vector = procs.mean(torch.stack([sums[k].float() / accum for k in names] + [real_tokens.float()]))
    numbers = vector.tolist()
    values, real = dict(zip(names, numbers[:-1])), numbers[-1] * procs.world
    if mode != "fp16_gpu":  # fp16's scaler skips an overflowing step itself
        guards.check_loss(values["loss/total"], step + 1, config.model_dir, config.learning_rate)
    if scaler is not None:
        scaler.unscale_(optimizer)
    global_lookup_norms(model, procs, scaler)
    clip_by_global_norm(model.parameters(), 1.0)
    lr = optimizer.param_groups[0]["lr"]
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return values, real, lr


def train(config, procs, files, model, optimizer, scheduler, scaler, mode, seed, step, resumed):
    """Steps ``step`` + 1 .. num_train_steps, with checkpoints, logs and guards."""
    from pretrain.torch_backend.data import PretrainingBatches
    from pretrain.torch_backend.model import tf_variable_names

    device = procs.device
    # On a GPU the next batches are read on a thread while the step runs; on CPU the cores are the step's.
    batches = PretrainingBatches(files, split_batch(config, procs), config.max_seq_length, procs.rank, procs.world,
                                 seed, is_training=True, prefetch_batches=2 if device.type == "cuda" else 0)
    generator = masking_generator(seed, procs.rank, device)
    # Dropout draws from the global generator: its own stream per rank. Python's and numpy's
    # are seeded too, so nothing a later change draws from them is left to chance.
    dropout_seed, python_seed, numpy_seed = np.random.SeedSequence([seed, procs.rank, 2]).generate_state(3)
    torch.manual_seed(int(dropout_seed))
    random.seed(int(python_seed))
    np.random.seed(int(numpy_seed))
    if resumed is not None and resumed["ranks"] and resumed["world_size"] == procs.world:
        own = resumed["ranks"][procs.rank]
        batches.load_state_dict(own["data"])
        checkpoint.set_rng_state(own["rng"], generator)
    elif resumed is not None and not resumed["ranks"]:
        print(f"continuing {resumed.get('converted_from', 'a converted checkpoint')}: the model, Adam slots and "
              "schedule continue; the data order and random draws start afresh (a TF checkpoint holds no torch "
              "RNG states or data position), as the TF backend's own restart does", flush=True)
    elif resumed is not None:
        print(f"the checkpoint was written by {resumed['world_size']} process(es), this run has {procs.world}: the "
              "model, optimizer and schedule continue; the data order and random draws start afresh", flush=True)
    tf_names = tf_variable_names(model)
    runner = torch.compile(model) if config.torch_compile else model
    if procs.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(runner, device_ids=[device] if device.type == "cuda" else None)
    log, monitor, writer = step_logger(config, procs)
    every = log_every(config)
    records = iter(batches)
    model.train()
    try:
        while step < config.num_train_steps:
            values, real, lr = train_step(config, procs, runner, model, optimizer, scheduler, scaler, mode, records,
                                          generator, step)
            step += 1
            if procs.is_main:
                shown = {"loss": values["loss/total"], "mlm_loss": values["loss/mlm"], "lr": lr}
                if "loss/disc" in values:
                    shown.update(disc_loss=values["loss/disc"], disc_auc_real=values["accuracy/disc_auc_real"])
                    if monitor is not None:
                        monitor.update(step, {k: values[f"accuracy/{k}"] for k in CollapseMonitor.KEYS})
                log.update(step, shown, real)
                if writer is not None and (step % every == 0 or step == config.num_train_steps):
                    for name, value in dict(values, learning_rate=lr).items():
                        writer.add_scalar(name, value, step)
                    if scaler is not None:
                        writer.add_scalar("loss_scale", scaler.get_scale(), step)
            if step % config.save_checkpoints_steps == 0 or step == config.num_train_steps:
                save(config, procs, step, model, optimizer, scheduler, scaler, seed, tf_names,
                     {"rng": checkpoint.rng_state(generator), "data": batches.state_dict()})
    finally:  # also on a NaN stop or a full disk: the event file and the shards are closed
        if writer is not None:
            writer.close()
        batches.close()
