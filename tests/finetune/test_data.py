"""Dynamic padding and length-grouped batches."""
import torch

from finetune import data


def features(lengths):
    return [{"input_ids": [5] * n, "attention_mask": [1] * n, "token_type_ids": [0] * n, "labels": i % 2,
             "_offsets": "dropped"} for i, n in enumerate(lengths)]


def test_collator_pads_to_the_longest_in_batch():
    batch = data.Collator(pad_token_id=0)(features([3, 5]) + [{"input_ids": [7], "attention_mask": [1],
                                                               "token_type_ids": [0], "labels": 0,
                                                               "_offsets": None}])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].tolist() == [[5, 5, 5, 0, 0], [5, 5, 5, 5, 5], [7, 0, 0, 0, 0]]
    assert batch["attention_mask"].tolist()[2] == [1, 0, 0, 0, 0]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [0, 1, 0]


def test_collator_regression_and_token_labels():
    batch = data.Collator(pad_token_id=1)([{"input_ids": [2, 3], "labels": 4.5}, {"input_ids": [2], "labels": 0.5}])
    assert batch["labels"].dtype == torch.float32 and batch["input_ids"].tolist() == [[2, 3], [2, 1]]
    tokens = data.Collator(0)([{"input_ids": [2, 3, 4], "labels": [-100, 1, 2]}, {"input_ids": [2], "labels": [-100]}])
    assert tokens["labels"].tolist() == [[-100, 1, 2], [-100, -100, -100]]


def order(loader):
    return [tuple(b["input_ids"].shape) for b in loader]


def test_length_grouping_pads_less_and_is_deterministic():
    lengths = [4 + (i * 37) % 120 for i in range(512)]
    feats = features(lengths)
    grouped = data.train_loader(feats, 16, 0, seed=1, epoch=0, group_by_length=True)
    plain = data.train_loader(feats, 16, 0, seed=1, epoch=0, group_by_length=False)
    padded_cells = lambda loader: sum(b["input_ids"].numel() for b in loader)  # noqa: E731
    assert padded_cells(grouped) < 0.75 * padded_cells(plain)
    assert sorted(n for b in grouped for n in b["attention_mask"].sum(1).tolist()) == sorted(lengths)
    first = order(data.train_loader(feats, 16, 0, seed=1, epoch=0))
    assert first == order(data.train_loader(feats, 16, 0, seed=1, epoch=0))
    assert first != order(data.train_loader(feats, 16, 0, seed=1, epoch=1))


def test_eval_batches_cover_every_feature_once_longest_first():
    feats = features([3, 9, 1, 7, 5])
    batches = data.eval_batches(feats, 2)
    assert batches == [[1, 3], [4, 0], [2]]
