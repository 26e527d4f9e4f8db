"""predict.py's command line on a model fine-tuned on real NSMC reviews: outputs, pipes, shapes of input.

Most cases call ``finetune.predict_cli.main`` in-process (what predict.py runs under
``run_cli``); the pipe cases run predict.py itself, since they are about the process.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from finetune.predict_cli import main
from util.errors import UserInputError

from finetune_helpers import ROOT
from serving_models import nsmc_lines, nsmc_reviews

ENV = dict(os.environ, USE_TF="0", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def records_of(text):
    return [json.loads(line) for line in text.splitlines()]


def test_output_dash_is_standard_output(nsmc_model, tmp_path, monkeypatch, capsys):
    source = tmp_path / "reviews.txt"
    source.write_text("\n".join(nsmc_reviews(3)) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["--model_dir", nsmc_model, "--input", str(source), "--output", "-"]) == 0
    assert [r["line"] for r in records_of(capsys.readouterr().out)] == [1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["reviews.txt"]  # no file called "-"


def test_a_model_directory_without_tokenizer_files_is_one_line(nsmc_model, tmp_path):
    bare = tmp_path / "no_tokenizer"
    shutil.copytree(nsmc_model, bare)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (bare / name).unlink()
    with pytest.raises(UserInputError, match=r"no_tokenizer: no tokenizer files \(vocab.txt or tokenizer.json\)"):
        main(["--model_dir", str(bare)])


def test_max_seq_len_above_the_models_positions_is_refused_before_loading(nsmc_model, tmp_path):
    source = tmp_path / "long.txt"
    source.write_text(" ".join(nsmc_reviews(80)) + "\n", encoding="utf-8")  # far more than 128 tokens
    with pytest.raises(UserInputError, match=r"--max_seq_len 512 exceeds the model's 128 positions "
                                             r"\(max_position_embeddings in .*config.json\)"):
        main(["--model_dir", nsmc_model, "--input", str(source), "--max_seq_len", "512"])


def test_a_reader_that_closes_early_ends_the_run_quietly(nsmc_model, tmp_path):
    source = tmp_path / "reviews.txt"
    source.write_text("\n".join(nsmc_reviews(3000)) + "\n", encoding="utf-8")
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "predict.py"), "--model_dir", nsmc_model,
                                "--input", str(source), "--no-progress"], stdout=subprocess.PIPE,
                               stderr=open(tmp_path / "stderr.txt", "wb"), cwd=ROOT, env=ENV)
    first = process.stdout.readline()  # as `| head -1` reads
    process.stdout.close()
    process.wait(timeout=300)
    stderr = (tmp_path / "stderr.txt").read_text(encoding="utf-8")
    assert json.loads(first)["line"] == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert process.returncode == 141  # as a Unix tool ended by SIGPIPE
