"""How long a run trains, in optimizer steps and epochs, and how that is said.

``max_steps`` wins over ``num_train_epochs`` (as in both originals), so a run of 150 steps
with ``num_train_epochs: 10`` can be shorter than one epoch: the log, results.json's
``train`` record and the model card give the steps and epochs actually run, never the
configured epochs alone.
"""
import dataclasses
import math


@dataclasses.dataclass
class TrainingPlan:
    examples: int
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    epochs: int  # epochs the loop enters; the last may be cut short by max_steps
    by_max_steps: bool

    def epochs_of(self, steps):
        """The epochs ``steps`` optimizer steps amount to (0.61 for part of one)."""
        return round(steps / self.steps_per_epoch, 2)


def make_plan(examples, config, world_size=1):
    # train_batch_size is per process: each rank runs one batch of each global batch.
    batches_per_epoch = math.ceil(examples / (config.train_batch_size * world_size))
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
    if config.max_steps > 0:
        total = config.max_steps
        return TrainingPlan(examples, batches_per_epoch, steps_per_epoch, total, math.ceil(total / steps_per_epoch),
                            True)
    total = max(1, int(steps_per_epoch * config.num_train_epochs))
    return TrainingPlan(examples, batches_per_epoch, steps_per_epoch, total, math.ceil(config.num_train_epochs),
                        False)


def counted(number, word):
    """``1 epoch``, ``2 epochs``, ``0.61 epochs``."""
    shown = f"{number:,}" if isinstance(number, int) else f"{number:g}"
    return f"{shown} {word}" + ("" if number == 1 else "s")


def describe(plan, config):
    """The log line that opens training."""
    epochs = plan.epochs_of(plan.total_steps)
    how = f"max_steps {config.max_steps}" if plan.by_max_steps else f"num_train_epochs {config.num_train_epochs:g}"
    return (f"training: {counted(plan.examples, 'example')}, {counted(plan.total_steps, 'optimizer step')} "
            f"= {counted(epochs, 'epoch')} ({how}; {counted(plan.steps_per_epoch, 'step')} an epoch), "
            f"batch {config.train_batch_size} x {config.gradient_accumulation_steps} accumulation")
