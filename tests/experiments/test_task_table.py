"""experiments/task_table.py: capped real splits, resumable runs, and the generated table.

The end-to-end check fine-tunes a tiny model on every task family from ../shared/data
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



def test_naver_ner_is_not_laid_out_twice_and_the_notes_say_why(tmp_path):
    # KLUE-NER's split is the table's NER column; Naver NER (not at hand) gets a note, not a rerun of it.
    assert "naver-ner" not in task_data.TASKS and "naver-ner" not in task_table.METRICS
    with pytest.raises(ValueError, match="not redistributable"):
        task_data.lay_out("naver-ner", str(tmp_path / "ner"))
    assert not os.path.exists(tmp_path / "ner")
    with pytest.raises(SystemExit):
        task_table.parse_args(["--model_dir", "x", "--tasks", "nsmc,naver-ner"])
    args = task_table.parse_args(["--model_dir", "x"])
    assert args.tasks == list(task_data.TASKS)
    table = task_table.build_table([], {}, args)
    assert "NER (entity F1)" not in table and "KLUE-NER (entity / char macro F1)" in table
    note = [line for line in table.splitlines() if line.startswith("- **Naver NER**")]
    assert len(note) == 1 and "not redistributable" in note[0] and "85.51" in note[0] and "84.65" in note[0]


@pytest.mark.slow
def test_all_tasks_two_seeds_with_random_init_then_resume(tmp_path, capsys):
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
    n_tasks = len(task_table.METRICS)
    assert rows[1].count("(n=2") == n_tasks and rows[2].count("(n=2") == n_tasks
    # Each cell is the mean of the two seeds' final test (or dev) metric, from their results.json.
    for label, row in (("pretrained", rows[1]), ("random_init", rows[2])):
        scores = []
        for seed in (42, 43):
            run_dir = tmp_path / "work" / "runs" / label / "nsmc" / f"seed{seed}" / "nsmc_small_v1"
            results = json.load(open(run_dir / "results.json", encoding="utf-8"))
            scores.append(task_table.final_metrics(results, "test")["accuracy"])
        assert row.split(" | ")[1].startswith(task_table.cell(scores))
    assert "max_steps -1 → 2" in table and "`klue-ner-v1.1_dev`" in table and "config_dir" not in table
    assert "not redistributable" in table and "naver-ner" not in os.listdir(tmp_path / "work" / "runs" / "pretrained")
    assert "<!-- task_table -->" in open(tmp_path / "results.md", encoding="utf-8").read()

    # Rerunning skips every finished run and writes the same table.
    capsys.readouterr()
    task_table.main(argv)
    out = capsys.readouterr().out
    assert out.count("done before") == len(task_table.METRICS) * 2 * 2 and "== nsmc seed 42: /" not in out.replace("done before", "")
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
    rows = [line for line in open(tmp_path / "work" / "task_table.md").read().splitlines() if "(n=1" in line]
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
    assert len([line for line in table.splitlines() if "(n=1" in line]) == 2
    assert "learning_rate 5e-5 → 0.0003" in table and "warmup_proportion 0 → 0.1" in table  # overrides stated


def test_also_adds_a_row_per_model_and_refuses_a_different_sequence_length(tmp_path, capsys):
    import torch

    from finetune_helpers import make_tiny_electra
    from util.errors import UserInputError

    torch.set_num_threads(1)
    base = make_tiny_electra(str(tmp_path / "base"), max_positions=64)
    continued = make_tiny_electra(str(tmp_path / "continued"), max_positions=64)
    argv = ["--model_dir", base, "--also", f"dialogue={continued}", "--seeds", "1", "--tasks", "nsmc",
            "--train_limit", "16", "--eval_limit", "8", "--max_steps", "1", "--work", str(tmp_path / "work"),
            "--no-random_init"]
    task_table.main(argv + ["--only", "dialogue"])
    runs = tmp_path / "work" / "runs"
    assert sorted(os.listdir(runs)) == ["dialogue"]
    task_table.main(argv)
    table = open(tmp_path / "work" / "task_table.md", encoding="utf-8").read()
    row = [line for line in table.splitlines() if line.startswith(f"| dialogue (`{continued}`)")]
    results = json.load(open(runs / "dialogue" / "nsmc" / "seed42" / "nsmc_small_v1" / "results.json"))
    # One step of a tiny model may collapse (finetune/collapse.py); the cell says so when it did.
    assert len(row) == 1 and row[0].split(" | ")[1].rstrip(" |") == task_table.cell(
        [task_table.final_metrics(results, "test")["accuracy"]]) + " " + task_table.runs_note(
        1, len(results.get("collapsed", {})))
    assert len([line for line in table.splitlines() if "(n=1" in line]) == 2

    longer = make_tiny_electra(str(tmp_path / "longer"), max_positions=128)
    with pytest.raises(UserInputError, match="max_position_embeddings 128, but --model_dir has 64"):
        task_table.main(["--model_dir", base, "--also", f"long={longer}", "--table_only", "--tasks", "nsmc",
                         "--work", str(tmp_path / "work2")])
    for bad, message in ((["--also", "nolabel"], "expected LABEL=DIR"), (["--also", f"random_init={base}"], "taken"),
                         (["--only", "nobody"], "not a row of this table")):
        with pytest.raises(SystemExit):
            task_table.parse_args(["--model_dir", base] + bad)
        assert message in capsys.readouterr().err


def test_pretraining_corpus_text_leaves_the_evaluation_split_and_the_notes_say_so(tmp_path):
    import torch

    from finetune_helpers import make_tiny_electra

    torch.set_num_threads(1)
    model = make_tiny_electra(str(tmp_path / "tiny"), max_positions=64)
    task_data.lay_out("klue-nli", str(tmp_path / "peek"), 16, 12, 0)
    held_out = json.load(open(tmp_path / "peek" / "klue-nli-v1.1_dev.json", encoding="utf-8"))
    (tmp_path / "corpus.txt").write_text(held_out[0]["premise"] + "\n", encoding="utf-8")
    leaked = sum(1 for e in held_out if e["premise"] == held_out[0]["premise"])
    task_table.main(["--model_dir", model, "--seeds", "1", "--tasks", "klue-nli,nsmc", "--train_limit", "16",
                     "--eval_limit", "12", "--max_steps", "1", "--work", str(tmp_path / "work"), "--no-random_init",
                     "--pretraining_corpus", str(tmp_path / "corpus.txt")])
    table = open(tmp_path / "work" / "task_table.md", encoding="utf-8").read()
    assert f"{leaked} of 12 examples of `klue-nli-v1.1_dev.json`" in table
    assert "no evaluation example holds a sentence of the models' pretraining corpus" in table  # nsmc
    evaluated = json.load(open(tmp_path / "work" / "data" / "klue-nli" / "klue-nli-v1.1_dev.json", encoding="utf-8"))
    assert len(evaluated) == 12 - leaked and held_out[0]["premise"] not in [e["premise"] for e in evaluated]
    assert not [n for n in os.listdir(tmp_path / "work" / "data") if "staging" in n]


def one_step_table(tmp_path, task):
    """task_table on one task: a tiny 64-position model, one seed, one step; returns the table."""
    import torch

    from finetune_helpers import make_tiny_electra

    torch.set_num_threads(1)
    model = make_tiny_electra(str(tmp_path / "tiny"), max_positions=64)
    task_table.main(["--model_dir", model, "--seeds", "1", "--tasks", task, "--train_limit", "8",
                     "--eval_limit", "4", "--max_steps", "1", "--work", str(tmp_path / "work"), "--no-random_init"])
    return open(tmp_path / "work" / "task_table.md", encoding="utf-8").read()


def test_korquad_in_a_short_window_gets_a_question_and_stride_that_fit(tmp_path):
    table = one_step_table(tmp_path, "korquad")
    assert "- Not run for this table (left out of `--tasks`): NSMC, Question Pair, Hate Speech," in table
    assert "max_query_length 64 → 32" in table and "doc_stride 128 → 16" in table
    assert "max_seq_len cut to the model's 64 positions" in table


def test_klue_dp_column_has_klue_and_plain_attachment_scores_of_its_runs(tmp_path):
    table = one_step_table(tmp_path, "klue-dp")
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")]
    assert rows[0][1] == "KLUE-DP (UAS / LAS macro F1 as KLUE; plain UAS / LAS) |"
    results = json.load(open(tmp_path / "work" / "runs" / "pretrained" / "klue-dp" / "seed42" / "klue-dp_small_v1"
                             / "results.json", encoding="utf-8"))
    metrics = task_table.final_metrics(results, "dev")
    expected = " / ".join(f"{metrics[k]:.2f}" for k in ("uas_macro_f1", "las_macro_f1", "uas", "las"))
    assert rows[1][1] == expected + " (n=1) |"
    # KLUE's README figures for its DP "UAS"/"LAS" (macro F1), none for plain accuracy.
    assert "| *koELECTRA-base (KLUE README)*, published | 92.90 / 87.77 / – / – |" in table
    assert "KLUE-DP v1.1 dev" in table and "split 90/10 with seed 0" in table


def test_cell_gives_median_and_spread_beside_mean_and_std():
    import numpy as np

    # Five seeds, one diverged: the median stays at 3 while the mean jumps to 22; min-max range.
    five = [4.0, 1.0, 100.0, 3.0, 2.0]
    assert task_table.cell(five) == f"3.00 [1.00–100.00] · 22.00 ± {np.std(five, ddof=1):.2f}"
    # Past five seeds the bracket is the interquartile range (numpy's linear percentiles agree).
    six = [6.0, 1.0, 2.0, 5.0, 3.0, 4.0]
    q1, q3 = np.percentile(six, [25, 75])
    assert (q1, q3) == (2.25, 4.75)
    assert task_table.cell(six) == f"3.50 [{q1:.2f}–{q3:.2f}] · 3.50 ± {np.std(six, ddof=1):.2f}"
    assert task_table.spread(six)[0] == "IQR" and task_table.spread(five)[0] == "range"
    assert task_table.cell([81.5]) == "81.50"
    assert task_table.parse_args(["--model_dir", "x"]).seeds == 5


@pytest.mark.parametrize("task,unit", [("klue-nli", "json"), ("klue-sts", "json"), ("klue-ner", "tsv")])
def test_klue_layouts_split_dev_into_train_and_held_out(tmp_path, task, unit):
    from finetune.config import load_config
    from finetune.tasks import get_task, task_config_defaults

    data = task_data.lay_out(task, str(tmp_path), train_limit=40, eval_limit=20)
    name = task_data.KLUE_FILES[task]
    assert data.report_split == "dev" and "split 80/20 with seed 0" in data.notes[0]
    config = load_config(os.path.join(ROOT, "conf", task, "electra-small.yaml"), extra_defaults=task_config_defaults(),
                         overrides={"data_dir": str(tmp_path), "model_name_or_path": str(tmp_path)})
    task_obj = get_task(config.task, config)
    train = task_obj.read_examples(str(tmp_path / f"{name}_train.{unit}"), "train")
    dev = task_obj.read_examples(str(tmp_path / f"{name}_dev.{unit}"), "dev")
    assert (len(train), len(dev)) == (40, 20)
    assert not {e.guid for e in train} & {e.guid for e in dev}  # held-out examples never trained on


def test_klue_ner_split_leaves_the_files_tabbed_column_comment_out_of_every_sentence(tmp_path):
    # The release opens with '## ' comments; one, '## 컬럼명 : CHAR<TAB>NE_TAG', has a tab like a
    # sentence header '## guid<TAB>sentence' has: it must not be taken into the first sentence.
    source = os.path.join(SHARED, "klue-dev", "klue-ner-v1.1", "klue-ner-v1.1_dev.tsv")
    header_lines = [line for line in open(source, encoding="utf-8").read().split("\n") if line.startswith("## ")]
    assert any("\t" in line and not line.startswith("## klue-ner-v1_dev_") for line in header_lines)
    task_data.lay_out("klue-ner", str(tmp_path))
    sentences = []
    for split in ("train", "dev"):
        text = open(tmp_path / f"klue-ner-v1.1_{split}.tsv", encoding="utf-8").read()
        sentences += [block for block in text.split("\n\n") if block.strip()]
    assert len(sentences) == 5000
    for block in sentences:
        headers = [line for line in block.split("\n") if line.startswith("##")]
        assert len(headers) == 1 and headers[0].startswith("## klue-ner-v1_dev_"), block[:120]


@pytest.mark.parametrize("task,files", [("intent-3i4k", ("fci_train_val.txt", "fci_test.txt")),
                                        ("intent-chatbot", ("train.csv", "test.csv"))])
def test_intent_layouts_read_through_the_generic_task(tmp_path, task, files):
    from finetune.config import load_config
    from finetune.tasks import get_task, task_config_defaults

    data = task_data.lay_out(task, str(tmp_path), train_limit=50, eval_limit=30)
    config = load_config(os.path.join(ROOT, "conf", task, "electra-small.yaml"), extra_defaults=task_config_defaults(),
                         overrides={"data_dir": str(tmp_path), "model_name_or_path": str(tmp_path)})
    task_obj = get_task(config.task, config)
    train, test = (task_obj.read_examples(str(tmp_path / name), split) for name, split in zip(files, ("train", "test")))
    assert (len(train), len(test)) == (50, 30) and data.report_split == "test"
    assert task_obj.labels() == [str(i) for i in range(7 if task == "intent-3i4k" else 3)]
    if task == "intent-chatbot":  # split by distinct question (3i4k's official split repeats a few)
        assert not {e.text_a for e in train} & {e.text_a for e in test}


def test_a_collapsed_run_is_marked_in_its_cell_and_in_the_notes(tmp_path):
    # Hate speech at 1e-3 for one epoch of 512 comments: the tiny model predicts 'none' for every
    # comment (macro recall 33.33), as the run did; the cell says so beside its number.
    import torch

    from finetune_helpers import make_tiny_electra

    torch.set_num_threads(1)
    hate = os.path.join(SHARED, "korean-hate-speech", "koelectra", "train.tsv")
    texts = [line.split("\t")[1] for line in open(hate, encoding="utf-8")][1:]
    model = make_tiny_electra(str(tmp_path / "tiny"), vocab_size=4000, texts=texts, max_positions=64)
    task_table.main(["--model_dir", model, "--seeds", "1", "--tasks", "hate-speech", "--train_limit", "512",
                     "--eval_limit", "400", "--num_train_epochs", "1", "--set", "learning_rate=1e-3",
                     "--set", "eval_all_checkpoints=false", "--work", str(tmp_path / "work"), "--no-random_init"])
    results = json.load(open(tmp_path / "work" / "runs" / "pretrained" / "hate-speech" / "seed42"
                             / "hate-speech_small_v1" / "results.json", encoding="utf-8"))
    assert results["collapsed"]["test"]["kind"] == "one_class"
    table = open(tmp_path / "work" / "task_table.md", encoding="utf-8").read()
    row = [line for line in table.splitlines() if "(this model)" in line][0]
    macro_f1 = task_table.final_metrics(results, "test")["macro_f1"]
    assert row.split(" | ")[1] == f"{macro_f1:.2f} (n=1, all collapsed) |"
    assert "- *collapsed*: " in table and "finetune/collapse.py" in table
    recorded = json.load(open(tmp_path / "work" / "task_table.json", encoding="utf-8"))
    assert recorded["collapsed"] == {"pretrained": {"hate-speech": [42]}}
