"""KLUE-DP on real data: the reader, a tiny parser learning, the shipped YAML end to end,
predict.py on the result, and its ONNX export giving PyTorch's parses."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from finetune.config import DEFAULTS, FinetuneConfig
from finetune.data import Collator
from finetune.models import load_tokenizer
from finetune.tasks import get_task
from util.errors import UserInputError

from finetune_helpers import ROOT, make_tiny_electra

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DEV = os.path.join(SHARED, "klue-dev", "klue-dp-v1.1", "klue-dp-v1.1_dev.tsv")
pytestmark = pytest.mark.skipif(not os.path.isfile(DEV), reason="../shared/data/klue-dev is not on this machine")


def dp_task(**values):
    config = FinetuneConfig(dict(DEFAULTS, task="klue-dp_test", dp_arc_space=32, dp_type_space=16, **values),
                            source="test")
    return get_task(config.task, config)


@pytest.fixture(scope="module")
def dev_examples():
    return dp_task().read_examples(DEV, "dev")


@pytest.fixture(scope="module")
def dp_model_dir(tmp_path_factory, dev_examples):
    texts = [" ".join(e.words) for e in dev_examples[:400]]
    return make_tiny_electra(str(tmp_path_factory.mktemp("tiny-dp")), vocab_size=1200, texts=texts,
                             max_positions=256)


def test_reader_on_the_real_dev_file(dev_examples):
    # Counted here without the reader: a sentence header has one tab, a word line six fields.
    with open(DEV, encoding="utf-8") as f:
        lines = f.read().split("\n")
    headers = [line for line in lines if line.startswith("## ") and line.count("\t") == 1]
    word_lines = [line for line in lines if not line.startswith("#") and len(line.split("\t")) == 6]
    assert len(dev_examples) == len(headers) == 2000
    assert sum(len(e.words) for e in dev_examples) == len(word_lines)
    first = dev_examples[0]
    assert first.guid == "klue-dp-v1_dev_00000_wikitree"
    assert first.words == ["'K팝스타3’", "유희열이", "홍정희의", "탈락에", "눈물을", "흘렸다."]
    assert first.heads == [2, 6, 4, 6, 6, 0]
    assert first.relations == ["NP", "NP_SBJ", "NP_MOD", "NP_AJT", "NP_OBJ", "VP"]
    assert all(e.heads.count(0) >= 1 and max(e.heads) <= len(e.words) for e in dev_examples)


def test_reader_names_file_and_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("## s1\t나는 간다\n1\t나는\t나 는\tNP+JX\t2\tNP_SBJ\n2\t간다\t가 ㄴ다\tVV+EF\t0\tVERB\n",
                    encoding="utf-8")
    with pytest.raises(UserInputError, match=rf"^{path}:3: DEPREL 'VERB' is not one of KLUE's 38"):
        dp_task().read_examples(str(path), "train")
    path.write_text("## s1\t나는 간다\n1\t나는\t나 는\tNP+JX\t5\tNP_SBJ\n2\t간다\t가 ㄴ다\tVV+EF\t0\tVP\n",
                    encoding="utf-8")
    with pytest.raises(UserInputError, match=rf"^{path}:2: head 5 is past the sentence's 2 words"):
        dp_task().read_examples(str(path), "train")


def test_features_pool_each_words_first_and_last_token(dev_examples, dp_model_dir):
    task = dp_task()
    tokenizer = load_tokenizer(task.config, dp_model_dir)
    example = dev_examples[0]
    feature = task.build_features([example], tokenizer, 256, "dev")[0]
    for w, word in enumerate(example.words, 1):
        pieces = tokenizer.convert_ids_to_tokens(feature["input_ids"][feature["word_starts"][w]:
                                                                      feature["word_ends"][w] + 1])
        assert "".join(p.removeprefix("##") for p in pieces) == word
    assert feature["word_starts"][0] == feature["word_ends"][0] == 0  # the root reads [CLS]
    assert feature["head_labels"] == example.heads
    # Truncation: words past max_seq_len are dropped from scoring and counted.
    short = task.build_features([example], tokenizer, 8, "dev")[0]
    assert example.scored == len(short["head_labels"]) < len(example.words)
    assert task.split_notes["dev"]["truncated_words"] == len(example.words) - example.scored


def test_tiny_parser_loss_falls_on_real_sentences(dev_examples, dp_model_dir):
    task = dp_task()
    tokenizer = load_tokenizer(task.config, dp_model_dir)
    torch.manual_seed(0)
    model = task.build_model(dp_model_dir)
    batch = Collator(tokenizer.pad_token_id)(task.build_features(dev_examples[:16], tokenizer, 128, "train"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    model.train()
    for _ in range(20):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, dp_model_dir):
    """run_finetune.py on the shipped small YAML: the seeded dev split, a tiny model, 30 steps."""
    from experiments import task_data

    work = tmp_path_factory.mktemp("dp-run")
    laid = task_data.lay_out("klue-dp", str(work / "data"), train_limit=120, eval_limit=40)
    env = dict(os.environ, OMP_NUM_THREADS="1", USE_TF="0")
    sets = {"data_dir": str(work / "data"), "ckpt_dir": str(work / "ckpt"), "model_name_or_path": dp_model_dir,
            "max_steps": 30, "train_batch_size": 8, "learning_rate": 1e-3, "logging_steps": 15, "save_steps": 0,
            "warmup_proportion": 0, "dp_arc_space": 32, "dp_type_space": 16, "num_threads": 1}
    argv = [sys.executable, "run_finetune.py", "--config_file", os.path.join("conf", "klue-dp", "electra-small.yaml")]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert laid.report_split == "dev"
    return work / "ckpt" / "klue-dp_small_v1"


@pytest.mark.slow  # a run_finetune.py subprocess: ~35 s on a shared 2-core machine
def test_shipped_yaml_trains_and_scores(trained_dir):
    results = json.loads((trained_dir / "results.json").read_text(encoding="utf-8"))
    final = [e for e in results["evaluations"] if e.get("final")][0]
    assert final["split"] == "dev"
    assert set(final["metrics"]) == {"uas_macro_f1", "las_macro_f1", "uas", "las"}
    assert results["best"]["split"] == "dev"
    # The written predictions score to the reported figures (plain UAS recomputed here).
    records = [json.loads(line) for line in (trained_dir / "predictions_dev.jsonl").read_text("utf-8").splitlines()]
    words = [w for r in records for w in r["words"]]
    assert len(records) == 40
    uas = 100 * np.mean([w["head"] == w["gold_head"] for w in words])
    assert final["metrics"]["uas"] == pytest.approx(uas)
    # 30 steps of a tiny model beat attaching every word to the root.
    root_only = 100 * np.mean([w["gold_head"] == 0 for w in words])
    assert final["metrics"]["uas"] > root_only


@pytest.mark.slow  # predict.py subprocess and an ONNX export: ~40 s on a shared 2-core machine
def test_predict_gives_each_words_head_and_relation_and_onnx_agrees(trained_dir, tmp_path):
    from convert.onnx_export import export_finetuned
    from finetune.inference import Predictor

    model_dir = str(trained_dir / "best_model")
    lines = ["'K팝스타3’ 유희열이 홍정희의 탈락에 눈물을 흘렸다.", "아이는 예정보다 일찍 태어나 병원에서 치료를 받던 상황이었다."]
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(lines + [""]) + "\n", encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", USE_TF="0")
    done = subprocess.run([sys.executable, "predict.py", "--model_dir", model_dir, "--input", str(inputs)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1  # the empty third line
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[2] == {"line": 3, "error": "empty line"}
    for record, line in zip(records, lines):
        words = record["words"]
        assert [w["word"] for w in words] == line.split()
        assert all(0 <= w["head"] <= len(words) and w["head"] != w["index"] for w in words)
        assert all(isinstance(w["relation"], str) for w in words)

    onnx_path, results = export_finetuned(model_dir, str(tmp_path / "dp.onnx"), seed=3, log=lambda _: None)
    assert [r.name.split(":")[0] for r in results] == ["heads", "relations", "head_probabilities",
                                                       "relation_probabilities"]
    assert all(r.ok for r in results)
    texts = [" ".join(e.split()) for e in lines] + ["재판부는 검찰의 공정한 수사에 대한 신뢰가 깨져 버려 최씨와 김씨가 정신적 피해를 봤다는 점을 인정했다."]
    torch_parses = Predictor(model_dir, batch_size=2).predict(texts)
    onnx_parses = Predictor(model_dir, onnx_path=onnx_path, batch_size=2).predict(texts)
    assert onnx_parses == torch_parses
    assert [w["head"] for w in torch_parses[0]["words"]] == [w["head"] for w in records[0]["words"]]
