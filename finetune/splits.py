"""Fixed-seed samples and held-out splits of a list: one definition for fine-tuning and the experiments.

Fine-tuning's caps (``max_train_examples``, ``max_eval_examples``) and its ``dev_split`` (a dev
set held out of the training file, for tasks such as KLUE whose only labelled file at hand is
its dev set) use these, and so do experiments/task_data.py's capped layouts for the task table.
With the same seed and caps they pick the same examples: a run with ``dev_split: 0.2`` on
KLUE's dev file trains and selects on exactly the examples the table's KLUE columns do.

Every part keeps the items in their original (file) order, so a sample or a split of a file
reads like the file.
"""
import random


def sample(items, limit, rng):
    """At most ``limit`` items (None or 0: all), chosen with ``rng``, kept in their original order."""
    if not limit or len(items) <= limit:
        return list(items)
    keep = sorted(rng.sample(range(len(items)), limit))
    return [items[i] for i in keep]


def split(items, fraction, rng):
    """(first part, second part): a fixed-seed shuffle cut at ``fraction``, each part in original order."""
    order = list(range(len(items)))
    rng.shuffle(order)
    cut = int(round(len(items) * fraction))
    first, second = sorted(order[:cut]), sorted(order[cut:])
    return [items[i] for i in first], [items[i] for i in second]


def kept_for_training(count, held_out_fraction):
    """How many of ``count`` items ``hold_out`` leaves for training, before any cap."""
    return int(round(count * (1.0 - held_out_fraction)))


def hold_out(items, held_out_fraction, rng, train_limit=None, held_out_limit=None):
    """(train, held out): ``held_out_fraction`` of the items set aside with ``rng``, then each part
    capped with the same ``rng`` (train first). ``rng``: a ``random.Random`` or a seed."""
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    train, held = split(items, 1.0 - held_out_fraction, rng)
    return sample(train, train_limit, rng), sample(held, held_out_limit, rng)
