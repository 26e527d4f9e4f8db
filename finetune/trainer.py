"""The fine-tuning loop every task shares, and ``run(config)`` that wires a whole run together.

The loop is Dialog-KoELECTRA's: AdamW without decay on biases and LayerNorm weights, linear
warmup over ``warmup_proportion`` of the steps then linear decay, gradient accumulation and
clipping, an evaluation every ``logging_steps`` optimizer steps (``save_steps`` when
``logging_steps`` is 0, and always once at the end). Each evaluation of the selection split
(dev, or test when there is no dev file) is reported to NNI and, when it improves the task's
``primary_metric``, becomes the best checkpoint. Batches are padded per batch and grouped
by length (finetune/data.py); ``bf16: true`` trains under bfloat16 autocast, on CPU too.
Under torchrun the same loop trains a DistributedDataParallel replica per process on its
share of each global batch, evaluates a share of each split and gathers the outputs to
rank 0 (finetune/distributed.py); only rank 0 writes files, logs progress and talks to NNI.
"""
import contextlib
import dataclasses
import inspect
import logging
import math
import os
import random
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from finetune import data, distributed
from finetune.models import load_tokenizer, reinit_top_layer, resolve_model_dir
from finetune.nni_glue import NniReporter, in_experiment, trial_ids
from finetune.outputs import RunOutputs
from util.errors import UserInputError

logger = logging.getLogger(__name__)

SEQUENCE_KINDS = ("token_classification", "span_extraction")


@dataclasses.dataclass
class Split:
    name: str
    path: str
    examples: list
    features: list


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_split(task, tokenizer, config, name, path):
    examples = task.read_examples(path, name)
    features = task.build_features(examples, tokenizer, config.max_seq_len, name)
    logger.info("%s: %d examples, %d features from %s", name, len(examples), len(features), path)
    return Split(name, path, examples, features)


def make_optimizer(model, config):
    """AdamW; biases and LayerNorm weights get no weight decay."""
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names

    decayed = {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS)
               if "bias" not in n and "LayerNorm" not in n and "layer_norm" not in n}
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if n in decayed], "weight_decay": config.weight_decay},
        {"params": [p for n, p in params if n not in decayed], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, eps=config.adam_epsilon)


def autocast(config, device):
    if config.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if config.fp16:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class Trainer:
    def __init__(self, config, task, model, tokenizer, splits, outputs, reporter, device, context=None):
        self.config, self.task, self.model, self.tokenizer = config, task, model, tokenizer
        self.splits, self.outputs, self.reporter, self.device = splits, outputs, reporter, device
        self.context = context or distributed.Context()
        # ``model`` is what is evaluated and saved; ``train_model`` (DDP's wrapper of the same
        # modules under torchrun) is what trains, so gradients are averaged over the ranks.
        self.train_model = distributed.wrap_model(model, self.context, device)
        accepted = inspect.signature(model.forward).parameters
        self.model_inputs = {k for k in accepted if k != "kwargs"}
        self.selection = "dev" if "dev" in splits else ("test" if "test" in splits else None)
        self.best_score = None
        self.best_step = None
        self.best_state = None
        self.last_eval_step = None

    def _inputs(self, batch):
        return {k: v.to(self.device) for k, v in batch.items() if k in self.model_inputs}

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, split):
        """Metrics, predictions and mean loss of the current model on one split."""
        model, config = self.model, self.config
        context = self.context
        model.eval()
        loader, batches = data.eval_loader(split.features, config.eval_batch_size, self.tokenizer.pad_token_id,
                                           config.num_workers, context.world_size, context.rank)
        chunks, loss_sum, has_loss = {}, 0.0, False
        with torch.no_grad(), autocast(config, self.device):
            for batch, indices in zip(loader, batches):
                result = model(**self._inputs(batch))
                if getattr(result, "loss", None) is not None:
                    loss_sum += float(result.loss) * len(indices)
                    has_loss = True
                for key, value in result.items():
                    if key != "loss" and torch.is_tensor(value):
                        chunks.setdefault(key, []).append((indices, value.float().cpu().numpy()))
        if context.distributed:
            chunks, loss_sum, has_loss = _gather_outputs((chunks, loss_sum, has_loss), len(split.features), context)
        metrics = predictions = loss = None
        if context.is_main:
            outputs = {k: _assemble(v, len(split.features), self.task.kind in SEQUENCE_KINDS)
                       for k, v in chunks.items()}
            predictions = self.task.postprocess(outputs, split.features, split.examples)
            metrics = self.task.compute_metrics(predictions, split.examples)
            loss = loss_sum / len(split.features) if has_loss else None
        # Every rank takes the same best-checkpoint decision from rank 0's metrics.
        metrics, loss = distributed.broadcast_object((metrics, loss), context)
        return metrics, predictions, loss

    def evaluate_during_training(self, step, epoch):
        config, outputs = self.config, self.outputs
        metrics, _, loss = self.evaluate(self.splits[self.selection])
        outputs.add_evaluation(step, epoch, self.selection, metrics, loss)
        score = metrics[self.task.primary_metric]
        self.reporter.intermediate(score)
        message = f"step {step}: {self.selection} " + " ".join(f"{k}={v:.2f}" for k, v in metrics.items())
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_step = score, step
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            outputs.set_best(step, self.selection, score, metrics)
            if not config.do_nni:
                outputs.save_best_model(self.model, self.tokenizer, config.as_dict(),
                                        {"step": step, "split": self.selection, "metrics": metrics},
                                        *(self._optimizer_state() if config.save_optimizer else ()))
            message += " (best)"
        also_test = config.evaluate_test_during_training or config.eval_all_checkpoints
        if also_test and self.selection != "test" and "test" in self.splits:
            test_metrics, _, test_loss = self.evaluate(self.splits["test"])
            outputs.add_evaluation(step, epoch, "test", test_metrics, test_loss)
            message += " | test " + " ".join(f"{k}={v:.2f}" for k, v in test_metrics.items())
        if self.context.is_main:
            tqdm.write(message)
        self.last_eval_step = step
        self.model.train()

    def _optimizer_state(self):
        return self.optimizer, self.scheduler

    # -- training --------------------------------------------------------------------------

    def train(self):
        from transformers import get_linear_schedule_with_warmup

        config, model, context = self.config, self.model, self.context
        features = self.splits["train"].features
        accumulation = config.gradient_accumulation_steps
        # train_batch_size is per process: each rank runs one batch of each global batch.
        batches_per_epoch = math.ceil(len(features) / (config.train_batch_size * context.world_size))
        steps_per_epoch = math.ceil(batches_per_epoch / accumulation)
        if config.max_steps > 0:
            total_steps = config.max_steps
            epochs = math.ceil(total_steps / steps_per_epoch)
        else:
            total_steps = max(1, int(steps_per_epoch * config.num_train_epochs))
            epochs = math.ceil(config.num_train_epochs)
        self.optimizer = make_optimizer(model, config)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(total_steps * config.warmup_proportion), total_steps)
        scaler = torch.amp.GradScaler("cuda") if config.fp16 else None
        interval = config.logging_steps if config.logging_steps > 0 else config.save_steps
        logger.info("training: %d examples, %d epochs, %d optimizer steps, batch %d x %d accumulation",
                    len(features), epochs, total_steps, config.train_batch_size, accumulation)
        if context.distributed:
            logger.info("%d processes: global batch %d = %d per process x %d processes x %d accumulation",
                        context.world_size, config.train_batch_size * context.world_size * accumulation,
                        config.train_batch_size, context.world_size, accumulation)

        step, running_loss, running_count, examples_seen = 0, 0.0, 0, 0
        self.outputs.writer  # opened before the clock starts: importing TensorBoard takes seconds
        started = time.perf_counter()
        eval_seconds = 0.0
        model.train()
        model.zero_grad(set_to_none=True)
        progress = tqdm(total=total_steps, desc=f"fine-tuning {config.task}", unit="step", dynamic_ncols=True,
                        mininterval=1.0, disable=not context.is_main)
        for epoch in range(epochs):
            loader = data.train_loader(features, config.train_batch_size, self.tokenizer.pad_token_id,
                                       config.seed, epoch, config.group_by_length, config.num_workers,
                                       context.world_size, context.rank)
            for i, batch in enumerate(loader):
                at_step = (i + 1) % accumulation == 0 or i + 1 == len(loader)
                # DDP all-reduces in backward; between optimizer steps there is nothing to average yet.
                no_sync = context.distributed and not at_step
                with self.train_model.no_sync() if no_sync else contextlib.nullcontext():
                    with autocast(config, self.device):
                        loss = self.train_model(**self._inputs(batch)).loss
                    running_loss += loss.item()
                    running_count += 1
                    examples_seen += len(batch["input_ids"])
                    loss = loss / accumulation
                    (scaler.scale(loss) if scaler else loss).backward()
                if not at_step:
                    continue
                if scaler:
                    scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                if scaler:
                    scaler.step(self.optimizer)
                    scaler.update()
                else:
                    self.optimizer.step()
                self.scheduler.step()
                model.zero_grad(set_to_none=True)
                step += 1
                progress.update(1)
                if context.distributed:  # log the global batch's loss, as one process would
                    running_loss = distributed.sum_over_ranks(running_loss, context, self.device) / context.world_size
                self.outputs.log_scalars("train", {"loss": running_loss / running_count,
                                                   "learning_rate": self.scheduler.get_last_lr()[0]}, step)
                progress.set_postfix(loss=f"{running_loss / running_count:.4f}")
                running_loss, running_count = 0.0, 0
                if self.selection and interval > 0 and step % interval == 0:
                    eval_started = time.perf_counter()
                    self.evaluate_during_training(step, epoch + (i + 1) / len(loader))
                    eval_seconds += time.perf_counter() - eval_started
                if step >= total_steps:
                    break
            if step >= total_steps:
                break
        progress.close()
        # Training throughput, without the evaluations in between and the checkpoint saves they trigger.
        seconds = time.perf_counter() - started - eval_seconds
        examples_seen = int(distributed.sum_over_ranks(examples_seen, context, self.device))
        self.outputs.results["train"] = {"steps": step, "examples": examples_seen, "seconds": round(seconds, 3),
                                         "examples_per_second": round(examples_seen / seconds, 2)}
        if context.distributed:
            self.outputs.results["train"]["processes"] = context.world_size
        self.outputs.save_results()
        if self.selection and self.last_eval_step != step:
            self.evaluate_during_training(step, float(epochs))
        if self.selection is None:  # nothing to select on: the last model is the one kept
            self.best_step = step
            if not config.do_nni:
                self.outputs.save_best_model(model, self.tokenizer, config.as_dict(), {"step": step})
        if self.best_score is not None:
            self.reporter.final(self.best_score)
        return step

    def final_evaluation(self):
        """The best model on every evaluation split, with its predictions written out."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        for name in ("dev", "test"):
            if name not in self.splits:
                continue
            split = self.splits[name]
            metrics, predictions, loss = self.evaluate(split)
            record = self.outputs.add_evaluation(self.best_step or 0, 0.0, name, metrics, loss)
            record["final"] = True
            self.outputs.save_results()
            if not self.context.is_main:
                continue
            path = self.outputs.write_predictions(name, self.task.prediction_records(predictions, split.examples))
            tqdm.write(f"final {name}: " + " ".join(f"{k}={v:.2f}" for k, v in metrics.items()) + f" -> {path}")


def _gather_outputs(local, count, context):
    """Every rank's (chunks, loss_sum, has_loss) merged on rank 0; (None, 0.0, False) elsewhere.

    The chunks keep their feature indices, so _assemble puts them in feature order; the
    shares are disjoint, and this checks that together they cover each feature exactly once.
    """
    gathered = distributed.gather_to_main(local, context)
    if not context.is_main:
        return None, 0.0, False
    chunks, loss_sum, has_loss = {}, 0.0, False
    for rank_chunks, rank_loss, rank_has_loss in gathered:
        for key, value in rank_chunks.items():
            chunks.setdefault(key, []).extend(value)
        loss_sum += rank_loss
        has_loss = has_loss or rank_has_loss
    covered = sorted(i for indices, _ in next(iter(chunks.values()), []) for i in indices)
    if covered != list(range(count)):
        raise RuntimeError(f"gathered evaluation covers {len(covered)} feature slots for {count} features")
    return chunks, loss_sum, has_loss


def _assemble(chunks, count, has_sequence_axis):
    """Batch outputs back in feature order; sequence outputs zero-padded to a common length."""
    first = chunks[0][1]
    if has_sequence_axis and first.ndim >= 2:
        width = max(a.shape[1] for _, a in chunks)
        out = np.zeros((count, width) + first.shape[2:], dtype=np.float32)
        for indices, array in chunks:
            out[indices, : array.shape[1]] = array
    else:
        out = np.zeros((count,) + first.shape[1:], dtype=np.float32)
        for indices, array in chunks:
            out[indices] = array
    return out


def output_dir_for(config):
    base = os.path.join(config.ckpt_dir, config.task)
    if config.do_nni and in_experiment():
        experiment, trial = trial_ids()
        return os.path.join(base, "nni", experiment, trial)
    return base


def run(config, context=None):
    """One fine-tuning run as the config says; returns the results dict written to results.json.

    ``context``: this process's place in a torchrun job (default: the initialised process group's,
    or a single process).
    """
    from finetune.tasks import get_task

    context = context or distributed.current()

    set_seed(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    task = get_task(config.task, config)
    device = distributed.device_for(context, torch.cuda.is_available() and not config.no_cuda)
    if config.fp16 and device.type != "cuda":
        raise UserInputError(f"{config.where('fp16')}: fp16 needs a CUDA device; use bf16 on CPU")
    model_dir = resolve_model_dir(config)
    tokenizer = load_tokenizer(config, model_dir)

    splits = {}
    for name in ("train", "dev", "test"):
        path = config.get(f"{name}_file")
        if path and (name != "train" or config.do_train):
            splits[name] = load_split(task, tokenizer, config, name, path)

    set_seed(config.seed)
    model = task.build_model(model_dir)
    if config.do_reinit:
        reinit_top_layer(model)
    model.to(device)

    outputs = RunOutputs(output_dir_for(config), config.task, task.primary_metric, write=context.is_main)
    reporter = NniReporter(config.do_nni and context.is_main)
    trainer = Trainer(config, task, model, tokenizer, splits, outputs, reporter, device, context)
    try:
        if config.do_train:
            trainer.train()
        if config.do_eval and not config.do_nni:
            trainer.final_evaluation()
    finally:
        outputs.close()
    return outputs.results
