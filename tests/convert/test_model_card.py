"""Model cards: generated into every converted and fine-tuned directory, from the run's own files.

The card's front matter is parsed as Hugging Face reads it (YAML between ``---`` lines), its
figures are compared with the JSON files they come from, and its loading code is executed
as written, from the directory's parent.
"""
import json
import os
import re
import sys

import pytest
import yaml

from tiny_checkpoint import bert_config, make_model_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "finetune"))
from finetune_helpers import make_tiny_electra, tiny_run_config  # noqa: E402


def read_card(directory):
    text = open(os.path.join(directory, "README.md"), encoding="utf-8").read()
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    assert match, "no YAML front matter"
    return yaml.safe_load(match.group(1)), match.group(2)


def run_loading_code(body, directory, monkeypatch):
    """Execute the card's python block from the directory's parent, as a user would."""
    code = re.search(r"```python\n(.*?)```", body, re.S).group(1)
    monkeypatch.chdir(os.path.dirname(os.path.abspath(directory)))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the code under test
    return scope


def test_converted_directories_get_cards_with_sizes_steps_and_parity(tmp_path, monkeypatch):
    from convert.pipeline import convert_checkpoint

    disc, gen = bert_config(32, 2, 2, 16, 120), bert_config(16, 1, 1, 16, 120)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen, scale=0.05)
    convert_checkpoint(model_dir, str(tmp_path / "disc"), str(tmp_path / "gen"), log=lambda _: None, seed=3)

    front, body = read_card(tmp_path / "disc")
    assert front["license"] == "apache-2.0" and front["library_name"] == "transformers"
    assert front["language"] == ["ko"] and "discriminator" in front["tags"]
    assert "# disc" in body and "| global step | 7 |" in body  # the final name, not the temporary one
    assert "ElectraForPreTraining: hidden 32, 2 layers, 2 heads" in body
    assert "| sequence length | 32 |" in body
    parity = json.load(open(tmp_path / "disc" / "parity.json", encoding="utf-8"))
    for check, error in parity["max_relative_error"].items():
        assert f"| {check} | {error:.2e} |" in body
    scope = run_loading_code(body, tmp_path / "disc", monkeypatch)
    assert tuple(scope["outputs"].logits.shape)[0] == 1

    front, body = read_card(tmp_path / "gen")
    assert front["pipeline_tag"] == "fill-mask" and "ElectraForMaskedLM: hidden 16, 1 layers" in body
    scope = run_loading_code(body, tmp_path / "gen", monkeypatch)
    assert scope["outputs"].logits.shape[-1] == 120


@pytest.mark.parametrize("tokenizer_type", ["wordpiece", "mecab_wordpiece"])
def test_fine_tuned_best_model_card_from_the_runs_files(tmp_path, monkeypatch, tokenizer_type):
    import torch

    from convert.model_card import write_finetuned_card
    from finetune.config import load_config
    from finetune.tasks import task_config_defaults
    from finetune.trainer import run

    torch.set_num_threads(1)
    model = make_tiny_electra(str(tmp_path / "tiny"), tokenizer_type=tokenizer_type)
    settings = tiny_run_config(model, tmp_path / "ckpt", task="nsmc_card", max_steps=6, logging_steps=3,
                               save_steps=3, learning_rate=2e-3, seed=4)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    run(load_config(str(tmp_path / "run.yaml"), extra_defaults=task_config_defaults()))
    best_model = tmp_path / "ckpt" / "nsmc_card" / "best_model"

    # Written by run_finetune itself when it saved best_model/: the selection split's figures.
    best = json.load(open(best_model / "best_result.json", encoding="utf-8"))
    front, body = read_card(best_model)
    assert front["pipeline_tag"] == "text-classification" and "nsmc" in front["tags"]
    result = front["model-index"][0]["results"][0]
    assert result["dataset"]["split"] == best["split"]
    assert result["metrics"] == [{"type": "accuracy", "value": round(best["metrics"]["accuracy"], 4)}]
    assert "| training file | `sample_reviews_train.txt` |" in body and "| seed | 4 |" in body
    assert str(tmp_path) not in body  # no local paths leak into a card meant for others
    assert ("trust_remote_code=True" in body) == (tokenizer_type == "mecab_wordpiece")
    assert "util." not in body  # the loading code needs transformers (and mecab), not this repository
    scope = run_loading_code(body, best_model, monkeypatch)
    assert tuple(scope["outputs"].logits.shape) == (1, 2)

    # Regenerated after the run, it reports the final evaluation and the trained steps.
    results = json.load(open(best_model.parent / "results.json", encoding="utf-8"))
    final = [e for e in results["evaluations"] if e.get("final")][0]
    write_finetuned_card(str(best_model))
    _, body = read_card(best_model)
    assert f"| {final['split']} | {final['step']} | {final['metrics']['accuracy']:.2f} |" in body
    assert f"| trained | {results['train']['steps']} optimizer steps = " in body
    assert "Final evaluation" in body

    # Every checkpoint-N/ carries its own card, with the evaluation taken at its step.
    checkpoint = best_model.parent / "checkpoint-3"
    at_3 = [e for e in results["evaluations"] if e["step"] == 3]
    front, body = read_card(checkpoint)
    assert at_3 and "# nsmc_card\n" in body
    assert f"| {at_3[0]['split']} | 3 | {at_3[0]['metrics']['accuracy']:.2f} |" in body
    assert "| trained | 3 optimizer steps |" in body and "Evaluation at this step" in body
    assert front["model-index"][0]["results"][0]["dataset"]["split"] == at_3[0]["split"]
