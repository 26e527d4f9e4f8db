"""max_train_examples and dev_split: fine-tuning's caps and held-out dev, on real files of ../shared/data.

The split code is experiments/task_data.py's (finetune/splits.py holds it for both), so a run with
``dev_split`` on KLUE's dev file trains and selects on exactly the examples of the task table's
KLUE layout with the same seed and caps.
"""
import json
import os

import pytest

from finetune import data
from finetune.config import load_config
from finetune.models import load_tokenizer
from finetune.selection import summary_lines
from finetune.tasks import get_task, task_config_defaults
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import ROOT

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
KLUE_STS = os.path.join(SHARED, "klue-dev", "klue-sts-v1.1")
HATE = os.path.join(SHARED, "korean-hate-speech", "koelectra")
pytestmark = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")


def klue_sts_config(model_dir, tmp_path, **overrides):
    # Command-line overrides: file paths relative to the current directory, as run_finetune's --set.
    values = {"data_dir": KLUE_STS, "train_file": os.path.join(KLUE_STS, "klue-sts-v1.1_dev.json"), "dev_file": "",
              "test_file": "",
              "ckpt_dir": str(tmp_path / "ckpt"), "model_name_or_path": model_dir, "dev_split": 0.2,
              "max_seq_len": 64}
    values.update(overrides)
    return load_config(os.path.join(ROOT, "conf", "klue-sts", "electra-small.yaml"),
                       extra_defaults=task_config_defaults(), overrides=values)


@pytest.mark.parametrize("seed", [0, 3])
def test_dev_split_holds_out_what_the_task_table_holds_out(tmp_path, tiny_model_dir, seed):
    from experiments import task_data

    config = klue_sts_config(tiny_model_dir, tmp_path, max_train_examples=40, max_eval_examples=20,
                             split_seed=seed)
    task = get_task(config.task, config)
    splits = data.load_splits(task, load_tokenizer(config, tiny_model_dir), config)
    assert sorted(splits) == ["dev", "train"]

    task_data.lay_out("klue-sts", str(tmp_path / "table"), train_limit=40, eval_limit=20, split_seed=seed)
    for name in ("train", "dev"):
        laid_out = json.load(open(tmp_path / "table" / f"klue-sts-v1.1_{name}.json", encoding="utf-8"))
        assert [e.guid for e in splits[name].examples] == [item["guid"] for item in laid_out]
        assert len(splits[name].features) == len(splits[name].examples)
    assert not {e.guid for e in splits["train"].examples} & {e.guid for e in splits["dev"].examples}
    dev_note = task.split_notes["dev"]
    assert dev_note["held_out_of"] == "klue-sts-v1.1_dev.json" and dev_note["dev_split"] == 0.2
    assert dev_note["split_seed"] == seed and dev_note["evaluated_examples"] == 20
    # KLUE-STS dev holds 519 examples: 415 (80 %) remain for training, of which 40 are trained on.
    assert task.split_notes["train"] == {"trained_examples": 40, "examples_left_for_training": 415,
                                         "examples_in_file": 519}
    assert dev_note["examples_held_out"] == 104


def test_max_train_examples_trains_on_the_sample_and_says_so(tmp_path, tiny_model_dir, write_yaml, capsys):
    from finetune_helpers import tiny_run_config

    path = write_yaml(tiny_run_config(tiny_model_dir, tmp_path / "ckpt", task="hate-speech_tiny", data_dir=HATE,
                                      train_file="train.tsv", test_file="val.tsv", max_train_examples=64,
                                      max_eval_examples=32, max_steps=-1, num_train_epochs=1,
                                      logging_steps=0, save_steps=0))
    results = run(load_config(path, extra_defaults=task_config_defaults()))
    assert results["inputs"]["train"] == {"trained_examples": 64, "examples_in_file": 7896}
    assert results["train"]["examples"] == 64  # one epoch of the sample: 4 batches of 16
    assert results["train"]["steps"] == 4
    lines = summary_lines(results)
    assert "trained on 64 of the 7,896 examples of train (max_train_examples)" in lines


def test_dev_split_run_writes_held_out_predictions_and_summary(tmp_path, tiny_model_dir):
    config = klue_sts_config(tiny_model_dir, tmp_path, max_train_examples=32, max_eval_examples=16, max_steps=2,
                             logging_steps=1, save_steps=0, train_batch_size=16)
    results = run(config)
    assert results["best"]["split"] == "dev"
    out = tmp_path / "ckpt" / config.task
    lines = (out / "predictions_dev.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 16
    assert ("dev: 16 of the 104 examples held out of klue-sts-v1.1_dev.json (dev_split 0.2, split_seed 0)"
            in summary_lines(results))


@pytest.mark.parametrize("values,message", [
    ({"dev_split": 0.2, "dev_file": os.path.join(KLUE_STS, "klue-sts-v1.1_dev.json")},
     "dev_split 0.2 holds a dev set out of train_file, and dev_file is given too: keep one"),
    ({"dev_split": 1.0}, "dev_split must be in [0, 1), got 1.0"),
    ({"dev_split": -0.1}, "dev_split must be in [0, 1), got -0.1"),
    ({"max_train_examples": -5}, "max_train_examples must be >= 0 (0 = all), got -5"),
])
def test_bad_split_settings_are_one_line(tmp_path, tiny_model_dir, values, message):
    with pytest.raises(UserInputError) as e:
        klue_sts_config(tiny_model_dir, tmp_path, **values)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("command-line override")


def test_dev_split_refuses_korquad_whose_questions_share_contexts(tmp_path, tiny_model_dir):
    korquad = os.path.join(SHARED, "korquad-v1")
    config = load_config(os.path.join(ROOT, "conf", "korquad", "electra-small.yaml"),
                         extra_defaults=task_config_defaults(),
                         overrides={"data_dir": korquad, "train_file": os.path.join(korquad, "KorQuAD_v1.0_dev.json"), "dev_file": "",
                                    "test_file": "", "model_name_or_path": tiny_model_dir, "dev_split": 0.2})
    task = get_task(config.task, config)
    with pytest.raises(UserInputError, match="dev_split: korquad's questions share their paragraphs"):
        data.load_splits(task, load_tokenizer(config, tiny_model_dir), config)


def test_resume_refuses_a_checkpoint_trained_on_another_sample(tmp_path, tiny_model_dir):
    # The cap and the held-out split decide which examples are trained on: a checkpoint of another
    # sample is another training run.
    run(klue_sts_config(tiny_model_dir, tmp_path, max_train_examples=32, max_steps=2, save_steps=2,
                        logging_steps=0, train_batch_size=16))
    with pytest.raises(UserInputError) as e:
        run(klue_sts_config(tiny_model_dir, tmp_path, max_train_examples=48, max_steps=2, save_steps=2,
                            logging_steps=0, train_batch_size=16))
    assert "max_train_examples=32" in str(e.value) and "resume: false" in str(e.value)


def test_the_docs_dev_split_example_runs_as_it_says(tmp_path, tiny_model_dir, caplog):
    import logging
    import re

    import yaml

    docs = open(os.path.join(ROOT, "docs", "finetuning.md"), encoding="utf-8").read()
    block = re.search(r"<!-- dev_split example[^>]*-->\n```yaml\n(.*?)```", docs, re.S).group(1)
    shipped = yaml.safe_load(open(os.path.join(ROOT, "conf", "klue-sts", "electra-small.yaml"), encoding="utf-8"))
    shipped.update(yaml.safe_load(block))
    shipped.update(data_dir=KLUE_STS, model_name_or_path=tiny_model_dir, max_seq_len=64)
    path = tmp_path / "klue-sts.yaml"
    path.write_text(yaml.safe_dump(shipped, allow_unicode=True), encoding="utf-8")
    config = load_config(str(path), extra_defaults=task_config_defaults())
    task = get_task(config.task, config)
    with caplog.at_level(logging.INFO, logger="finetune.data"):
        splits = data.load_splits(task, load_tokenizer(config, tiny_model_dir), config)
    assert (len(splits["train"].examples), len(splits["dev"].examples)) == (300, 104)
    assert "train: 300 examples (of 519: 415 left by dev_split, max_train_examples)" in caplog.text
    assert "dev: 104 examples (of 104 held out by dev_split)" in caplog.text
    results = {"inputs": task.split_notes}
    assert summary_lines(results) == [
        "trained on 300 of the 415 examples of train left by dev_split (max_train_examples)",
        "dev: the 104 examples held out of klue-sts-v1.1_dev.json (dev_split 0.2, split_seed 0)"]
    assert "(104 of 519 examples), 415 left for training" in block


def test_dev_split_without_a_cap_names_no_cap(tmp_path, tiny_model_dir, caplog):
    import logging

    config = klue_sts_config(tiny_model_dir, tmp_path)
    task = get_task(config.task, config)
    with caplog.at_level(logging.INFO, logger="finetune.data"):
        splits = data.load_splits(task, load_tokenizer(config, tiny_model_dir), config)
    assert (len(splits["train"].examples), len(splits["dev"].examples)) == (415, 104)
    assert "train: 415 examples (of 519: 415 left by dev_split), " in caplog.text
    assert summary_lines({"inputs": task.split_notes}) == [
        "trained on 415 of the 415 examples of train left by dev_split",
        "dev: the 104 examples held out of klue-sts-v1.1_dev.json (dev_split 0.2, split_seed 0)"]
