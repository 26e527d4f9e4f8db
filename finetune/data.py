"""Batches from unpadded features: dynamic padding and length-grouped order.

Korean benchmark sentences are short (NSMC's median is ~20 WordPiece tokens) next to the
usual ``max_seq_len`` of 128, so padding each batch only to its own longest example, and
putting examples of similar length in the same batch, removes most of the wasted compute.
Training batches come from transformers' ``LengthGroupedSampler`` (random mega-batches,
sorted inside) seeded per epoch; evaluation batches are sorted by length and the trainer
puts the outputs back in feature order. Under torchrun, ``finetune.distributed`` shards both
(same order for the same seed on every rank, disjoint examples).
"""
import dataclasses
import logging
import os
import random

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from finetune import splits
from util.errors import UserInputError

logger = logging.getLogger(__name__)

# Label positions the loss ignores (torch's CrossEntropyLoss default).
IGNORE_INDEX = -100
_PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "special_tokens_mask": 1}


class FeatureDataset(Dataset):
    def __init__(self, features):
        self.features = features

    def __len__(self):
        return len(self.features)

    def __getitem__(self, index):
        return self.features[index]


def feature_lengths(features):
    return [len(f["input_ids"]) for f in features]


class Collator:
    """Pads list-valued keys to the longest in the batch; scalars become a tensor.

    ``input_ids`` pad with the tokenizer's pad id, masks with 0, label sequences with
    ``IGNORE_INDEX``; keys starting with ``_`` are the task's bookkeeping and are dropped.
    A picklable class rather than a closure so DataLoader workers can use it.
    """

    def __init__(self, pad_token_id):
        self.pad_token_id = pad_token_id

    def __call__(self, features):
        batch = {}
        for key in features[0]:
            if key.startswith("_"):
                continue
            values = [f[key] for f in features]
            if isinstance(values[0], (list, tuple)):
                width = max(len(v) for v in values)
                pad = self.pad_token_id if key == "input_ids" else _PAD_VALUES.get(key, IGNORE_INDEX)
                dtype = torch.float32 if any(isinstance(x, float) for v in values for x in v[:1]) else torch.long
                tensor = torch.full((len(values), width), pad, dtype=dtype)
                for row, value in enumerate(values):
                    tensor[row, : len(value)] = torch.tensor(value, dtype=dtype)
                batch[key] = tensor
            else:
                dtype = torch.float32 if isinstance(values[0], float) else torch.long
                batch[key] = torch.tensor(values, dtype=dtype)
        return batch


def train_loader(features, batch_size, pad_token_id, seed, epoch, group_by_length=True, num_workers=0,
                 world_size=1, rank=0):
    """Shuffled training batches for one epoch, the same for the same seed and epoch.

    With ``world_size`` > 1, this rank's share of each global batch of ``batch_size * world_size``
    (``finetune.distributed.train_batches``); every rank gets the same number of batches.
    """
    from transformers.trainer_pt_utils import LengthGroupedSampler

    generator = torch.Generator()
    generator.manual_seed(seed * 1000 + epoch)
    dataset = FeatureDataset(features)
    if world_size > 1:
        from finetune.distributed import train_batches

        batches = train_batches(feature_lengths(features), batch_size, world_size, rank, generator, group_by_length)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=Collator(pad_token_id), num_workers=num_workers)
    if group_by_length:
        sampler = LengthGroupedSampler(batch_size, lengths=feature_lengths(features), generator=generator)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=Collator(pad_token_id),
                      num_workers=num_workers)


def eval_batches(features, batch_size, world_size=1, rank=0):
    """Index lists, longest examples first, so each batch pads little; covers every feature once
    (with ``world_size`` > 1: this rank's strided share, the shares covering every feature once)."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    if world_size > 1:
        from finetune.distributed import eval_share

        order = eval_share(order, world_size, rank)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def eval_loader(features, batch_size, pad_token_id, num_workers=0, world_size=1, rank=0):
    """(DataLoader over length-sorted batches, the index list of each batch)."""
    batches = eval_batches(features, batch_size, world_size, rank)
    loader = DataLoader(FeatureDataset(features), batch_sampler=batches, collate_fn=Collator(pad_token_id),
                        num_workers=num_workers)
    return loader, batches


@dataclasses.dataclass
class Split:
    name: str
    path: str
    examples: list
    features: list


def cap_examples(examples, limit):
    """At most ``limit`` examples (0: all), a fixed random sample (seed 0) kept in file order, so
    runs with the same cap score the same examples whatever their seed."""
    return splits.sample(examples, limit, random.Random(0))


# Task kinds whose examples share their text with other examples (KorQuAD's questions share a
# paragraph): a held-out dev set drawn example by example would hold text trained on.
NO_DEV_SPLIT = {"span_extraction": "korquad's questions share their paragraphs, so questions drawn one by one "
                                   "would put a paragraph on both sides; split by article "
                                   "(experiments/task_data.py does) and give dev_file"}


def load_splits(task, tokenizer, config):
    """``{name: Split}`` of the run's files: train (when ``do_train``), dev, test; with ``dev_split``
    the dev set is held out of ``train_file`` (finetune/splits.py, the task table's split code), and
    ``max_train_examples`` / ``max_eval_examples`` cap what is trained on and scored. What was cut
    goes into ``task.split_notes`` (results.json's ``inputs``), so a number is never read as the
    whole file's."""
    seed = config.get("split_seed", 0)
    read = {}
    for name in ("train", "dev", "test"):
        path = config.get(f"{name}_file")
        needed = name != "train" or config.do_train or config.get("dev_split")
        if path and needed:
            read[name] = (path, task.read_examples(path, name))
    notes = {}
    if config.get("dev_split"):
        if task.kind in NO_DEV_SPLIT:
            raise UserInputError(f"{config.where('dev_split')}: dev_split: {NO_DEV_SPLIT[task.kind]}")
        path, examples = read["train"]
        fraction = config.dev_split
        kept, dev = splits.hold_out(examples, fraction, seed, config.get("max_train_examples", 0),
                                    config.get("max_eval_examples", 0))
        left = splits.kept_for_training(len(examples), fraction)
        read["dev"] = (path, dev)
        notes["dev"] = {"held_out_of": os.path.basename(path), "dev_split": fraction, "split_seed": seed,
                        "examples_held_out": len(examples) - left, "evaluated_examples": len(dev)}
        notes["train"] = {"trained_examples": len(kept), "examples_left_for_training": left,
                          "examples_in_file": len(examples)}
        if config.do_train:
            read["train"] = (path, kept)
        else:
            del read["train"]
    elif "train" in read and config.get("max_train_examples"):
        path, examples = read["train"]
        kept = splits.sample(examples, config.max_train_examples, random.Random(seed))
        read["train"] = (path, kept)
        if len(kept) < len(examples):
            notes["train"] = {"trained_examples": len(kept), "examples_in_file": len(examples)}
    result = {}
    for name, (path, examples) in read.items():
        if name != "train" and name not in notes:
            in_file = len(examples)
            examples = cap_examples(examples, config.get("max_eval_examples", 0))
            if len(examples) < in_file:
                notes[name] = {"evaluated_examples": len(examples), "examples_in_file": in_file}
        result[name] = make_split(task, tokenizer, config, name, path, examples, notes.get(name))
    return result


def make_split(task, tokenizer, config, name, path, examples, note=None):
    """The split's features; ``note`` (what was cut or held out) joins ``task.split_notes`` after
    the task's own notes for the split (NER's truncation) are made."""
    features = task.build_features(examples, tokenizer, config.max_seq_len, name)
    how = ""
    if note:
        task.split_notes.setdefault(name, {}).update(note)
        if "held_out_of" in note:
            how = f" (of {note['examples_held_out']} held out by dev_split)"
        elif "examples_left_for_training" in note:
            capped = ", max_train_examples" if len(examples) < note["examples_left_for_training"] else ""
            how = f" (of {note['examples_in_file']}: {note['examples_left_for_training']} left by dev_split{capped})"
        elif "trained_examples" in note:
            how = f" (of {note['examples_in_file']}, max_train_examples)"
        else:
            how = f" (of {note['examples_in_file']}, max_eval_examples)"
    logger.info("%s: %d examples%s, %d features from %s", name, len(examples), how, len(features), path)
    return Split(name, path, examples, features)
