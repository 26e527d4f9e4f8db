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
    source.write_text("\n".join(nsmc_reviews(800)) + "\n", encoding="utf-8")  # some 160 kB out: more than a pipe holds
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


def test_a_tsv_fed_to_a_single_sentence_model_is_named_once_and_its_column_can_be_chosen(nsmc_model, tmp_path,
                                                                                          capsys):
    lines = ["id\tdocument\tlabel"] + nsmc_lines("ratings_test.txt", 30)
    source = tmp_path / "ratings_test.txt"  # the NSMC file as it is
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    main(["--model_dir", nsmc_model, "--input", str(source), "--output", str(tmp_path / "whole.jsonl")])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "tab-separated" in line]
    assert warnings == [f"{source}:1: warning: the line holds 3 tab-separated fields, but this model reads one "
                        "text: each whole line is read as the text (--text_column N or NAME reads one field)"]
    main(["--model_dir", nsmc_model, "--input", str(source), "--output", str(tmp_path / "by_name.jsonl"),
          "--text_column", "document"])
    main(["--model_dir", nsmc_model, "--input", str(source), "--output", str(tmp_path / "by_number.jsonl"),
          "--text_column", "2"])
    assert "tab-separated" not in capsys.readouterr().err
    by_name = records_of((tmp_path / "by_name.jsonl").read_text(encoding="utf-8"))
    by_number = records_of((tmp_path / "by_number.jsonl").read_text(encoding="utf-8"))
    documents = [line.split("\t")[1] for line in lines[1:]]
    # By name the header names the column and is not predicted; by number every line is data.
    assert [r["line"] for r in by_name] == list(range(2, 32))
    assert [r.get("text") for r in by_name] == [d if d.strip() else None for d in documents]
    assert by_number[1:] == by_name and by_number[0]["text"] == "document"


def test_line_separators_are_escaped_and_a_leading_bom_is_not_text(nsmc_model, tmp_path, capsys):
    reviews = nsmc_reviews(3)
    source = tmp_path / "reviews.txt"
    # U+2028 and U+0085 inside a review: str.splitlines() and many JSON-lines readers split there.
    source.write_text("\ufeff" + reviews[0] + "\n" + reviews[1] + "\u2028" + reviews[2] + "\n", encoding="utf-8")
    assert main(["--model_dir", nsmc_model, "--input", str(source)]) == 0
    out = capsys.readouterr().out
    assert "\u2028" not in out and "\\u2028" in out
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [1, 2]
    assert records[0]["text"] == reviews[0] and records[1]["text"] == reviews[1] + "\u2028" + reviews[2]

    from finetune.predict_cli import json_line

    line = json_line({"id": "a\x85b\u2029c", "text": "x"})
    assert line.count("\n") == 1 and line.endswith("\n") and len(line.splitlines()) == 1
    assert json.loads(line) == {"id": "a\x85b\u2029c", "text": "x"}


def read_line_within(stream, seconds):
    """The next line of ``stream``, or None when none came within ``seconds``."""
    import threading

    got = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return got[0] if got else None


def test_answers_come_line_by_line_while_standard_input_stays_open(nsmc_model, tmp_path):
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "predict.py"), "--model_dir", nsmc_model],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=open(tmp_path / "stderr.txt", "wb"), cwd=ROOT, env=ENV)
    try:
        for n, review in enumerate(nsmc_reviews(2), 1):
            process.stdin.write(review.encode() + b"\n")
            process.stdin.flush()
            line = read_line_within(process.stdout, 240)  # start-up included; no EOF has been sent
            assert line, f"no answer to line {n} before the end of input"
            assert json.loads(line)["line"] == n and json.loads(line)["text"] == review
        process.stdin.close()
        assert process.wait(timeout=120) == 0
        assert process.stdout.read() == b""
    finally:
        process.kill()


def test_a_device_that_is_asked_for_and_absent_is_one_line(nsmc_model, tmp_path):
    import onnxruntime
    import torch

    from convert.onnx_export import export_finetuned

    source = tmp_path / "reviews.txt"
    source.write_text("\n".join(nsmc_reviews(2)) + "\n", encoding="utf-8")
    if not torch.cuda.is_available():
        with pytest.raises(UserInputError, match=r"^--device cuda: torch sees no CUDA device \(installed: torch "):
            main(["--model_dir", nsmc_model, "--input", str(source), "--device", "cuda"])
    with pytest.raises(UserInputError, match=r"^--device tpu: PyTorch runs on cpu, cuda or cuda:N"):
        main(["--model_dir", nsmc_model, "--input", str(source), "--device", "tpu"])
    onnx_path, _ = export_finetuned(nsmc_model, str(tmp_path / "m.onnx"), log=lambda _: None)
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(UserInputError, match=r"^--device cuda: onnxruntime \S+ here has no CUDAExecutionProvider "
                                                 r"\(available: .*CPUExecutionProvider.*\); CUDA needs"):
            main(["--model_dir", nsmc_model, "--onnx", onnx_path, "--input", str(source), "--device", "cuda"])
    assert main(["--model_dir", nsmc_model, "--onnx", onnx_path, "--input", str(source),
                 "--output", str(tmp_path / "out.jsonl"), "--device", "CPUExecutionProvider"]) == 0


@pytest.mark.timeout(120)  # counting a FIFO's lines ahead had read them away, then waited for a writer forever
def test_a_fifo_as_input_is_read_once(nsmc_model, tmp_path, capsys):
    import threading

    fifo = tmp_path / "reviews.fifo"
    os.mkfifo(fifo)
    reviews = nsmc_reviews(5)

    def write():
        with open(fifo, "w", encoding="utf-8") as f:
            f.write("\n".join(reviews) + "\n")

    threading.Thread(target=write, daemon=True).start()
    assert main(["--model_dir", nsmc_model, "--input", str(fifo)]) == 0
    assert [r["text"] for r in records_of(capsys.readouterr().out)] == reviews
