"""experiments/task_table.py: capped real splits, resumable runs, and the generated table.

The end-to-end check fine-tunes a tiny model on all eight task families from ../shared/data
(two seeds, a few steps, tiny caps) with the random-initialisation baseline, and reads the
table back against the runs' own results.json files.
"""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "finetune"))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
pytestmark = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")

from experiments import task_data, task_table  # noqa: E402


def data_rows(path):
    with open(path, "rb") as f:
        return [line for line in f.read().split(b"\n")[1:] if line.strip()]


def test_stand_in_splits_are_disjoint_capped_and_stated(tmp_path):
    data = task_data.lay_out("kornli", str(tmp_path / "kornli"), train_limit=100, eval_limit=50)
    train = data_rows(tmp_path / "kornli" / "multinli.train.ko.tsv")
    dev = data_rows(tmp_path / "kornli" / "xnli.dev.ko.tsv")
    test = data_rows(tmp_path / "kornli" / "xnli.test.ko.tsv")
    assert (len(train), len(dev), len(test)) == (100, 50, 50)
    assert not set(train) & set(dev)  # dev rows never trained on
    source = set(data_rows(os.path.join(SHARED, "kornli", "xnli.dev.ko.tsv")))
    assert set(train) <= source and set(dev) <= source  # real rows, byte for byte
    assert any("multinli.train.ko.tsv" in n and "split 90/10 with seed 0" in n for n in data.notes)
    again = task_data.lay_out("kornli", str(tmp_path / "again"), train_limit=100, eval_limit=50)
    assert data_rows(tmp_path / "again" / "multinli.train.ko.tsv") == train and again.notes == data.notes

    qa = task_data.lay_out("korquad", str(tmp_path / "qa"), train_limit=30, eval_limit=20)
    docs = [json.load(open(tmp_path / "qa" / name, encoding="utf-8"))
            for name in ("KorQuAD_v1.0_train.json", "KorQuAD_v1.0_dev.json")]
    titles = [{a["title"] for a in d["data"]} for d in docs]
    assert not titles[0] & titles[1] and qa.report_split == "dev"
    assert [task_data._questions(d["data"]) for d in docs] == [30, 20]

    ner = task_data.lay_out("naver-ner", str(tmp_path / "ner"), train_limit=40, eval_limit=10)
    assert ner.overrides["task"].startswith("klue-ner") and "KLUE-NER" in ner.notes[0]
    text = open(tmp_path / "ner" / "train.tsv", encoding="utf-8").read()
    assert text.count("\n## klue-ner") + text.startswith("## klue-ner") == 40


@pytest.mark.slow
def test_all_eight_tasks_two_seeds_with_random_init_then_resume(tmp_path, capsys):
    import torch

    from finetune_helpers import make_tiny_electra

    torch.set_num_threads(1)
    model = make_tiny_electra(str(tmp_path / "tiny"), max_positions=128)
    argv = ["--model_dir", model, "--seeds", "2", "--train_limit", "24", "--eval_limit", "16", "--max_steps", "2",
            "--logging_steps", "1", "--max_seq_len", "64", "--work", str(tmp_path / "work"),
            "--results_md", str(tmp_path / "results.md")]
    task_table.main(argv)
    table = open(tmp_path / "work" / "task_table.md", encoding="utf-8").read()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 + len(task_table.PUBLISHED)  # header, our two models, published
    assert rows[1].count("(n=2)") == 8 and rows[2].count("(n=2)") == 8
    # Each cell is the mean of the two seeds' final test (or dev) metric, from their results.json.
    for label, row in (("pretrained", rows[1]), ("random_init", rows[2])):
        scores = []
        for seed in (42, 43):
            run_dir = tmp_path / "work" / "runs" / label / "nsmc" / f"seed{seed}" / "nsmc_small_v1"
            results = json.load(open(run_dir / "results.json", encoding="utf-8"))
            scores.append(task_table.final_metrics(results, "test")["accuracy"])
        assert row.split(" | ")[1].startswith(task_table.cell(scores))
    assert "max_steps -1 → 2" in table and "KLUE-NER v1.1 dev" in table and "config_dir" not in table
    assert "<!-- task_table -->" in open(tmp_path / "results.md", encoding="utf-8").read()

    # Rerunning skips every finished run and writes the same table.
    capsys.readouterr()
    task_table.main(argv)
    out = capsys.readouterr().out
    assert out.count("done before") == 8 * 2 * 2 and "== nsmc seed 42: /" not in out.replace("done before", "")
    assert open(tmp_path / "work" / "task_table.md", encoding="utf-8").read() == table


def test_only_runs_one_row_and_a_later_full_run_reuses_it_with_overrides_stated(tmp_path, capsys):
    import torch

    from finetune_helpers import make_tiny_electra

    torch.set_num_threads(1)
    model = make_tiny_electra(str(tmp_path / "tiny"), max_positions=64)
    argv = ["--model_dir", model, "--seeds", "1", "--tasks", "nsmc", "--train_limit", "16", "--eval_limit", "8",
            "--max_steps", "1", "--logging_steps", "1", "--set", "learning_rate=3e-4", "--set", "warmup_proportion=0.1", "--work", str(tmp_path / "work")]
    task_table.main(argv + ["--only", "random_init"])
    runs = tmp_path / "work" / "runs"
    assert sorted(os.listdir(runs)) == ["random_init"]
    rows = [line for line in open(tmp_path / "work" / "task_table.md").read().splitlines() if "(n=1)" in line]
    assert len(rows) == 1 and "random initialisation" in rows[0]

    task_table.main(argv + ["--table_only"])  # starts nothing: the pretrained row stays empty
    assert sorted(os.listdir(runs)) == ["random_init"]
    rows = [line for line in open(tmp_path / "work" / "task_table.md").read().splitlines() if "(this model)" in line]
    assert rows and "(n=" not in rows[0]

    capsys.readouterr()
    task_table.main(argv)
    out = capsys.readouterr().out
    assert "== nsmc seed 42: done before" in out  # the random-init run, not redone
    assert sorted(os.listdir(runs)) == ["pretrained", "random_init"]
    table = open(tmp_path / "work" / "task_table.md").read()
    assert len([line for line in table.splitlines() if "(n=1)" in line]) == 2
    assert "learning_rate 5e-5 → 0.0003" in table and "warmup_proportion 0 → 0.1" in table  # overrides stated


def test_korquad_in_a_short_window_gets_a_question_and_stride_that_fit(tmp_path):
    import torch

    from finetune_helpers import make_tiny_electra

    torch.set_num_threads(1)
    model = make_tiny_electra(str(tmp_path / "tiny"), max_positions=64)
    task_table.main(["--model_dir", model, "--seeds", "1", "--tasks", "korquad", "--train_limit", "8",
                     "--eval_limit", "4", "--max_steps", "1", "--work", str(tmp_path / "work"), "--no-random_init"])
    table = open(tmp_path / "work" / "task_table.md", encoding="utf-8").read()
    assert "max_query_length 64 → 32" in table and "doc_stride 128 → 16" in table
    assert "max_seq_len cut to the model's 64 positions" in table
