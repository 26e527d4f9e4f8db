"""What the learning-rate schedule and the checkpoint interval will do, said before step 1.

The rate is ``learning_rate * (1 - step / num_train_steps) ** lr_decay_power``, scaled by
``min(1, step / num_warmup_steps)`` (model/optimization.py). A warmup as long as the run
never lets it rise: upstream's default of 10,000 warmup steps on a 400-step run peaks at
1e-6 for a 1e-4 learning_rate, and the discriminator learns nothing while every figure
looks like a run that is merely slow.
"""


def highest_learning_rate(learning_rate, num_train_steps, num_warmup_steps, lr_decay_power):
    """(step, rate) of the schedule's highest point within the run.

    While warming up the rate is ``(1 - s/T)**p * s/W``, which rises until s = T / (1 + p);
    so the top is at the end of warmup, or at T / (1 + p) when warmup would end later.
    """
    total, warmup, power = num_train_steps, num_warmup_steps, lr_decay_power
    if warmup <= 0:
        return 0, learning_rate
    top = min(warmup, total if power == 0 else total / (1.0 + power))
    step = max(1, min(total, int(round(top))))
    rate = learning_rate * (1.0 - step / total) ** power * min(1.0, step / warmup)
    return step, rate


def schedule_warnings(config):
    """Lines to print before training when the schedule or the checkpoint interval surprise."""
    lines = []
    total, warmup = config.num_train_steps, config.num_warmup_steps
    step, rate = highest_learning_rate(config.learning_rate, total, warmup, config.lr_decay_power)
    suggestion = max(1, total // 10)
    if warmup >= total or step < warmup:
        why = (f"num_warmup_steps {warmup} is as long as num_train_steps {total} or longer" if warmup >= total
               else f"num_warmup_steps {warmup} ends after the decay of num_train_steps {total} has overtaken it")
        lines.append(f"warning: {why}: the learning rate never reaches its peak learning_rate "
                     f"{config.learning_rate:g}, the highest it gets is {rate:.3g} (at step {step}); for a run "
                     f"this long use e.g. --hparams '{{\"num_warmup_steps\": {suggestion}}}' (10% of the steps)")
    if config.save_checkpoints_steps > total:
        lines.append(f"warning: save_checkpoints_steps {config.save_checkpoints_steps} is longer than the run "
                     f"({total} steps): the only checkpoint is the final one, so a killed run restarts from "
                     f"step 0; e.g. --hparams '{{\"save_checkpoints_steps\": {suggestion}}}'")
    return lines
