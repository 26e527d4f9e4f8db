"""The generic sentence-classification family: Dialog-KoELECTRA's isac task and your own data."""
import os

import pytest

from finetune.config import FinetuneConfig, load_config
from finetune.tasks import get_task, task_family
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import ROOT, make_tiny_electra, tiny_run_config

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_intent")


def fixture(name):
    return os.path.join(FIXTURES, name)


def task(**values):
    values = {"task": "isac_small_v1", "mecab": False, "model_name_or_path": None, "data_dir": FIXTURES, **values}
    return get_task(values["task"], FinetuneConfig(values))


@pytest.mark.parametrize("name", ["isac_small_v1", "intent_my_bot", "domain_v2", "sentence-classification"])
def test_intent_task_names_are_known(name):
    assert task(task=name).name == "sentence-classification"
    assert task_family(name) in ("isac", "intent", "domain", "sentence-classification")


def test_headerless_text_label_lines_as_the_original_intent_processor():
    intent = task(train_file=fixture("train.tsv"))
    # Labels come from the training file (sorted, so label ids repeat from run to run).
    assert intent.labels() == ["alarm", "greeting", "music", "weather"]
    examples = intent.read_examples(fixture("train.tsv"), "train")
    assert len(examples) == 24 and examples[0].text_a == "내일 서울 날씨 어때" and examples[0].label == "weather"
    assert examples[0].text_b is None and examples[0].line == 1


def test_csv_with_header_named_columns_and_a_label_list_file():
    intent = task(label_list="labels.txt", text_column="sentence", label_column="domain")
    assert intent.labels() == ["weather", "alarm", "music", "greeting"]
    examples = intent.read_examples(fixture("domains.csv"), "test")
    assert [(e.text_a, e.label, e.line) for e in examples] == [
        ("내일 날씨, 알려줘", "weather", 2), ("알람 맞춰줘, 일곱 시에", "alarm", 3), ("노래 틀어줘", "music", 4)]
    # auto finds the same columns by their usual names.
    assert [e.text_a for e in task(label_list="weather,alarm,music").read_examples(fixture("domains.csv"), "x")] == \
        [e.text_a for e in examples]


def test_bad_input_names_file_line_and_key(tmp_path):
    with pytest.raises(UserInputError, match=r"label 'music' is not one of weather, alarm"):
        task(label_list="weather,alarm").read_examples(fixture("test.tsv"), "test")
    with pytest.raises(UserInputError, match=r"domains.csv:1: text_column 'utterance' is not a column"):
        task(label_list="weather,alarm,music", text_column="utterance").read_examples(fixture("domains.csv"), "x")
    short = tmp_path / "short.tsv"
    short.write_text("안녕\tgreeting\n한 칸만\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"short.tsv:2: expected at least 2 fields"):
        task(label_list="greeting,music").read_examples(str(short), "train")
    with pytest.raises(UserInputError, match="set label_list or train_file"):
        task().labels()


def test_published_isac_yaml_fine_tunes_on_the_fixture(tmp_path):
    with open(fixture("train.tsv"), encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f]
    model_dir = make_tiny_electra(str(tmp_path / "model"), vocab_size=300, texts=texts * 3)
    config = load_config(os.path.join(ROOT, "conf", "isac", "electra-small.yaml"), overrides={
        "data_dir": FIXTURES, "train_file": fixture("train.tsv"), "test_file": fixture("test.tsv"),
        "model_name_or_path": model_dir, "ckpt_dir": str(tmp_path / "ckpt"), "num_train_epochs": 15,
        "train_batch_size": 8, "learning_rate": 2e-3, "logging_steps": 15, "save_steps": 0, "max_seq_len": 32})
    results = run(config)
    assert results["primary_metric"] == "accuracy"
    assert results["published"]["split"] == "test"  # evaluate_test_during_training: true, no dev file
    assert set(results["best"]["metrics"]) >= {"accuracy", "macro_f1"}
    assert results["best"]["score"] >= 50.0, results["best"]  # 4 classes: chance is 25
