"""Every YAML shipped in conf/ is valid, and the demo's sample.yaml fine-tunes end to end."""
import glob
import json
import os

import pytest

from finetune.config import load_config
from finetune.tasks import task_config_defaults, task_family
from finetune.trainer import run

from finetune_helpers import ROOT

SHIPPED = sorted(glob.glob(os.path.join(ROOT, "conf", "*", "electra-*.yaml")))
TASK_DIRS = ["nsmc", "question-pair", "hate-speech", "naver-ner", "kornli", "korsts", "paws", "korquad",
             "klue-dp", "klue-nli", "klue-sts", "klue-ner", "intent-3i4k", "intent-chatbot"]
# The intent YAMLs run the generic sentence-classification family on a named data set.
FAMILY_OF_DIR = {"intent-3i4k": "intent", "intent-chatbot": "intent"}
# Dialog-KoELECTRA ships its intent config (isac) for the small model only.
SMALL_ONLY = ["isac"]


def test_a_small_and_a_base_yaml_for_every_task():
    assert sorted(os.path.relpath(p, os.path.join(ROOT, "conf")) for p in SHIPPED) == sorted(
        [f"{t}/electra-{size}.yaml" for t in TASK_DIRS for size in ("small", "base")]
        + [f"{t}/electra-small.yaml" for t in SMALL_ONLY])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.relpath(p, ROOT))
def test_shipped_yaml_is_valid(path, tmp_path, tiny_model_dir):
    task_dir = os.path.basename(os.path.dirname(path))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert f"data_dir: ../../data/finetune/{task_dir}\n" in text
    assert "model_name_or_path: ../../data/pytorch/dialog-koelectra-" in text
    # Validation checks the data files exist: give it an empty layout of the right names.
    for key in ("train_file", "dev_file", "test_file"):
        name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(key + ":")), "")
        if name:
            (tmp_path / name).write_text("", encoding="utf-8")
    config = load_config(path, extra_defaults=task_config_defaults(), overrides={
        "data_dir": str(tmp_path), "model_name_or_path": tiny_model_dir})
    assert task_family(config.task) == FAMILY_OF_DIR.get(task_dir, task_dir)
    assert config.adam_epsilon == 1e-8 and config.seed == 42
    assert config.ckpt_dir == os.path.join(ROOT, "ckpt", "finetune")


def test_sample_yaml_fine_tunes(tmp_path, tiny_model_dir):
    config = load_config(os.path.join(ROOT, "conf", "nsmc", "sample.yaml"), overrides={
        "model_name_or_path": tiny_model_dir, "ckpt_dir": str(tmp_path)})
    results = run(config)
    assert results["best"]["split"] == "test" and results["best"]["score"] >= 80.0
    with open(tmp_path / "nsmc_sample" / "results.json", encoding="utf-8") as f:
        assert json.load(f)["best"] == results["best"]
