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

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

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
    """At most ``limit`` examples (0: all), a fixed random sample kept in file order, so
    runs with the same cap score the same examples whatever their seed."""
    if not limit or len(examples) <= limit:
        return examples
    import random

    keep = sorted(random.Random(0).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def load_split(task, tokenizer, config, name, path):
    examples = task.read_examples(path, name)
    in_file = len(examples)
    if name != "train":
        examples = cap_examples(examples, config.get("max_eval_examples", 0))
    features = task.build_features(examples, tokenizer, config.max_seq_len, name)
    if len(examples) < in_file:
        # In results.json's "inputs", so a capped score is never read as the full set's.
        task.split_notes.setdefault(name, {}).update(evaluated_examples=len(examples), examples_in_file=in_file)
        logger.info("%s: %d of %d examples (max_eval_examples), %d features from %s", name, len(examples),
                    in_file, len(features), path)
    else:
        logger.info("%s: %d examples, %d features from %s", name, len(examples), len(features), path)
    return Split(name, path, examples, features)
