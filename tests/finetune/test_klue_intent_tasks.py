"""KLUE-NLI/STS/NER and the intent YAMLs: readers on the release layouts, and a run of each shipped YAML.

Each run takes the shipped ``conf/<task>/electra-small.yaml`` with only the paths, the tiny
model and a few steps changed, on slices of the real files laid out by experiments/task_data.py.
"""
import json
import os

import pytest

from finetune.config import load_config
from finetune.tasks import get_task, task_config_defaults, task_family
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import ROOT

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")
# task -> (split reported, metric keys that must be there)
REPORTED = {
    "klue-nli": ("dev", {"accuracy"}),
    "klue-sts": ("dev", {"pearson", "f1", "spearman"}),
    "klue-ner": ("dev", {"entity_macro_f1", "char_macro_f1", "f1"}),
    "intent-3i4k": ("test", {"accuracy", "macro_f1"}),
    "intent-chatbot": ("test", {"accuracy", "macro_f1"}),
}


def test_task_names_pick_the_klue_families():
    assert task_family("klue-nli_small_v1") == "klue-nli" and task_family("klue-sts_base_v1") == "klue-sts"
    assert task_family("klue-ner_small_v1") == "klue-ner" and task_family("naver-ner_small_v1") == "naver-ner"
    assert task_family("intent-3i4k_small_v1") == "intent"


def make(task, **values):
    config = load_config(os.path.join(ROOT, "conf", task, "electra-small.yaml"), extra_defaults=task_config_defaults(),
                         overrides={"model_name_or_path": ROOT, "train_file": "", "dev_file": "", "test_file": "",
                                    "do_train": False, "do_eval": False,
                                    **values})
    return get_task(config.task, config)


def test_klue_json_errors_name_file_and_example(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"guid": "g1", "premise": "a", "hypothesis": "b", "gold_label": "entailment"},\n{"guid": ',
                   encoding="utf-8")
    with pytest.raises(UserInputError, match=r"bad\.json:2: not valid JSON"):
        make("klue-nli", data_dir=str(tmp_path)).read_examples(str(bad), "train")
    bad.write_text(json.dumps([{"guid": "g1", "premise": "a", "hypothesis": "b", "gold_label": "maybe"}]))
    with pytest.raises(UserInputError, match="bad.json: example 1: label 'maybe' is not one of entailment"):
        make("klue-nli", data_dir=str(tmp_path)).read_examples(str(bad), "train")
    bad.write_text(json.dumps([{"guid": "s1", "sentence1": "a", "sentence2": "b", "labels": {"label": 3}}]))
    with pytest.raises(UserInputError, match=r"example 1 \(guid s1\) has no 'labels.real-label'"):
        make("klue-sts", data_dir=str(tmp_path)).read_examples(str(bad), "train")
    with pytest.raises(UserInputError, match="ner_format"):
        make("klue-ner", data_dir=str(tmp_path), ner_format="naver").labels()


@needs_shared
def test_klue_readers_on_the_release_dev_files():
    nli = make("klue-nli").read_examples(os.path.join(SHARED, "klue-dev", "klue-nli-v1.1", "klue-nli-v1.1_dev.json"),
                                         "dev")
    assert len(nli) == 3000 and nli[0].guid == "klue-nli-v1_dev_00000" and nli[0].label == "contradiction"
    assert sorted({e.label for e in nli}) == ["contradiction", "entailment", "neutral"]
    sts = make("klue-sts").read_examples(os.path.join(SHARED, "klue-dev", "klue-sts-v1.1", "klue-sts-v1.1_dev.json"),
                                         "dev")
    assert len(sts) == 519 and sts[0].label == pytest.approx(4.857142857142857)  # real-label, not label (4.9)


@needs_shared
@pytest.mark.parametrize("task", sorted(REPORTED))
def test_shipped_yaml_runs_on_the_data_at_hand(task, tmp_path, tiny_model_dir):
    from experiments import task_data
    from finetune.inference import Predictor

    data = task_data.lay_out(task, str(tmp_path / "data"), train_limit=24, eval_limit=12)
    config = load_config(os.path.join(ROOT, "conf", task, "electra-small.yaml"), extra_defaults=task_config_defaults(),
                         overrides={"data_dir": str(tmp_path / "data"), "ckpt_dir": str(tmp_path / "ckpt"),
                                    "model_name_or_path": tiny_model_dir, "max_steps": 2, "logging_steps": 2,
                                    "save_steps": 2, "max_seq_len": 64, "eval_batch_size": 16})
    results = run(config)
    split, keys = REPORTED[task]
    final = [e for e in results["evaluations"] if e.get("final") and e["split"] == split]
    assert data.report_split == split and len(final) == 1 and keys <= set(final[0]["metrics"])
    if task.startswith("intent"):  # predict.py's answer for intent: the label and every label's probability
        predictor = Predictor(os.path.join(tmp_path, "ckpt", config.task, "best_model"))
        (answer,) = predictor.predict(["내일 날씨 알려줘"])
        assert answer["label"] in answer["probabilities"]
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert len(answer["probabilities"]) == (7 if task == "intent-3i4k" else 3)
