"""Everything a fine-tuning run leaves in ``ckpt_dir/<task>/``.

- ``best_model/``: the best checkpoint so far, a transformers directory with its tokenizer,
  ``finetune_config.json`` and ``best_result.json``; written to a temporary directory and
  renamed into place, so a crash never leaves a half-written model under that name.
- ``results.json``: every evaluation (step, epoch, split, metrics, loss), rewritten atomically
  after each one.
- ``predictions_<split>.jsonl``: one JSON object per example from the best model.
- ``<split>/<split>-<step>.txt``: the metrics of each evaluation during training, and
  ``eval_results.txt``: every checkpoint's test metrics as ``<metric>_<step> = <value>``
  lines, the files both originals write (``eval_all_checkpoints``).
- ``checkpoint-<step>/``: see finetune/checkpoints.py.
- ``tensorboard/``: training loss, learning rate and every metric by step.

Under torchrun only rank 0 writes: the other ranks build a ``RunOutputs(..., write=False)``,
which keeps the same ``results`` in memory and touches no file.
"""
import json
import logging
import os

from util.files import atomic_write, discard, make_dirs, put_in_place, temp_dir_beside, write_json

BEST_MODEL = "best_model"
logger = logging.getLogger(__name__)


class RunOutputs:
    def __init__(self, output_dir, task_name, primary_metric, write=True):
        self.dir = output_dir
        self.write = write
        if write:
            make_dirs(output_dir, "ckpt_dir")
        self.results = {"task": task_name, "primary_metric": primary_metric, "best": None, "evaluations": []}
        self._writer = None

    @property
    def best_model_dir(self):
        return os.path.join(self.dir, BEST_MODEL)

    @property
    def writer(self):
        if self._writer is None and self.write:
            import sys
            import types

            # TensorBoard imports all of TensorFlow (seconds, and ~1 GB) to write events unless
            # its "notf" marker module exists; its bundled stub writes the same files.
            sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(os.path.join(self.dir, "tensorboard"))
        return self._writer

    def log_scalars(self, prefix, values, step):
        if not self.write:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def add_evaluation(self, step, epoch, split, metrics, loss=None, scheduled=None, collapsed=None):
        record = {"step": step, "epoch": round(epoch, 4), "split": split, "metrics": metrics}
        if loss is not None:
            record["loss"] = loss
        if scheduled is not None:  # False: the extra evaluation at the end, not every logging_steps
            record["scheduled"] = scheduled
        if collapsed:  # finetune/collapse.py: the predictions show a model that learned nothing
            record["collapsed"] = collapsed
        self.results["evaluations"].append(record)
        self.log_scalars(split, dict(metrics, loss=loss) if loss is not None else metrics, step)
        self.save_results()
        return record

    def add_final_evaluation(self, step, split, metrics, loss, collapsed):
        """The best model's evaluation at the end; a collapse is also ``results["collapsed"][split]``
        (the field a script reads) and a warning in the log."""
        record = self.add_evaluation(step, 0.0, split, metrics, loss, collapsed=collapsed)
        record["final"] = True
        if collapsed:
            self.results.setdefault("collapsed", {})[split] = collapsed
            if self.write:
                from finetune.collapse import warning_line

                logger.warning("%s", warning_line(split, collapsed))
        self.save_results()

    def record_training(self, steps, epochs, examples, seconds, processes=1):
        """results.json's ``train``: the steps and epochs run and the throughput (evaluations and
        checkpoint saves not timed)."""
        seconds = max(seconds, 1e-9)
        record = {"steps": steps, "epochs": epochs, "examples": examples, "seconds": round(seconds, 3),
                  "examples_per_second": round(examples / seconds, 2)}
        if processes > 1:
            record["processes"] = processes
        self.results["train"] = record
        self.save_results()

    def set_best(self, step, split, score, metrics):
        self.results["best"] = {"step": step, "split": split, "score": score, "metrics": metrics}
        self.save_results()

    def save_results(self):
        if self.write:
            write_json(os.path.join(self.dir, "results.json"), self.results)

    def save_best_model(self, model, tokenizer, config_dict, result, optimizer=None, scheduler=None, collapsed=None):
        """Replace ``best_model/`` with this model, atomically (temp dir, then rename); ``collapsed``
        (finetune/collapse.py) goes into its best_result.json and so into its card."""
        if not self.write:
            return
        if collapsed:
            result = dict(result, collapsed=collapsed)
        tmp = temp_dir_beside(self.best_model_dir)
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            _copy_tokenizer_type(config_dict.get("model_name_or_path"), tmp)
            write_json(os.path.join(tmp, "finetune_config.json"), config_dict)
            write_json(os.path.join(tmp, "best_result.json"), result)
            from convert.model_card import write_finetuned_card

            write_finetuned_card(tmp, run_dir=self.dir, name=BEST_MODEL)  # README.md, from the files above
            if optimizer is not None:
                import torch

                torch.save(optimizer.state_dict(), os.path.join(tmp, "optimizer.pt"))
                torch.save(scheduler.state_dict(), os.path.join(tmp, "scheduler.pt"))
            put_in_place(tmp, self.best_model_dir)
        except BaseException:
            discard(tmp)
            raise

    def refresh_best_model_card(self):
        """Regenerate ``best_model/README.md`` once results.json holds the final evaluation."""
        if self.write and os.path.isdir(self.best_model_dir):
            from convert.model_card import write_finetuned_card

            write_finetuned_card(self.best_model_dir, run_dir=self.dir)

    def write_step_metrics(self, split, step, metrics, loss=None):
        """``<split>/<split>-<step>.txt`` with ``  key = value`` lines, as both originals write."""
        if not self.write:
            return
        values = dict(metrics, loss=loss) if loss is not None else dict(metrics)
        with atomic_write(os.path.join(self.dir, split, f"{split}-{step}.txt")) as f:
            f.writelines(f"  {k} = {values[k]}\n" for k in sorted(values))

    def write_eval_results(self, checkpoint_metrics):
        """``eval_results.txt``: ``<metric>_<step> = <value>`` for every checkpoint, by metric then step."""
        if not self.write or not checkpoint_metrics:
            return
        with atomic_write(os.path.join(self.dir, "eval_results.txt")) as f:
            keys = sorted({k for m in checkpoint_metrics.values() for k in m})
            for key in keys:
                for step in sorted(checkpoint_metrics):
                    if key in checkpoint_metrics[step]:
                        f.write(f"{key}_{step} = {checkpoint_metrics[step][key]}\n")

    def write_json_file(self, name, obj):
        """A JSON file in the run directory (e.g. KorQuAD's official ``predictions.json``)."""
        if not self.write:
            return None
        path = os.path.join(self.dir, name)
        with atomic_write(path) as f:
            json.dump(obj, f, ensure_ascii=False, default=_jsonable)
        return path

    def write_predictions(self, split, records):
        if not self.write:
            return None
        path = os.path.join(self.dir, f"predictions_{split}.jsonl")
        with atomic_write(path) as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False, default=_jsonable) + "\n")
        return path

    def close(self):
        if self._writer is not None:
            self._writer.close()


def _copy_tokenizer_type(model_dir, out_dir):
    """Keep our ``tokenizer_type`` key in the saved tokenizer_config.json (transformers drops
    unknown keys on save), so a fine-tuned directory still says it needs mecab."""
    from util.tokenization import CONFIG_NAME, read_tokenizer_config

    if not model_dir or not os.path.isdir(model_dir):
        return
    kind = read_tokenizer_config(model_dir).get("tokenizer_type")
    path = os.path.join(out_dir, CONFIG_NAME)
    if kind and os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved.get("tokenizer_type") != kind:
            saved["tokenizer_type"] = kind
            write_json(path, saved)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
