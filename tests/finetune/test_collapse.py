"""A collapsed fine-tuning run is said to be one: in the log, results.json, the model card.

The cases are the ones a new user met on real data (../shared/data): a hate-speech run and a 3i4k
run that predicted one class for every example (macro recall 33.33 and 14.29), a KLUE-STS
regression head with no spread whose Pearson was still printed, and a KLUE-NER tagger that tags
only ``O``. Each is reproduced with a tiny model whose vocab was learned from the same text, at a
learning rate or budget that collapses it; the thresholds are checked on the real gold labels.
"""
import json
import logging
import os

import numpy as np
import pytest

from finetune import collapse
from finetune.config import load_config
from finetune.tasks import get_task, task_config_defaults
from finetune.trainer import run

from finetune_helpers import ROOT, make_tiny_electra

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
HATE = os.path.join(SHARED, "korean-hate-speech", "koelectra")
THREEI4K = os.path.join(SHARED, "pretrain-text", "3i4k", "data", "train_val_test")
KLUE = os.path.join(SHARED, "klue-dev")
pytestmark = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")


def shipped(task_dir, **overrides):
    return load_config(os.path.join(ROOT, "conf", task_dir, "electra-small.yaml"),
                       extra_defaults=task_config_defaults(), overrides=overrides)


def task_and_examples(task_dir, path, split="test", **overrides):
    config = shipped(task_dir, model_name_or_path=ROOT, train_file="", test_file=path, dev_file="",
                     do_train=False, **overrides)
    task = get_task(config.task, config)
    return task, task.read_examples(path, split)


# -- the thresholds, on the real gold labels ---------------------------------------------------

@pytest.mark.parametrize("task_dir,path,label,recall", [
    ("hate-speech", os.path.join(HATE, "val.tsv"), "none", 33.33),
    ("intent-3i4k", os.path.join(THREEI4K, "fci_test.txt"), "2", 14.29)])
def test_one_class_for_every_example_is_collapsed_and_the_gold_labels_are_not(task_dir, path, label, recall):
    task, examples = task_and_examples(task_dir, path)
    gold = task.gold(examples)
    all_one = [label] * len(examples)
    assert round(task.compute_metrics(all_one, examples)["macro_recall"], 2) == recall  # the figure
    found = collapse.check(task, all_one, examples)
    share = gold.count(label) / len(gold)
    assert found["kind"] == "one_class" and found["label"] == label and found["share"] == 1.0
    assert found["reason"] == (f"predicted {label!r} for {len(gold):,} of {len(gold):,} examples (100.0%; "
                               f"{share:.1%} of the gold labels): one class for nearly all")
    assert collapse.check(task, gold, examples) is None
    # 94 % of one class is a weak model, not a collapsed one; 96 % is collapsed.
    other = next(x for x in task.labels() if x != label)
    for fraction, collapsed in ((0.94, False), (0.96, True)):
        others = int(round(len(gold) * (1 - fraction)))
        mixed = [other] * others + [label] * (len(gold) - others)
        assert (collapse.check(task, mixed, examples) is not None) == collapsed, fraction


def test_a_class_the_gold_labels_hold_as_often_is_not_collapse():
    # A test set of one class, predicted right, is not a collapsed model.
    task, examples = task_and_examples("hate-speech", os.path.join(HATE, "val.tsv"))
    only_none = [e for e in examples if e.label == "none"]
    assert collapse.check(task, ["none"] * len(only_none), only_none) is None


def test_regression_without_spread_is_collapsed_whatever_correlation_its_noise_has():
    path = os.path.join(KLUE, "klue-sts-v1.1", "klue-sts-v1.1_dev.json")
    task, examples = task_and_examples("klue-sts", path, split="dev")
    gold = np.array(task.gold(examples))
    rng = np.random.default_rng(0)
    # What the collapsed KLUE-STS run predicted: one value, give or take float noise that still
    # correlates a little with the gold scores (Pearson 8.29 in the run).
    flat = list(2.2 + 1e-5 * (gold - gold.mean()) + 1e-6 * rng.standard_normal(len(gold)))
    assert task.compute_metrics(flat, examples)["pearson"] > 50  # a number that looks like a result
    found = collapse.check(task, flat, examples)
    assert found["kind"] == "no_spread" and found["spread_ratio"] < 1e-4
    assert found["reason"].startswith("predictions' standard deviation 0.0000 against the gold scores' "
                                      f"{gold.std():.3f} (0.0% of it, under 5%): ")
    assert collapse.check(task, list(gold), examples) is None
    centre = gold.mean()
    for ratio, collapsed in ((0.06, False), (0.04, True)):
        shrunk = list(centre + ratio * (gold - centre))
        assert (collapse.check(task, shrunk, examples) is not None) == collapsed, ratio


def test_ner_tagging_only_o_is_collapsed():
    path = os.path.join(KLUE, "klue-ner-v1.1", "klue-ner-v1.1_dev.tsv")
    task, examples = task_and_examples("klue-ner", path, split="dev")
    examples = examples[:300]
    gold = [list(ex.tags) for ex in examples]
    entities = sum(t != "O" for tags in gold for t in tags)
    found = collapse.check(task, [["O"] * len(tags) for tags in gold], examples)
    assert found["kind"] == "only_o" and found["reason"] == (
        f"0 non-O tags where the gold has {entities:,} (0.0%, under 5%): tagging (nearly) only O")
    assert collapse.check(task, gold, examples) is None
    # Keep the first k entity tags: 4 % of the gold's is nearly only O, 6 % is not.
    for fraction, collapsed in ((0.04, True), (0.06, False)):
        budget = int(entities * fraction)
        kept = []
        for tags in gold:
            row = []
            for t in tags:
                keep = t != "O" and budget > 0
                budget -= keep
                row.append(t if keep else "O")
            kept.append(row)
        assert (collapse.check(task, kept, examples) is not None) == collapsed, fraction


# -- the runs of the issue, reproduced --------------------------------------------------------

@pytest.fixture(scope="module")
def dialogue_model(tmp_path_factory):
    """A tiny random-init ELECTRA whose vocab was learned from the hate-speech comments and 3i4k."""
    with open(os.path.join(HATE, "train.tsv"), encoding="utf-8") as f:
        texts = [line.split("\t")[1] for line in f][1:]
    with open(os.path.join(THREEI4K, "fci_train_val.txt"), encoding="utf-8") as f:
        texts += [line.split("\t")[1].strip() for _, line in zip(range(8000), f)]
    return make_tiny_electra(str(tmp_path_factory.mktemp("dialogue-tiny")), vocab_size=4000, texts=texts)


def run_shipped(task_dir, model, tmp_path, **overrides):
    values = {"ckpt_dir": str(tmp_path / "ckpt"), "model_name_or_path": model, "max_seq_len": 64,
              "save_steps": 0, "eval_all_checkpoints": False, "num_threads": 1, **overrides}
    config = shipped(task_dir, **values)
    return config, run(config)


def card(tmp_path, config):
    return (tmp_path / "ckpt" / config.task / "best_model" / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("task_dir,files,lr,label,recall", [
    ("hate-speech", (os.path.join(HATE, "train.tsv"), os.path.join(HATE, "val.tsv")), 1e-3, "none", 33.33),
    ("intent-3i4k", (os.path.join(THREEI4K, "fci_train_val.txt"), os.path.join(THREEI4K, "fci_test.txt")), 1e-2,
     "1", 14.29)])
def test_a_run_that_predicts_one_class_says_so_everywhere(task_dir, files, lr, label, recall, dialogue_model,
                                                          tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        config, results = run_shipped(task_dir, dialogue_model, tmp_path, train_file=files[0], test_file=files[1],
                                      learning_rate=lr, num_train_epochs=1, max_train_examples=512,
                                      max_eval_examples=400, logging_steps=8)
    final = [e for e in results["evaluations"] if e.get("final")][0]
    assert round(final["metrics"]["macro_recall"], 2) == recall
    found = results["collapsed"]["test"]
    assert found["kind"] == "one_class" and found["label"] == label and found["share"] == 1.0
    assert final["collapsed"] == found
    on_disk = json.loads((tmp_path / "ckpt" / config.task / "results.json").read_text(encoding="utf-8"))
    assert on_disk["collapsed"] == results["collapsed"]
    warnings = [r.getMessage() for r in caplog.records if "collapsed" in r.getMessage()]
    assert warnings == [f"test: the model collapsed: {found['reason']}; its scores measure no learning "
                        "(lower learning_rate, train longer, or check the labels: docs/finetuning.md, "
                        "\"Collapsed runs\")"]
    text = card(tmp_path, config)
    assert f"**Collapsed.** test: {found['reason']}" in text
    best = json.loads((tmp_path / "ckpt" / config.task / "best_model" / "best_result.json").read_text())
    assert best["collapsed"]["kind"] == "one_class"


def test_a_regression_head_without_spread_says_so(dialogue_model, tmp_path):
    sts = os.path.join(KLUE, "klue-sts-v1.1")
    config, results = run_shipped("klue-sts", dialogue_model, tmp_path, data_dir=sts,
                                  train_file=os.path.join(sts, "klue-sts-v1.1_dev.json"), dev_file="",
                                  dev_split=0.2, learning_rate=1e-4, num_train_epochs=1, logging_steps=0)
    found = results["collapsed"]["dev"]
    assert found["kind"] == "no_spread" and found["spread_ratio"] < 0.05
    assert f"**Collapsed.** dev: {found['reason']}" in card(tmp_path, config)


def test_ner_that_tags_only_o_says_so(dialogue_model, tmp_path):
    ner = os.path.join(KLUE, "klue-ner-v1.1")
    config, results = run_shipped("klue-ner", dialogue_model, tmp_path, data_dir=ner, max_seq_len=128,
                                  train_file=os.path.join(ner, "klue-ner-v1.1_dev.tsv"), dev_file="",
                                  dev_split=0.2, max_train_examples=300, max_eval_examples=200,
                                  learning_rate=5e-2, num_train_epochs=1, logging_steps=0)
    found = results["collapsed"]["dev"]
    assert found["kind"] == "only_o" and found["reason"].startswith("0 non-O tags where the gold has ")
    assert "**Collapsed.**" in card(tmp_path, config)


@pytest.mark.slow
def test_a_run_that_learns_is_not_called_collapsed(dialogue_model, tmp_path):
    # 3i4k, 2,000 utterances, one epoch at 1e-2: accuracy above the majority class's 30 %, its most
    # predicted class about half the predictions (measured on this machine: 53.2 % and 50.5 %).
    config, results = run_shipped("intent-3i4k", dialogue_model, tmp_path,
                                  train_file=os.path.join(THREEI4K, "fci_train_val.txt"),
                                  test_file=os.path.join(THREEI4K, "fci_test.txt"), learning_rate=1e-2,
                                  num_train_epochs=1, max_train_examples=2000, max_eval_examples=1000,
                                  logging_steps=50)
    final = [e for e in results["evaluations"] if e.get("final")][0]
    assert final["metrics"]["accuracy"] > 40
    assert "collapsed" not in results and "collapsed" not in final
    assert "Collapsed" not in card(tmp_path, config)
