"""What a run says about itself: the steps and epochs it ran, its base model, the metric that selects.

The cases a new user met: a card saying "epochs / max steps 10.0 / 150" for a run shorter than one
epoch, a base model named by its folder, "1 epochs" in the log, and KLUE-STS printing Spearman
first though Pearson selects the checkpoint.
"""
import logging
import os
import re

import pytest

from finetune.config import load_config
from finetune.tasks import task_config_defaults
from finetune.trainer import run

from finetune_helpers import ROOT, make_tiny_electra, tiny_run_config

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
HATE = os.path.join(SHARED, "korean-hate-speech", "koelectra")
KLUE = os.path.join(SHARED, "klue-dev")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")


def card_rows(card):
    return dict(re.findall(r"^\| ([^|]+) \| (.+) \|$", card, re.M))


@needs_shared
def test_a_run_shorter_than_an_epoch_says_the_steps_and_epochs_it_ran(tmp_path, tiny_model_dir, write_yaml,
                                                                     caplog):
    # The case: num_train_epochs 10 and max_steps 150 on hate speech, where an epoch of
    # 7,896 comments at batch 32 is 247 steps; here 12 steps of batch 16 on 640 comments (40 an epoch).
    path = write_yaml(tiny_run_config(tiny_model_dir, tmp_path / "ckpt", task="hate-speech_tiny", data_dir=HATE,
                                      train_file="train.tsv", test_file="val.tsv", max_train_examples=640,
                                      max_eval_examples=64, num_train_epochs=10, max_steps=12, logging_steps=5,
                                      save_steps=0))
    with caplog.at_level(logging.INFO, logger="finetune.trainer"):
        results = run(load_config(path, extra_defaults=task_config_defaults()))
    assert results["train"]["steps"] == 12 and results["train"]["epochs"] == 0.3
    # Evaluations at steps 5 and 10, and at the end: 12 steps are 0.3 of an epoch, not the 1 epoch entered.
    assert [e["epoch"] for e in results["evaluations"] if not e.get("final")] == [0.125, 0.25, 0.3]
    assert ("training: 640 examples, 12 optimizer steps = 0.3 epochs (max_steps 12; 40 steps an epoch), "
            "batch 16 x 1 accumulation") in caplog.text
    card = (tmp_path / "ckpt" / "hate-speech_tiny" / "best_model" / "README.md").read_text(encoding="utf-8")
    rows = card_rows(card)
    assert rows["trained"] == "12 optimizer steps = 0.3 epochs (192 examples)"
    assert rows["configured length"] == "max_steps 12 (num_train_epochs 10 does not apply when max_steps is set)"
    assert "epochs / max steps" not in card


def test_one_epoch_is_said_in_the_singular(tmp_path, tiny_model_dir, write_yaml, caplog):
    path = write_yaml(tiny_run_config(tiny_model_dir, tmp_path / "ckpt", num_train_epochs=1, save_steps=0))
    with caplog.at_level(logging.INFO, logger="finetune.trainer"):
        results = run(load_config(path))
    assert "= 1 epoch (num_train_epochs 1; 19 steps an epoch)" in caplog.text  # 300 sample reviews at batch 16
    assert "1 epochs" not in caplog.text
    rows = card_rows((tmp_path / "ckpt" / "nsmc_tiny" / "best_model" / "README.md").read_text(encoding="utf-8"))
    assert rows["trained"] == f"19 optimizer steps = 1 epoch ({results['train']['examples']} examples)"
    assert rows["configured length"] == "num_train_epochs 1"


def base_with_card(tmp_path, name, card):
    model = make_tiny_electra(str(tmp_path / name))
    if card is not None:
        with open(os.path.join(model, "README.md"), "w", encoding="utf-8") as f:
            f.write(card)
    return model


@pytest.mark.parametrize("card,shown", [
    ("---\nlanguage: ko\n---\n\n# Tiny Dialogue ELECTRA (discriminator)\n\nMade for the tests.\n",
     "Tiny Dialogue ELECTRA (discriminator) (directory `released`)"),
    (None, "`released` (no model card)")])
def test_the_card_names_the_base_model_by_its_card(tmp_path, write_yaml, card, shown):
    model = base_with_card(tmp_path, "released", card)
    run(load_config(write_yaml(tiny_run_config(model, tmp_path / "ckpt", max_steps=2, save_steps=0,
                                               logging_steps=0))))
    rows = card_rows((tmp_path / "ckpt" / "nsmc_tiny" / "best_model" / "README.md").read_text(encoding="utf-8"))
    assert rows["base model"] == shown


def test_the_card_names_a_converted_base_by_its_converted_card(tmp_path, write_yaml):
    from convert.model_card import write_converted_card

    model = base_with_card(tmp_path, "tmp-output", None)
    write_converted_card(model, "discriminator", name="dialog-koelectra-tiny-discriminator")
    run(load_config(write_yaml(tiny_run_config(model, tmp_path / "ckpt", max_steps=2, save_steps=0,
                                               logging_steps=0))))
    rows = card_rows((tmp_path / "ckpt" / "nsmc_tiny" / "best_model" / "README.md").read_text(encoding="utf-8"))
    assert rows["base model"] == "dialog-koelectra-tiny-discriminator (directory `tmp-output`)"


@needs_shared
@pytest.mark.parametrize("task_dir,data,first,selecting", [
    ("klue-sts", "klue-sts-v1.1/klue-sts-v1.1_dev.json", "pearson", "pearson"),
    ("klue-ner", "klue-ner-v1.1/klue-ner-v1.1_dev.tsv", "char_macro_f1", "char_macro_f1")])
def test_the_metric_that_selects_the_checkpoint_is_printed_first(task_dir, data, first, selecting, tmp_path,
                                                                 tiny_model_dir, capsys):
    config = load_config(os.path.join(ROOT, "conf", task_dir, "electra-small.yaml"),
                         extra_defaults=task_config_defaults(),
                         overrides={"data_dir": KLUE, "train_file": os.path.join(KLUE, data), "dev_file": "",
                                    "dev_split": 0.2, "max_train_examples": 32, "max_eval_examples": 16,
                                    "ckpt_dir": str(tmp_path / "ckpt"), "model_name_or_path": tiny_model_dir,
                                    "max_seq_len": 64, "max_steps": 2, "logging_steps": 1, "save_steps": 0,
                                    "eval_all_checkpoints": False})
    results = run(config)
    assert results["primary_metric"] == selecting
    step_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("step ", "final "))]
    assert len(step_lines) == 3
    for line in step_lines:
        assert re.search(rf"(step \d+: |final )dev:? {first}=", line), line
    assert all(list(e["metrics"])[0] == first for e in results["evaluations"])
