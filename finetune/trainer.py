"""The fine-tuning loop every task shares, and ``run(config)`` that wires a whole run together.

The loop is Dialog-KoELECTRA's: AdamW without decay on biases and LayerNorm weights, linear
warmup over ``warmup_proportion`` of the steps then linear decay, gradient accumulation and
clipping, random sampling of the training set (``group_by_length: true`` groups batches by
length, our speed-up), an evaluation every ``logging_steps`` optimizer steps (``save_steps``
when ``logging_steps`` is 0, and always once at the end), and a ``checkpoint-N/`` every
``save_steps`` (finetune/checkpoints.py). What each evaluation counts for, the published
protocol's number and ours, is finetune/selection.py; a single pass is finetune/evaluation.py.
A run whose ``ckpt_dir/<task>/`` holds checkpoints resumes from the newest (``resume: false``
starts over). Under torchrun each process trains a DistributedDataParallel replica on its
share of each global batch; only rank 0 writes files, logs progress and talks to NNI.
"""
import contextlib
import inspect
import logging
import os
import time

import torch
from tqdm.auto import tqdm

from finetune import checkpoints, collapse, data, distributed, evaluation
from finetune.evaluation import autocast, format_metrics
from finetune.models import load_model, load_tokenizer, model_load_errors, reinit_top_layer, resolve_model_dir
from finetune.nni_glue import NniReporter, in_experiment, trial_ids
from finetune.optimization import make_optimizer, set_seed
from finetune.outputs import RunOutputs
from finetune.plan import describe, make_plan
from finetune.selection import Selection
from util import devices
from util.errors import UserInputError
from util.files import check_dir_can_be_made

logger = logging.getLogger(__name__)


class Trainer:
    def __init__(self, config, task, model, tokenizer, splits, outputs, reporter, device, context=None,
                 model_dir=None, resume_from=None):
        self.config, self.task, self.model, self.tokenizer = config, task, model, tokenizer
        self.splits, self.outputs, self.reporter, self.device = splits, outputs, reporter, device
        self.context = context or distributed.Context()
        self.model_dir, self.resume_from = model_dir, resume_from
        # ``model`` is what is evaluated and saved; ``train_model`` (DDP's wrapper of the same
        # modules under torchrun) is what trains, so gradients are averaged over the ranks.
        self.train_model = distributed.wrap_model(model, self.context, device)
        accepted = inspect.signature(model.forward).parameters
        self.model_inputs = {k for k in accepted if k != "kwargs"}
        self.selection = Selection(config, splits, task.primary_metric)
        self.best_state = None
        # (step, {split: (metrics, predictions, loss)}) of the best model's evaluation: the final
        # evaluation of that same model reuses it instead of scoring the splits again.
        self.best_eval = None
        self.last_eval_step = None
        self._last_scores = (None, {})
        self.scaler = None

    def evaluate(self, split, model=None):
        """Metrics, predictions and mean loss of the current model (or ``model``) on one split."""
        return evaluation.evaluate(model or self.model, self.task, split, self.config, self.tokenizer.pad_token_id,
                                   self.device, self.context, self.model_inputs)

    # -- evaluation during training ------------------------------------------------------------

    def evaluate_during_training(self, step, epoch, scheduled=True):
        config, outputs, selection = self.config, self.outputs, self.selection
        scores, parts, evaluated, collapsed = {}, [], {}, {}
        for name in selection.splits_during_training():
            metrics, predictions, loss = self.evaluate(self.splits[name])
            evaluated[name] = (metrics, predictions, loss)
            collapsed[name] = collapse.check(self.task, predictions, self.splits[name].examples)
            outputs.add_evaluation(step, epoch, name, metrics, loss, scheduled, collapsed[name])
            if not config.do_nni:
                outputs.write_step_metrics(name, step, metrics, loss)
            scores[name] = metrics
            parts.append(f"{name} {format_metrics(metrics)}")
        message = f"step {step}: " + " | ".join(parts)
        if scheduled:  # the published code evaluates (and reports to NNI) every logging_steps only
            published = scores[selection.published_split]
            selection.offer_published(step, published)
            outputs.results["published"] = selection.published
            self.reporter.intermediate(published[selection.metric])
        chosen = scores[selection.selection_split]
        if selection.offer_best(step, chosen):
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best_eval = (step, evaluated)
            outputs.set_best(step, selection.selection_split, chosen[selection.metric], chosen)
            if not config.do_nni:
                outputs.save_best_model(self.model, self.tokenizer, config.as_dict(),
                                        {"step": step, "split": selection.selection_split, "metrics": chosen},
                                        collapsed=collapsed[selection.selection_split])
            message += " (best)"
        if self.context.is_main:
            tqdm.write(message)
        self.last_eval_step = step
        self._last_scores = (step, scores)
        self.model.train()

    def save_checkpoint(self, step, epoch, batches_done):
        """``checkpoint-<step>/``; with ``eval_all_checkpoints`` its test score too (dev when
        there is no test file), taken now while the weights are in memory (the originals reload
        each checkpoint at the end to get the same number; taking it now keeps it when the
        keep-limit deletes the directory)."""
        selection, outputs = self.selection, self.outputs
        split = selection.checkpoint_split
        if split:
            at, scores = self._last_scores
            metrics = scores.get(split) if at == step else None
            if metrics is None:
                metrics, _, loss = self.evaluate(self.splits[split])
                outputs.write_step_metrics(split, step, metrics, loss)
                self.model.train()
            self.record_checkpoint_score(step, metrics)
        state = {"epoch": epoch, "batches_done": batches_done, "selection": selection.state(),
                 "results": outputs.results, "last_eval_step": self.last_eval_step}
        if self.context.is_main:
            checkpoints.save(outputs.dir, step, self.model, self.tokenizer, self.config, state,
                             self.optimizer, self.scheduler, self.scaler)
            checkpoints.tidy(outputs.dir, self.config.save_total_limit, selection.protected_steps(),
                             self.config.save_optimizer, newest=step)

    def record_checkpoint_score(self, step, metrics):
        self.selection.offer_checkpoint(step, metrics)
        self.outputs.results["checkpoints"] = self.selection.checkpoint_record()
        self.outputs.write_eval_results(self.selection.checkpoints)
        self.outputs.save_results()

    # -- training ------------------------------------------------------------------------------

    def _resume(self):
        """Load the optimizer, scheduler and bookkeeping of ``resume_from``; (epoch, batches done)."""
        state = checkpoints.read_state(self.resume_from)
        checkpoints.load_training_states(self.resume_from, self.optimizer, self.scheduler, self.scaler, rng=False)
        self.selection.restore(state["selection"])
        self.outputs.results = state["results"]
        self.outputs.results["resumed_from"] = state["step"]
        self.last_eval_step = state.get("last_eval_step")
        best_dir = self.outputs.best_model_dir
        if self.selection.best and os.path.isdir(best_dir):
            with model_load_errors(best_dir):
                self.best_state = type(self.model).from_pretrained(best_dir, local_files_only=True).state_dict()
        logger.info("resuming from %s (step %d)", self.resume_from, state["step"])
        if self.context.is_main:
            tqdm.write(f"resuming from {self.resume_from}")
        return state["step"], state["epoch"], state["batches_done"]

    def train(self):
        from transformers import get_linear_schedule_with_warmup

        config, model, context = self.config, self.model, self.context
        features = self.splits["train"].features
        accumulation = config.gradient_accumulation_steps
        self.plan = plan = make_plan(len(features), config, context.world_size)
        batches_per_epoch, total_steps, epochs = plan.batches_per_epoch, plan.total_steps, plan.epochs
        self.optimizer = make_optimizer(model, config)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(total_steps * config.warmup_proportion), total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if config.fp16 else None
        interval = config.logging_steps if config.logging_steps > 0 else config.save_steps
        saving = config.save_steps > 0 and not config.do_nni
        step, start_epoch, skip = 0, 0, 0
        if self.resume_from:
            step, start_epoch, skip = self._resume()
            if skip >= batches_per_epoch:
                start_epoch, skip = start_epoch + 1, 0
        elif self.model_dir and checkpoints.has_optimizer_states(self.model_dir):
            # As the originals: a model directory holding optimizer.pt/scheduler.pt continues them.
            try:  # a damaged file is named by load_training_states itself
                checkpoints.load_training_states(self.model_dir, self.optimizer, self.scheduler, rng=False)
            except (ValueError, KeyError, RuntimeError) as e:
                raise UserInputError(f"{self.model_dir}: optimizer.pt/scheduler.pt do not fit this model ({e})") from None
            logger.info("loaded optimizer and scheduler states from %s", self.model_dir)
        logger.info("%s", describe(plan, config))
        if context.distributed:
            logger.info("%d processes: global batch %d = %d per process x %d processes x %d accumulation",
                        context.world_size, config.train_batch_size * context.world_size * accumulation,
                        config.train_batch_size, context.world_size, accumulation)

        running_loss, running_count, examples_seen = 0.0, 0, 0
        self.outputs.writer  # opened before the clock starts: importing TensorBoard takes seconds
        started = time.perf_counter()
        eval_seconds = 0.0
        model.train()
        model.zero_grad(set_to_none=True)
        progress = tqdm(total=total_steps, initial=step, desc=f"fine-tuning {config.task}", unit="step",
                        dynamic_ncols=True, mininterval=1.0, disable=not context.is_main)
        for epoch in range(start_epoch, epochs):
            if step >= total_steps:
                break
            loader = data.train_loader(features, config.train_batch_size, self.tokenizer.pad_token_id,
                                       config.seed, epoch, config.group_by_length, config.num_workers,
                                       context.world_size, context.rank)
            resuming_here = self.resume_from and epoch == start_epoch
            if resuming_here and skip == 0:
                checkpoints.set_rng_state(checkpoints.read_rng(self.resume_from))
            batches = iter(loader)  # draws the loader's base seed from the global RNG
            first = 0
            if resuming_here and skip > 0:
                # The uninterrupted run drew that seed before the checkpoint's RNG state: restore after.
                checkpoints.set_rng_state(checkpoints.read_rng(self.resume_from))
                for first in range(skip):
                    next(batches)
                first = skip
            for i, batch in enumerate(batches, first):
                at_step = (i + 1) % accumulation == 0 or i + 1 == len(loader)
                # DDP all-reduces in backward; between optimizer steps there is nothing to average yet.
                no_sync = context.distributed and not at_step
                with self.train_model.no_sync() if no_sync else contextlib.nullcontext():
                    with autocast(config, self.device):
                        loss = self.train_model(**{k: v.to(self.device) for k, v in batch.items()
                                                   if k in self.model_inputs}).loss
                    running_loss += loss.item()
                    running_count += 1
                    examples_seen += len(batch["input_ids"])
                    loss = loss / accumulation
                    (self.scaler.scale(loss) if self.scaler else loss).backward()
                if not at_step:
                    continue
                self._optimizer_step()
                step += 1
                progress.update(1)
                if context.distributed:  # log the global batch's loss, as one process would
                    running_loss = distributed.sum_over_ranks(running_loss, context, self.device) / context.world_size
                self.outputs.log_scalars("train", {"loss": running_loss / running_count,
                                                   "learning_rate": self.scheduler.get_last_lr()[0]}, step)
                progress.set_postfix(loss=f"{running_loss / running_count:.4f}")
                running_loss, running_count = 0.0, 0
                eval_started = time.perf_counter()
                if self.selection.selection_split and interval > 0 and step % interval == 0:
                    self.evaluate_during_training(step, epoch + (i + 1) / len(loader))
                if saving and step % config.save_steps == 0:
                    self.save_checkpoint(step, epoch, i + 1)
                eval_seconds += time.perf_counter() - eval_started
                if step >= total_steps:
                    break
        progress.close()
        self._record_throughput(step, examples_seen, time.perf_counter() - started - eval_seconds)
        if self.selection.selection_split and self.last_eval_step != step:
            self.evaluate_during_training(step, plan.epochs_of(step), scheduled=False)  # not the epochs entered
        if self.selection.selection_split is None:  # nothing to select on: the last model is the one kept
            self.selection.best = {"step": step}
            if not config.do_nni:
                self.outputs.save_best_model(model, self.tokenizer, config.as_dict(), {"step": step})
        final = self.selection.published or self.selection.best
        if final and "score" in final:
            self.reporter.final(final["score"])
        return step

    def _optimizer_step(self):
        scaler, model = self.scaler, self.model
        if scaler:
            scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.max_grad_norm)
        if scaler:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        model.zero_grad(set_to_none=True)

    def _record_throughput(self, step, examples_seen, seconds):
        """Training throughput, without the evaluations in between and the checkpoint saves."""
        examples_seen = int(distributed.sum_over_ranks(examples_seen, self.context, self.device))
        self.outputs.record_training(step, self.plan.epochs_of(step), examples_seen, seconds, self.context.world_size)

    # -- after training ------------------------------------------------------------------------

    def evaluate_saved_checkpoints(self):
        """``eval_all_checkpoints``: score on test (dev without a test file) each checkpoint on
        disk not scored yet (all of them when ``do_train`` is false, as the originals' final loop)."""
        split = self.selection.checkpoint_split
        for step, path in checkpoints.list_checkpoints(self.outputs.dir):
            if step in self.selection.checkpoints:
                continue
            model = load_model(self.task, path).to(self.device)
            metrics, _, loss = self.evaluate(self.splits[split], model)
            self.outputs.write_step_metrics(split, step, metrics, loss)
            self.record_checkpoint_score(step, metrics)

    def final_evaluation(self):
        """The best model on every evaluation split, with its predictions written out."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if self.selection.checkpoint_split and not self.config.do_nni:
            self.evaluate_saved_checkpoints()
        names = [n for n in ("dev", "test") if n in self.splits]
        final = {}
        step = (self.selection.best or {}).get("step") or 0
        reused_step, reusable = self.best_eval or (None, {})
        for name in names:
            split = self.splits[name]
            if self.best_state is not None and reused_step == step and name in reusable:
                metrics, predictions, loss = reusable[name]  # this very model, scored at that step
            else:
                metrics, predictions, loss = self.evaluate(split)
            final[name] = metrics
            self.outputs.add_final_evaluation(step, name, metrics, loss,
                                              collapse.check(self.task, predictions, split.examples))
            if not self.context.is_main:
                continue
            path = self.outputs.write_predictions(name, self.task.prediction_records(predictions, split.examples))
            suffix = "" if len(names) == 1 else f"_{name}"
            for filename, obj in self.task.prediction_files(predictions, split.examples).items():
                stem, ext = os.path.splitext(filename)
                self.outputs.write_json_file(f"{stem}{suffix}{ext}", obj)
            tqdm.write(f"final {name}: {format_metrics(metrics)} -> {path}")
        if "dev" in final and "test" in final:
            self.outputs.results["dev_selected"] = {"step": (self.selection.best or {}).get("step"),
                                                    "dev": final["dev"], "test": final["test"]}
        self.outputs.save_results()


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
        if config.no_cuda:
            raise UserInputError(f"{config.where('fp16')}: fp16 needs a CUDA device, and no_cuda is true; "
                                 "use bf16 on CPU")
        devices.require_cuda("fp16", config.where("fp16"), "; or use bf16 on CPU")
    if context.is_main:
        logger.info("%s", devices.finetuning_device_line(device, config))
    model_dir = resolve_model_dir(config)
    tokenizer = load_tokenizer(config, model_dir)
    if context.is_main:
        from finetune.text import mecab_decision

        logger.info("%s", mecab_decision(config, model_dir))
    output_dir = output_dir_for(config)
    # Now, not when the first output is written after the data and the model are loaded.
    check_dir_can_be_made(output_dir, f"{config.where('ckpt_dir')}: ckpt_dir")
    resume_from = checkpoints.resume_point(config, output_dir, context.is_main)

    splits = data.load_splits(task, tokenizer, config)

    set_seed(config.seed)
    if resume_from:  # the checkpoint's weights; re-initialising them again would undo training
        model = load_model(task, resume_from)
    else:
        model = load_model(task, model_dir)
        if config.do_reinit:
            reinit_top_layer(model)
    model.to(device)

    outputs = RunOutputs(output_dir, config.task, task.primary_metric, write=context.is_main)
    if task.split_notes:
        outputs.results["inputs"] = dict(task.split_notes)
    reporter = NniReporter(config.do_nni and context.is_main)
    trainer = Trainer(config, task, model, tokenizer, splits, outputs, reporter, device, context,
                      model_dir=model_dir, resume_from=resume_from)
    try:
        if config.do_train:
            trainer.train()
        if config.do_eval and not config.do_nni:
            trainer.final_evaluation()
        if not config.do_nni:
            outputs.refresh_best_model_card()  # with the final figures, the steps run and any collapse
    finally:
        outputs.close()
    # The closing summary (summary_lines) is printed once, by run_finetune.py's report().
    return outputs.results
