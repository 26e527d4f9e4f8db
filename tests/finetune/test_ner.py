"""NER task: the three layouts, label checks, first-sub-token features, seqeval scores, a tiny run."""
import json
import os
import re
import sys
from types import SimpleNamespace

os.environ.setdefault("USE_TF", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from finetune import ner_metrics  # noqa: E402
from finetune.tasks.base import get_task, task_family  # noqa: E402
from finetune.tasks.ner import IGNORE_INDEX, NerTask  # noqa: E402
from finetune.tasks.ner_readers import KLUE_LABELS, NAVER_LABELS, sniff_format  # noqa: E402
from finetune.tasks.presplit import align  # noqa: E402
from util.errors import UserInputError  # noqa: E402
from fixtures_ner_qa import tiny_model  # noqa: E402  (tests/finetune is on sys.path via conftest)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_ner_qa")
NAVER_TSV = os.path.join(FIXTURES, "naver_ner.tsv")
NAVER_CHALLENGE = os.path.join(FIXTURES, "naver_ner_challenge.txt")
KLUE_TSV = os.path.join(FIXTURES, "klue_ner.tsv")
SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(FIXTURES))), "..", "shared", "data")
KLUE_DEV = os.path.normpath(os.path.join(SHARED, "klue-dev", "klue-ner-v1.1", "klue-ner-v1.1_dev.tsv"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tiny_model.make_tiny_electra(str(tmp_path_factory.mktemp("tiny-ner")))


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    return tiny_model.load_tokenizer(tiny_dir)


def make_task(task="naver-ner", **values):
    return get_task(task, SimpleNamespace(task=task, **values))


def gold_logits(features, num_labels):
    """Logits that put every labelled token on its gold label (a perfect tagger)."""
    width = max(len(f["input_ids"]) for f in features)
    logits = np.zeros((len(features), width, num_labels), dtype=np.float32)
    for i, f in enumerate(features):
        for t, label in enumerate(f["labels"]):
            logits[i, t, 0 if label == IGNORE_INDEX else label] = 1.0
    return logits


# -- registry and layouts -----------------------------------------------------------------

def test_registered_names_reach_the_ner_task():
    for name in ("naver-ner_small_v1", "ner", "klue-ner_base"):
        assert task_family(name) in ("naver-ner", "ner", "klue-ner")
        assert isinstance(make_task(name), NerTask)


def test_reads_koelectra_tsv():
    examples = make_task().read_examples(NAVER_TSV, "train")
    assert len(examples) == 12
    first = examples[0]
    assert first.words == ["이순신", "장군은", "1545년", "서울에서", "태어났다", "."]
    assert first.tags == ["PER-B", "CVL-B", "DAT-B", "LOC-B", "O", "O"]
    assert not first.char_level
    assert all(len(ex.words) == len(ex.tags) for ex in examples)


def test_challenge_layout_reads_as_the_same_sentences():
    task = make_task()
    challenge = task.read_examples(NAVER_CHALLENGE, "train")
    tsv = task.read_examples(NAVER_TSV, "train")[:3]
    assert [(e.words, e.tags) for e in challenge] == [(e.words, e.tags) for e in tsv]


def test_reads_klue_characters_grouped_into_words():
    examples = make_task("klue-ner").read_examples(KLUE_TSV, "dev")
    assert len(examples) == 8
    first = examples[0]
    assert first.guid == "klue-ner-fixture_0000"
    assert first.words == ["이순신", "장군은", "1545년", "서울에서", "태어났다."]
    assert first.char_level
    # One tag per non-space character.
    assert len(first.tags) == sum(len(w) for w in first.words)
    assert first.tags[:3] == ["B-PS", "I-PS", "I-PS"]
    # An entity ending inside a word keeps its own boundary: "<한국:LC>을".
    korea = examples[5]
    assert [(kind, korea.span_text(a, b)) for kind, a, b in ner_metrics.entities(korea.tags)] == [("LC", "한국")]
    # A space inside an entity stays in its text.
    busan = examples[3]
    assert ("LC", "부산 해운대") in [(k, busan.span_text(a, b)) for k, a, b in ner_metrics.entities(busan.tags)]


def test_format_is_sniffed_from_content_and_the_task_name(tmp_path):
    assert sniff_format(NAVER_TSV) == "naver"
    assert sniff_format(NAVER_CHALLENGE) == "naver-challenge"
    assert sniff_format(KLUE_TSV) == "klue"
    assert make_task("klue-ner").labels() == KLUE_LABELS
    assert make_task("naver-ner", train_file=KLUE_TSV).labels() == KLUE_LABELS
    assert make_task("naver-ner", train_file=NAVER_TSV).labels() == NAVER_LABELS
    assert make_task("naver-ner", ner_format="klue").labels() == KLUE_LABELS
    assert len(NAVER_LABELS) == 29 and NAVER_LABELS[:3] == ["O", "PER-B", "PER-I"]
    with pytest.raises(UserInputError, match="ner_format"):
        make_task("naver-ner", ner_format="conll").labels()
    # An explicit layout is obeyed, so a file in another layout fails on its first line.
    with pytest.raises(UserInputError, match=re.escape(f"{NAVER_CHALLENGE}:1: expected 'words<TAB>tags'")):
        make_task("naver-ner", ner_format="naver").read_examples(NAVER_CHALLENGE, "train")
    assert len(make_task("ner", ner_format="naver-challenge").read_examples(NAVER_CHALLENGE, "train")) == 3
    # A KLUE file in a run that already reads Naver data: one clear message.
    task = make_task("naver-ner", train_file=NAVER_TSV)
    with pytest.raises(UserInputError, match="klue_ner.tsv: looks like klue"):
        task.read_examples(KLUE_TSV, "dev")


@pytest.mark.parametrize("name,content,line", [
    ("tsv", "서울 은\tLOC-B O\n부산 은\tCITY-B O\n", 2),
    ("tsv", "서울 은\tLOC-B O\n부산 은 크다\tLOC-B O\n", 2),
    ("challenge", "1\t서울은\tLOC_B\n2\t크다\t-\n\n1\t부산\tCITY_B\n", 4),
    ("klue", "## x-1\t<서울:LC>\n서\tB-LC\n울\tI-LC\n\n## x-2\t<부산:LC>\n부\tB-LOC\n", 6),
    ("klue", "## x-1\t<서울:LC>\n서\tB-LC\n울 I-LC\n", 3),
])
def test_bad_label_or_line_names_file_and_line(tmp_path, name, content, line):
    path = tmp_path / f"{name}.txt"
    path.write_text(content, encoding="utf-8")
    task = make_task("klue-ner" if name == "klue" else "naver-ner", train_file=str(path))
    with pytest.raises(UserInputError, match=re.escape(f"{path}:{line}:")):
        task.read_examples(str(path), "train")


# -- metrics ----------------------------------------------------------------------------

def test_to_bio_spellings():
    assert ner_metrics.to_bio("PER-B") == "B-PER"
    assert ner_metrics.to_bio("NUM_I") == "I-NUM"
    assert ner_metrics.to_bio("B-PS") == "B-PS"
    assert ner_metrics.to_bio("-") == "O"
    with pytest.raises(ValueError):
        ner_metrics.to_bio("PERSON")


def test_entity_scores_by_hand():
    # Gold entities: PER(0-1) LOC(3) | ORG(0) DAT(2-3)  -> 4.
    # Predicted: PER(0-1) right, LOC missed | ORG right, DAT(2) has the wrong end, TIM(4) spurious -> 4.
    # Correct 2: precision 2/4, recall 2/4, F1 0.5.
    gold = [["PER-B", "PER-I", "O", "LOC-B"], ["ORG-B", "O", "DAT-B", "DAT-I", "O"]]
    pred = [["PER-B", "PER-I", "O", "O"], ["ORG-B", "O", "DAT-B", "O", "TIM-B"]]
    scores = ner_metrics.entity_scores(gold, pred)
    assert scores == pytest.approx({"precision": 50.0, "recall": 50.0, "f1": 50.0})
    # The same in KLUE's spelling gives the same figures.
    klue = {"PER": "PS", "LOC": "LC", "ORG": "OG", "DAT": "DT", "TIM": "TI"}

    def respell(seqs):
        return [[t if t == "O" else f"{t[-1]}-{klue[t[:3]]}" for t in s] for s in seqs]

    assert ner_metrics.entity_scores(respell(gold), respell(pred)) == pytest.approx(scores)
    # Predicting LOC too: 3 correct of 5 predicted and 4 gold; F1 = 2·0.6·0.75/1.35.
    pred[0][3] = "LOC-B"
    assert ner_metrics.entity_scores(gold, pred) == pytest.approx(
        {"precision": 60.0, "recall": 75.0, "f1": 200 / 3})
    with pytest.raises(ValueError):
        ner_metrics.entity_scores(gold, pred[:1])


# -- features -------------------------------------------------------------------------------

def test_first_subtoken_gets_the_word_label(tokenizer):
    task = make_task(train_file=NAVER_TSV)
    examples = task.read_examples(NAVER_TSV, "train")
    features = task.build_features(examples, tokenizer, 64, "train")
    label_id = {label: i for i, label in enumerate(task.labels())}
    for ex, f in zip(examples, features):
        enc = tokenizer(ex.words, is_split_into_words=True)
        assert f["input_ids"] == enc["input_ids"]
        word_ids = enc.word_ids()
        seen = set()
        for t, w in enumerate(word_ids):
            if w is None or w in seen:
                assert f["labels"][t] == IGNORE_INDEX
            else:
                assert f["labels"][t] == label_id[ex.tags[w]]
                seen.add(w)
        assert seen == set(range(len(ex.words)))
    # A perfect tagger scores 100 through these features.
    predictions = task.postprocess({"logits": gold_logits(features, 29)}, features, examples)
    assert predictions == [ex.tags for ex in examples]


def originals_kept_words(words, slow_tokenizer, max_seq_len):
    """Both originals' ner_convert_examples_to_features rule, restated: each word tokenized on
    its own ([UNK] if empty), the first max_seq_len - 2 tokens kept; a word counts in the gold
    labels when its first sub-token survives."""
    position, kept = 0, 0
    for word in words:
        if position < max_seq_len - 2:
            kept += 1
        position += len(slow_tokenizer.tokenize(word) or [slow_tokenizer.unk_token])
    return kept


def test_truncated_words_are_dropped_from_scoring_as_the_originals(tokenizer, tiny_dir):
    from transformers import BertTokenizer

    slow = BertTokenizer(os.path.join(tiny_dir, "vocab.txt"), do_lower_case=False, strip_accents=False)
    task = make_task(train_file=NAVER_TSV)
    examples = task.read_examples(NAVER_TSV, "train")
    features = task.build_features(examples, tokenizer, 6, "train")
    assert all(len(f["input_ids"]) <= 6 for f in features)
    assert [ex.scored for ex in examples] == [originals_kept_words(ex.words, slow, 6) for ex in examples]
    cut = sum(len(ex.words) - ex.scored for ex in examples)
    assert cut > 0, "max_seq_len 6 must cut some sentence"
    assert task.split_notes["train"] == {"truncated_words": cut, "ner_truncation": "drop",
                                         "truncated_sentences": sum(ex.scored < len(ex.words) for ex in examples)}
    predictions = task.postprocess({"logits": gold_logits(features, 29)}, features, examples)
    assert all(len(pred) == len(ex.tags) for ex, pred in zip(examples, predictions))
    # A perfect tagger scores 100, as in the originals, whose gold list has only surviving words.
    assert task.compute_metrics(predictions, examples)["f1"] == pytest.approx(100.0)

    # ner_truncation: miss keeps our earlier rule: cut words are predicted O and lower recall.
    missing = make_task(train_file=NAVER_TSV, ner_truncation="miss")
    examples = missing.read_examples(NAVER_TSV, "train")
    features = missing.build_features(examples, tokenizer, 6, "train")
    scores = missing.compute_metrics(missing.postprocess({"logits": gold_logits(features, 29)}, features, examples),
                                     examples)
    assert scores["precision"] == pytest.approx(100.0) and scores["recall"] < 100.0


def test_char_level_tokens_take_their_first_character_tag(tokenizer):
    task = make_task("klue-ner")
    examples = task.read_examples(KLUE_TSV, "dev")
    features = task.build_features(examples, tokenizer, 64, "dev")
    for ex, f in zip(examples, features):
        spans = [s for s in f["_units"] if s is not None]
        # Every character is predicted by exactly one token, in order.
        assert [u for a, b in spans for u in range(a, b)] == list(range(len(ex.tags)))
        for span, label in zip(f["_units"], f["labels"]):
            if span is None:
                assert label == IGNORE_INDEX
            else:
                assert KLUE_LABELS[label] == ex.tags[span[0]]
    ceiling = task.tokenization_ceiling
    predictions = task.postprocess({"logits": gold_logits(features, 13)}, features, examples)
    assert task.compute_metrics(predictions, examples)["f1"] == pytest.approx(ceiling)
    # Each character as a word of its own: nothing crosses an entity edge.
    by_char = make_task("klue-ner", ner_char_tokens=True)
    features = by_char.build_features(examples, tokenizer, 64, "dev")
    assert by_char.tokenization_ceiling == pytest.approx(100.0)
    assert all(sum(l != IGNORE_INDEX for l in f["labels"]) == len(ex.tags) for ex, f in zip(examples, features))


def test_no_ceiling_is_logged_for_sentences_without_gold_entities(tokenizer, caplog):
    # A split without a single entity has no ceiling (seqeval's F1 on it is 0.00), so no alarm.
    task = make_task("klue-ner")
    examples = [ex for ex in task.read_examples(KLUE_TSV, "dev") if set(ex.tags) != {"O"}]
    for ex in examples:
        ex.tags = ["O"] * len(ex.tags)
    with caplog.at_level("WARNING"):
        task.build_features(examples, tokenizer, 64, "dev")
    assert examples and "perfect tagger" not in caplog.text


def test_align_maps_mecab_split_text_back():
    assert align("한국을 사랑", "한국 을 사랑") == [0, 1, 2, 2, 3, 4, 5]
    assert align("a  b", "a b") == [0, 1, 3]
    with pytest.raises(UserInputError, match="mecab"):
        align("한국을", "한국 를")


def test_mecab_presplit_keeps_word_labels_and_char_offsets(tmp_path):
    helpers = tiny_model
    mecab_dir = helpers.make_tiny_electra(str(tmp_path / "mecab"), tokenizer_type="mecab_wordpiece")
    tokenizer = helpers.load_tokenizer(mecab_dir)
    assert tokenizer.init_kwargs["tokenizer_type"] == "mecab_wordpiece"
    task = make_task("klue-ner")
    examples = task.read_examples(KLUE_TSV, "dev")
    features = task.build_features(examples, tokenizer, 64, "dev")
    # Mecab splits particles off ("한국 을"), so the gold entities survive tokenization.
    assert task.tokenization_ceiling == pytest.approx(100.0)
    predictions = task.postprocess({"logits": gold_logits(features, 13)}, features, examples)
    assert predictions == [ex.tags for ex in examples]
    naver = make_task(train_file=NAVER_TSV)
    examples = naver.read_examples(NAVER_TSV, "train")
    features = naver.build_features(examples, tokenizer, 64, "train")
    assert [sum(l != IGNORE_INDEX for l in f["labels"]) for f in features] == [len(e.words) for e in examples]
    predictions = naver.postprocess({"logits": gold_logits(features, 29)}, features, examples)
    assert predictions == [ex.tags for ex in examples]


# -- a tiny model, trained -----------------------------------------------------------------------

@pytest.mark.parametrize("task_name,path", [("naver-ner", NAVER_TSV), ("klue-ner", KLUE_TSV)])
def test_tiny_model_learns_the_fixture(tiny_dir, tokenizer, task_name, path):
    helpers = tiny_model
    task = make_task(task_name, train_file=path)
    examples = task.read_examples(path, "train")
    features = task.build_features(examples, tokenizer, 64, "train")
    model = task.build_model(tiny_dir)
    assert model.config.num_labels == len(task.labels())
    assert model.config.id2label[1] == task.labels()[1]
    before = task.compute_metrics(task.postprocess(helpers.predict(model, features), features, examples), examples)
    losses = helpers.train_steps(model, features, steps=80)
    assert losses[-1] < losses[0] / 4
    predictions = task.postprocess(helpers.predict(model, features), features, examples)
    after = task.compute_metrics(predictions, examples)
    assert after["f1"] > 80.0 > before["f1"]
    records = task.prediction_records(predictions, examples)
    assert len(records) == len(examples) and records[0]["id"] == examples[0].guid
    assert {"type": "PS" if task_name == "klue-ner" else "PER", "text": "이순신"} in records[0]["entities"]


# -- the real KLUE-NER dev file ------------------------------------------------------------------

@pytest.mark.skipif(not os.path.isfile(KLUE_DEV), reason="KLUE-NER dev file not present")
def test_klue_dev_loads_and_matches_its_markup():
    examples = make_task("klue-ner").read_examples(KLUE_DEV, "dev")
    assert len(examples) == 5000  # MANIFEST: 5,000 sentences
    markup = re.compile(r"<([^<>]+?):(PS|LC|OG|DT|TI|QT)>")
    with open(KLUE_DEV, encoding="utf-8") as f:
        headers = [line.rstrip("\n").split("\t", 1) for line in f if line.startswith("## klue-ner")]
    assert len(headers) == 5000
    types, disagree = set(), []
    for ex, (guid, marked) in zip(examples, headers):
        assert ex.guid == guid[3:]
        assert " ".join(ex.words) == " ".join(markup.sub(r"\1", marked).split())
        found = [(kind, ex.span_text(a, b)) for kind, a, b in ner_metrics.entities(ex.tags)]
        if found != [(m[2], m[1]) for m in markup.finditer(marked)]:
            disagree.append(ex.guid)
        types.update(kind for kind, _ in found)
    assert types == {"PS", "LC", "OG", "DT", "TI", "QT"}
    # The character tags are the gold; a handful of sentences tag differently from their
    # markup ("<<레이:PS>>" whose characters tag "<레이").
    assert len(disagree) <= 10, disagree


# -- through run_finetune.py ----------------------------------------------------------------------

def _write_yaml(path, values):
    import yaml

    path.write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def _run_config(tiny_dir, tmp_path, **values):
    config = {
        "task": "naver-ner_tiny", "train_file": "naver_ner.tsv", "dev_file": "",
        "test_file": "naver_ner.tsv", "data_dir": FIXTURES, "ckpt_dir": str(tmp_path / "ckpt"),
        "model_name_or_path": tiny_dir, "max_seq_len": 64, "max_steps": 90, "train_batch_size": 8,
        "eval_batch_size": 16, "logging_steps": 45, "save_steps": 45, "learning_rate": 3e-3,
        "warmup_proportion": 0, "seed": 3,
    }
    config.update(values)
    return config


def test_run_finetune_trains_and_evaluates_ner(tiny_dir, tmp_path):
    import run_finetune

    path = _write_yaml(tmp_path / "ner.yaml", _run_config(tiny_dir, tmp_path))
    with tiny_model.one_thread():
        run_finetune.main(["--config_file", path])
    out = tmp_path / "ckpt" / "naver-ner_tiny"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["primary_metric"] == "f1"
    assert [e["step"] for e in results["evaluations"] if e["split"] == "test"][:2] == [45, 90]
    assert results["best"]["metrics"]["f1"] > 80.0
    records = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 12 and records[0]["id"] == "test-0"
    assert len(records[0]["prediction"]) == 6
    assert os.path.isfile(out / "best_model" / "config.json")


def test_run_finetune_reads_klue_with_task_keys(tiny_dir, tmp_path):
    import run_finetune

    values = _run_config(tiny_dir, tmp_path, task="klue-ner_tiny", train_file="klue_ner.tsv",
                         test_file="klue_ner.tsv", max_steps=10, logging_steps=10, ner_char_tokens=True)
    path = _write_yaml(tmp_path / "klue.yaml", values)
    with tiny_model.one_thread():
        run_finetune.main(["--config_file", path])
    results = json.loads((tmp_path / "ckpt" / "klue-ner_tiny" / "results.json").read_text(encoding="utf-8"))
    assert set(results["best"]["metrics"]) >= {"f1", "precision", "recall"}
    config = json.loads((tmp_path / "ckpt" / "klue-ner_tiny" / "best_model" / "config.json").read_text())
    assert set(config["id2label"].values()) == set(KLUE_LABELS)


def test_run_finetune_bad_label_exits_1_naming_file_and_line(tiny_dir, tmp_path, capsys):
    import run_finetune
    from util.errors import run_cli

    (tmp_path / "train.tsv").write_text("서울 은\tLOC-B O\n부산 은\tCITY-B O\n", encoding="utf-8")
    values = _run_config(tiny_dir, tmp_path, data_dir=str(tmp_path), train_file="train.tsv",
                         test_file="train.tsv")
    path = _write_yaml(tmp_path / "bad.yaml", values)
    with pytest.raises(SystemExit) as e:
        run_cli(lambda: run_finetune.main(["--config_file", path]))
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 1
    assert err.startswith(f"error: {tmp_path / 'train.tsv'}:2: label 'CITY-B' is not in the label set")


@pytest.mark.parametrize("size", ["small", "base"])
def test_shipped_yaml_runs_on_naver_layout_data(tiny_dir, tmp_path, size):
    """conf/naver-ner/electra-<size>.yaml with only the data, model and run length changed."""
    from finetune.config import load_config
    from finetune.trainer import run

    root = os.path.dirname(os.path.dirname(os.path.dirname(FIXTURES)))
    overrides = {"data_dir": FIXTURES, "train_file": NAVER_TSV, "test_file": NAVER_CHALLENGE,
                 "model_name_or_path": tiny_dir, "ckpt_dir": str(tmp_path), "max_steps": 4,
                 "logging_steps": 4, "save_steps": 4}
    config = load_config(os.path.join(root, "conf", "naver-ner", f"electra-{size}.yaml"),
                         overrides=overrides, extra_defaults=NerTask.config_defaults)
    with tiny_model.one_thread():
        results = run(config)
    assert results["best"]["split"] == "test"
    assert set(results["best"]["metrics"]) == {"precision", "recall", "f1"}


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(KLUE_DEV), reason="KLUE-NER dev file not present")
def test_slow_fine_tunes_on_a_klue_slice(tmp_path):
    """1,000 real KLUE-NER sentences for training, the next 300 for testing (python -m pytest -m slow)."""
    from finetune.config import load_config
    from finetune.trainer import run

    with open(KLUE_DEV, encoding="utf-8") as f:
        blocks = f.read().split("\n\n")
    (tmp_path / "train.tsv").write_text("\n\n".join(blocks[:1000]) + "\n", encoding="utf-8")
    (tmp_path / "test.tsv").write_text("\n\n".join(blocks[1000:1300]) + "\n", encoding="utf-8")
    texts = [" ".join(ex.words) for ex in make_task("klue-ner").read_examples(str(tmp_path / "train.tsv"), "train")]
    model_dir = tiny_model.make_tiny_electra(str(tmp_path / "model"), vocab_size=1500, texts=texts)
    values = _run_config(model_dir, tmp_path, task="klue-ner_slice", data_dir=str(tmp_path), train_file="train.tsv",
                         test_file="test.tsv", max_seq_len=128, max_steps=600, logging_steps=200,
                         train_batch_size=16, learning_rate=2e-3, ner_char_tokens=True)
    config = load_config(_write_yaml(tmp_path / "klue.yaml", values), extra_defaults=NerTask.config_defaults)
    with tiny_model.one_thread():
        results = run(config)
    scores = [e["metrics"]["f1"] for e in results["evaluations"]]
    # A 2-layer, 32-wide model trained from scratch on 1,000 sentences gets some of the
    # frequent entities right (about 9 F1 when written; random guesses score near 0).
    assert results["best"]["score"] > 5.0, scores
