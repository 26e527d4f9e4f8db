"""Slow: fine-tuning on real slices of ../shared/data, through every shipped YAML.

Each shipped conf/<task>/electra-*.yaml runs as published except for its paths (data_dir
laid out in a temporary directory with slices of the real files, a tiny model) and
``max_steps``. Training sets that are not obtainable here are stood in for by other real
files of the same layout (KorNLI and PAWS-X train by their dev sets, KorQuAD train by part of
its dev set, Naver NER by KLUE-NER, whose character-level layout the NER task also reads).
"""
import json
import os

import pytest

from finetune.config import load_config
from finetune.tasks import task_config_defaults
from finetune.trainer import run

from finetune_helpers import ROOT, make_tiny_electra, tiny_run_config

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")]


def head(source, target, lines):
    """The header and first ``lines`` rows of a text file."""
    with open(source, encoding="utf-8") as f, open(target, "w", encoding="utf-8") as out:
        for i, line in enumerate(f):
            if i > lines:
                break
            out.write(line)


def klue_sentences(source, target, count):
    """The comment lines and first ``count`` sentences of KLUE-NER's character-level file."""
    with open(source, encoding="utf-8") as f:
        blocks = f.read().split("\n\n")
    with open(target, "w", encoding="utf-8") as out:
        out.write("\n\n".join(blocks[:count]) + "\n\n")


def korquad_articles(source, target, articles):
    with open(source, encoding="utf-8") as f:
        data = json.load(f)
    data["data"] = data["data"][articles]
    with open(target, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False)


def lay_out(task, data_dir):
    """data/finetune/<task>/ as docs/finetuning.md describes it, from slices of the real files."""
    os.makedirs(data_dir, exist_ok=True)
    j = lambda *p: os.path.join(SHARED, *p)  # noqa: E731
    d = lambda name: os.path.join(data_dir, name)  # noqa: E731
    if task == "nsmc":
        head(j("nsmc", "ratings_train.txt"), d("ratings_train.txt"), 200)
        head(j("nsmc", "ratings_test.txt"), d("ratings_test.txt"), 100)
    elif task == "question-pair":
        for name in ("train.tsv", "dev.tsv", "test.tsv"):
            head(j("question-pair", "koelectra", name), d(name), 100)
    elif task == "hate-speech":
        head(j("korean-hate-speech", "koelectra", "train.tsv"), d("train.tsv"), 200)
        head(j("korean-hate-speech", "koelectra", "val.tsv"), d("val.tsv"), 100)
    elif task == "kornli":
        head(j("kornli", "xnli.dev.ko.tsv"), d("multinli.train.ko.tsv"), 200)
        head(j("kornli", "xnli.dev.ko.tsv"), d("xnli.dev.ko.tsv"), 100)
        head(j("kornli", "xnli.test.ko.tsv"), d("xnli.test.ko.tsv"), 100)
    elif task == "korsts":
        for name in ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"):
            head(j("korsts", name), d(name), 100)
    elif task == "paws":
        head(j("paws-x-ko", "dev_2k.tsv"), d("translated_train.tsv"), 200)
        head(j("paws-x-ko", "dev_2k.tsv"), d("dev_2k.tsv"), 100)
        head(j("paws-x-ko", "test_2k.tsv"), d("test_2k.tsv"), 100)
    elif task == "naver-ner":
        klue = j("klue-dev", "klue-ner-v1.1", "klue-ner-v1.1_dev.tsv")
        klue_sentences(klue, d("train.tsv"), 60)
        klue_sentences(klue, d("test.tsv"), 30)
    elif task == "korquad":
        korquad_articles(j("korquad-v1", "KorQuAD_v1.0_dev.json"), d("KorQuAD_v1.0_train.json"), slice(0, 1))
        korquad_articles(j("korquad-v1", "KorQuAD_v1.0_dev.json"), d("KorQuAD_v1.0_dev.json"), slice(1, 2))


@pytest.fixture(scope="module")
def real_text_model(tmp_path_factory):
    """A tiny model whose vocab was learned from real NSMC reviews, with room for 512 tokens."""
    with open(os.path.join(SHARED, "nsmc", "ratings_train.txt"), encoding="utf-8") as f:
        texts = [line.split("\t")[1] for _, line in zip(range(20001), f)][1:]
    return make_tiny_electra(str(tmp_path_factory.mktemp("real-tiny")), vocab_size=4000, texts=texts,
                             max_positions=512)


@pytest.mark.parametrize("path", sorted(
    os.path.join(ROOT, "conf", t, f"electra-{s}.yaml")
    for t in ("nsmc", "question-pair", "hate-speech", "naver-ner", "kornli", "korsts", "paws", "korquad")
    for s in ("small", "base")), ids=lambda p: os.path.relpath(p, os.path.join(ROOT, "conf")))
def test_shipped_yaml_runs_on_real_data(path, tmp_path, real_text_model):
    task_dir = os.path.basename(os.path.dirname(path))
    lay_out(task_dir, str(tmp_path / "data"))
    config = load_config(path, extra_defaults=task_config_defaults(), overrides={
        "data_dir": str(tmp_path / "data"), "ckpt_dir": str(tmp_path / "ckpt"),
        "model_name_or_path": real_text_model, "max_steps": 2, "logging_steps": 1})
    results = run(config)
    out = tmp_path / "ckpt" / config.task
    assert results["best"] is not None and results["primary_metric"] in results["best"]["metrics"]
    assert [e["step"] for e in results["evaluations"] if not e.get("final")][:2] in ([1, 2], [1, 1])
    assert os.path.isdir(out / "best_model") and os.path.isfile(out / "results.json")
    assert any(name.startswith("predictions_") for name in os.listdir(out))


def test_nsmc_real_slice_learns(tmp_path, write_yaml, real_text_model):
    data = tmp_path / "data"
    data.mkdir()
    head(os.path.join(SHARED, "nsmc", "ratings_train.txt"), data / "ratings_train.txt", 3000)
    head(os.path.join(SHARED, "nsmc", "ratings_test.txt"), data / "ratings_test.txt", 1000)
    config = load_config(write_yaml(tiny_run_config(
        real_text_model, tmp_path / "ckpt", data_dir=str(data), train_file="ratings_train.txt",
        test_file="ratings_test.txt", num_train_epochs=3, train_batch_size=32,
        logging_steps=50, learning_rate=5e-4, warmup_proportion=0.1, max_seq_len=128)))
    results = run(config)
    assert results["best"]["score"] >= 65.0, results["best"]
