"""Tiny end-to-end fine-tuning runs: what they learn, what they write, and that they repeat."""
import glob
import json
import os
import random

import pytest
import torch

from finetune.config import load_config
from finetune.models import reinit_top_layer
from finetune.tasks import get_task
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import SAMPLE_DIR, tiny_run_config


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_classification_learns_and_writes_outputs(tmp_path, write_yaml, tiny_model_dir):
    ckpt = tmp_path / "ckpt"
    config = load_config(write_yaml(tiny_run_config(tiny_model_dir, ckpt, num_train_epochs=5)))
    results = run(config)

    out = ckpt / "nsmc_tiny"
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(results))
    during = [e for e in saved["evaluations"] if not e.get("final")]
    # 300 examples / batch 16 = 19 steps an epoch, 95 in all: evaluations every 10 steps and at the end.
    assert [e["step"] for e in during] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    assert {e["split"] for e in during} == {"test"}  # no dev file: select on test
    best = saved["best"]
    assert best["score"] == max(e["metrics"]["accuracy"] for e in during)
    assert best["score"] >= 80.0, "the sample set's sentiment words are learnable"

    # The best checkpoint is a complete transformers directory that reproduces its score.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out / "best_model")
    tokenizer = AutoTokenizer.from_pretrained(out / "best_model")
    # NSMC names its data's labels 0/1 (finetune/tasks/nsmc.py); the ids stay the file values' order.
    assert model.config.id2label == {0: "negative", 1: "positive"}
    predictions = read_jsonl(out / "predictions_test.jsonl")
    assert len(predictions) == 100
    with open(os.path.join(SAMPLE_DIR, "sample_reviews_test.txt"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    assert [p["text_a"] for p in predictions] == [r[1] for r in rows]
    batch = tokenizer([r[1] for r in rows], padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    assert [str(p) for p in predicted] == [p["prediction"] for p in predictions]
    accuracy = 100.0 * sum(p["prediction"] == r[2] for p, r in zip(predictions, rows)) / len(rows)
    assert accuracy == pytest.approx(best["score"])
    final = [e for e in saved["evaluations"] if e.get("final")]
    assert final[0]["metrics"]["accuracy"] == pytest.approx(best["score"])

    assert glob.glob(str(out / "tensorboard" / "events.out.tfevents.*"))
    assert not [p for p in os.listdir(out) if p.startswith(".")], "no temporary directories left behind"

    # The saved checkpoint evaluates on its own (do_train: false) to the same score.
    again = run(load_config(write_yaml(tiny_run_config(out / "best_model", tmp_path / "again", do_train=False),
                                       name="eval.yaml")))
    assert again["evaluations"][0]["metrics"]["accuracy"] == pytest.approx(best["score"])


def write_korsts(path, pairs):
    with open(path, "w", encoding="utf-8") as f:
        f.write("genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n")
        for i, (a, b, score) in enumerate(pairs):
            f.write(f"main-captions\tsample\t2026\t{i:04d}\t{score:.3f}\t{a}\t{b}\n")


def test_regression_run(tmp_path, write_yaml, tiny_model_dir):
    # KorSTS-format pairs from the sample reviews: similar when the sentiment agrees.
    with open(os.path.join(SAMPLE_DIR, "sample_reviews_train.txt"), encoding="utf-8") as f:
        reviews = [line.rstrip("\n").split("\t")[1:] for line in f][1:]
    rng = random.Random(3)
    pairs = []
    for _ in range(240):
        (a, la), (b, lb) = rng.sample(reviews, 2)
        pairs.append((a, b, (4.0 if la == lb else 1.0) + rng.random()))
    for name, chunk in (("sts-train.tsv", pairs[:160]), ("sts-dev.tsv", pairs[160:200]), ("sts-test.tsv", pairs[200:])):
        write_korsts(tmp_path / name, chunk)
    config = load_config(write_yaml(tiny_run_config(
        tiny_model_dir, tmp_path / "ckpt", task="korsts_tiny", data_dir=str(tmp_path), train_file="sts-train.tsv",
        dev_file="sts-dev.tsv", test_file="sts-test.tsv", num_train_epochs=2, evaluate_test_during_training=True)))
    results = run(config)

    during = [e for e in results["evaluations"] if not e.get("final")]
    assert [(e["step"], e["split"]) for e in during] == [(10, "dev"), (10, "test"), (20, "dev"), (20, "test")]
    assert results["primary_metric"] == "spearman" and results["best"]["split"] == "dev"
    for e in results["evaluations"]:
        assert set(e["metrics"]) == {"spearman", "pearson"} and -100 <= e["metrics"]["spearman"] <= 100
    predictions = read_jsonl(tmp_path / "ckpt" / "korsts_tiny" / "predictions_test.jsonl")
    assert len(predictions) == 40 and all(isinstance(p["prediction"], float) for p in predictions)
    assert [p["label"] for p in predictions] == pytest.approx([s for _, _, s in pairs[200:]], abs=1e-3)
    assert os.path.isfile(tmp_path / "ckpt" / "korsts_tiny" / "predictions_dev.jsonl")


def test_same_seed_same_run_and_accumulation_steps(tmp_path, write_yaml, tiny_model_dir):
    def once(name, **values):
        config = load_config(write_yaml(tiny_run_config(tiny_model_dir, tmp_path / name, logging_steps=4,
                                                        **values), name=f"{name}.yaml"))
        return run(config)["evaluations"]

    first = once("a", max_steps=8)
    assert first == once("b", max_steps=8)
    assert [e["step"] for e in first if not e.get("final")] == [4, 8]
    # 19 batches an epoch in steps of 2 batches: 10 optimizer steps.
    accumulated = once("c", gradient_accumulation_steps=2, bf16=True, group_by_length=False)
    assert [e["step"] for e in accumulated if not e.get("final")] == [4, 8, 10]


def test_do_reinit_changes_only_the_top_layer(tiny_model_dir, write_yaml, tmp_path):
    config = load_config(write_yaml(tiny_run_config(tiny_model_dir, tmp_path)))
    torch.manual_seed(0)
    model = get_task("nsmc", config).build_model(tiny_model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    reinit_top_layer(model)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    top = "electra.encoder.layer.1."
    assert changed and all(k.startswith(top) for k in changed)
    # Every weight matrix of the top layer is drawn afresh (biases and LayerNorms were already 0/1).
    assert {k for k in before if k.startswith(top) and k.endswith(".weight") and before[k].dim() == 2} <= changed


def test_hub_name_gives_one_line_error(tmp_path, write_yaml, tiny_model_dir):
    path = write_yaml(tiny_run_config(tiny_model_dir, tmp_path,
                                      model_name_or_path="skplanet/dialog-koelectra-small-discriminator"))
    with pytest.raises(UserInputError) as e:
        run(load_config(path))
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    assert "is not a local directory" in message and "pytorch_convert.py" in message


def test_ckpt_dir_blocked_by_a_file_is_one_line_before_any_work(tmp_path, write_yaml, tiny_model_dir, monkeypatch):
    in_the_way = tmp_path / "ckpt"
    in_the_way.write_text("x")
    path = write_yaml(tiny_run_config(tiny_model_dir, in_the_way))
    config = load_config(path)
    from finetune import data

    monkeypatch.setattr(data, "load_splits", lambda *a, **k: pytest.fail("read the data before checking ckpt_dir"))
    with pytest.raises(UserInputError) as e:
        run(config)
    assert str(e.value) == (f"{path}:6: ckpt_dir {in_the_way}/nsmc_tiny cannot be created: "
                            f"{in_the_way} is a file")


def damage_config(directory):
    (directory / "config.json").write_text("{", encoding="utf-8")


def damage_weights_missing(directory):
    (directory / "model.safetensors").unlink()


def damage_weights_cut_short(directory):
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # an interrupted copy


@pytest.mark.parametrize("damage", [damage_config, damage_weights_missing, damage_weights_cut_short])
def test_damaged_model_directory_is_one_line_naming_it(tmp_path, write_yaml, tiny_model_dir, damage):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    damage(model)
    with pytest.raises(UserInputError) as e:
        run(load_config(write_yaml(tiny_run_config(str(model), tmp_path / "ckpt"))))
    message = str(e.value)
    # A config.json that is not JSON is named with its line by the vocab check, which reads it first.
    named = (f"{model}/config.json:1: malformed JSON (" if damage is damage_config
             else f"{model}: cannot load the model (")
    assert "\n" not in message and message.startswith(named)


def test_do_reinit_is_dialog_koelectras_xavier_uniform(tiny_model_dir, write_yaml, tmp_path):
    config = load_config(write_yaml(tiny_run_config(tiny_model_dir, tmp_path)))
    model = get_task("nsmc", config).build_model(tiny_model_dir)
    top = model.electra.encoder.layer[-1]
    torch.manual_seed(5)
    reinit_top_layer(model)
    # The rule of Dialog-KoELECTRA's init_layer, drawn from the same seed in parameter order.
    torch.manual_seed(5)
    for name, weight in top.named_parameters():
        if name.endswith(".bias"):
            assert torch.count_nonzero(weight) == 0, name
        elif "LayerNorm.weight" in name:
            assert torch.all(weight == 1.0), name
        else:
            expected = torch.empty_like(weight)
            torch.nn.init.xavier_uniform_(expected)
            assert torch.equal(weight, expected), name
    # Xavier-uniform, not N(0, 0.02): hidden 32 -> 32 gives bound sqrt(6 / 64) ~ 0.31, std ~ 0.18.
    query = top.attention.self.query.weight
    assert 0.12 < float(query.std()) < 0.24 and float(query.abs().max()) <= (6 / 64) ** 0.5
