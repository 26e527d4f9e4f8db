"""The command line: an original Dialog-KoELECTRA YAML runs as is; mistakes end in one line and exit 1."""
import json
import os
import re
import subprocess
import sys

import pytest

import run_finetune
from util.errors import run_cli

from finetune_helpers import ROOT, tiny_run_config
from test_config import original_yaml


def test_original_yaml_runs_unmodified(tmp_path, tiny_model_dir):
    """Dialog-KoELECTRA's nsmc/electra-small.yaml, paths changed, everything else as published."""
    path = original_yaml(tmp_path, tiny_model_dir)
    # As a user's shell has it: nothing set that would hide TensorFlow's start-up lines.
    env = {k: v for k, v in os.environ.items() if k not in ("USE_TF", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "run_finetune.py", "--config_file", path, "--reinit"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # Fine-tuning needs only PyTorch: no TensorFlow start-up lines (oneDNN, cpu_feature_guard).
    assert "oneDNN" not in done.stderr and "cpu_feature_guard" not in done.stderr, done.stderr[:2000]
    # Log lines never continue a progress bar's line (tqdm redraws with \r; a line is a stretch between any two).
    pieces = re.split(r"[\r\n]", done.stderr)
    assert any("fine-tuning nsmc_small_v1:" in p for p in pieces) and any(" INFO " in p for p in pieces)
    assert not [p for p in pieces if "%|" in p and " INFO " in p], done.stderr[-1500:]
    results = json.loads((tmp_path / "model" / "nsmc_small_v1" / "results.json").read_text(encoding="utf-8"))
    # 300 examples, batch 32, 10 epochs = 100 steps; logging_steps 100: one evaluation, on test.
    assert [(e["step"], e["split"]) for e in results["evaluations"]] == [(100, "test"), (100, "test")]
    assert results["evaluations"][1]["final"] is True
    assert "best test accuracy" in done.stdout
    assert os.path.isdir(tmp_path / "model" / "nsmc_small_v1" / "best_model")


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(lambda: run_finetune.main(argv))
    return e.value.code, capsys.readouterr().err.strip()


def test_unknown_key_exits_1_with_one_line(tmp_path, write_yaml, tiny_model_dir, capsys):
    values = dict(tiny_run_config(tiny_model_dir, tmp_path), warmup_steps=10)
    path = write_yaml(values)
    code, err = run_main(["--config_file", path], capsys)
    assert code == 1
    assert err == f"error: {path}:{len(values)}: unknown key 'warmup_steps' (did you mean 'max_steps'?)"


def test_bad_label_exits_1_naming_file_and_line(tmp_path, write_yaml, tiny_model_dir, capsys):
    train = tmp_path / "sample_reviews_train.txt"  # the train_file tiny_run_config names
    train.write_text("id\tdocument\tlabel\n1\t재밌다\t1\n2\t별로다\tnegative\n", encoding="utf-8")
    path = write_yaml(tiny_run_config(tiny_model_dir, tmp_path, data_dir=str(tmp_path), test_file="", do_eval=False))
    code, err = run_main(["--config_file", path], capsys)
    assert (code, err) == (1, f"error: {train}:3: label 'negative' is not one of 0, 1")


def test_set_overrides_a_key(tmp_path, write_yaml, tiny_model_dir, capsys):
    path = write_yaml(tiny_run_config(tiny_model_dir, tmp_path))
    code, err = run_main(["--config_file", path, "--set", "train_batch_size=0"], capsys)
    assert code == 1 and err == "error: command-line override train_batch_size: train_batch_size must be positive, got 0"


def test_a_second_run_into_the_same_output_dir_names_the_first(tmp_path, write_yaml, tiny_model_dir, capsys):
    output = tmp_path / "nsmc_tiny"  # ckpt_dir/<task> of tiny_run_config
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from util.dir_lock import hold\n"
                               f"with hold({str(output)!r}):\n    print('held', flush=True); sys.stdin.read()"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = run_main(["--config_file", write_yaml(tiny_run_config(tiny_model_dir, tmp_path))], capsys)
    finally:
        holder.communicate("")
    assert code == 1
    assert err == (f"error: output dir {output} is in use by PID {holder.pid} (lock {output}/.lock): wait for "
                   "that run to end or stop it, or write to another directory")


def test_capped_evaluation_reused_final_score_and_one_summary(tmp_path, write_yaml, tiny_model_dir, capsys, caplog,
                                                              monkeypatch):
    """--set max_eval_examples caps the scored test set (shown in results and the summary); the
    final evaluation reuses the best step's score instead of scoring the same model again; the
    mecab decision is logged once and the closing summary printed once."""
    import logging

    from finetune import evaluation

    calls = []
    real_evaluate = evaluation.evaluate

    def counting(model, task, split, *args):
        calls.append((split.name, len(split.examples)))
        return real_evaluate(model, task, split, *args)

    monkeypatch.setattr(evaluation, "evaluate", counting)
    path = write_yaml(tiny_run_config(tiny_model_dir, tmp_path / "ckpt", max_steps=20, save_steps=0))
    with caplog.at_level(logging.INFO):
        run_finetune.main(["--config_file", path, "--set", "max_eval_examples=25"])
    results = json.loads((tmp_path / "ckpt" / "nsmc_tiny" / "results.json").read_text(encoding="utf-8"))
    assert results["inputs"]["test"]["evaluated_examples"] == 25
    assert results["inputs"]["test"]["examples_in_file"] > 25
    assert calls == [("test", 25), ("test", 25)]  # steps 10 and 20; none for the final evaluation
    final = [e for e in results["evaluations"] if e.get("final")]
    assert len(final) == 1 and final[0]["metrics"] == results["best"]["metrics"]
    predictions = (tmp_path / "ckpt" / "nsmc_tiny" / "predictions_test.jsonl").read_text(encoding="utf-8")
    assert len(predictions.splitlines()) == 25
    out = capsys.readouterr().out
    assert out.count("published protocol") == 1 and "test scores above are on 25 of its" in out
    assert "published protocol" not in caplog.text
    assert sum("mecab pre-splitting: off" in r.getMessage() for r in caplog.records) == 1
