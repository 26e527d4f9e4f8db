"""Each classification/regression family reads its canonical layout; bad lines name file:line."""
import os

import pytest

from finetune.config import FinetuneConfig
from finetune.tasks import get_task, task_family
from util.errors import UserInputError

from finetune_helpers import FIXTURES


def task(name, **values):
    return get_task(name, FinetuneConfig({"task": name, "mecab": False, "model_name_or_path": None, **values}))


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


@pytest.mark.parametrize("name, family", [
    ("nsmc_small_v1", "nsmc"), ("question-pair_small_v1", "question-pair"),
    ("hate-speech_small_v1", "hate-speech"), ("kornli_small_v1", "kornli"),
    ("korsts_small_v1", "korsts"), ("paws_base", "paws"), ("NSMC", "nsmc"),
])
def test_family_from_task_value(name, family):
    assert task_family(name) == family


def test_unknown_task_family():
    with pytest.raises(UserInputError, match="'sentiment_v1' is not a known task family"):
        task_family("sentiment_v1")


def test_nsmc_reads_quotes_verbatim_and_empty_documents():
    examples = task("nsmc").read_examples(fixture("nsmc", "reviews_train.txt"), "train")
    assert len(examples) == 10
    assert examples[0].text_a == "아.. 자막이 너무 늦게 나와서 답답하네요 음향도" and examples[0].label == "0"
    assert examples[0].text_b is None and examples[0].line == 2
    assert examples[2].text_a == ""  # NSMC has empty documents; they are kept
    # Quoting off: pandas' escaping stays as written, like KoELECTRA's reader.
    assert examples[3].text_a == '"""스토리, 연출 다 좋았다. ""명작""이라는 말이 어울린다"""'
    assert [e.label for e in examples].count("1") == 4


def test_question_pair_skips_pairs_with_an_empty_side():
    examples = task("question-pair").read_examples(fixture("question-pair", "train.tsv"), "train")
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [
        ("주말에 갈 만한 서울 근교 여행지", "서울 근처 주말 나들이 장소 추천", "1"),
        ("비 오는 날 듣기 좋은 노래", "비 오는 날 운전할 때 조심할 점", "0"),
        ("퇴근하고 할 만한 운동", "퇴근 후에 하기 좋은 운동", "1"),
    ]
    assert examples[2].line == 5


def test_hate_speech_classifies_the_comment_alone_as_the_originals():
    hate = task("hate-speech")
    examples = hate.read_examples(fixture("hate-speech", "train.tsv"), "train")
    assert hate.labels() == ["none", "offensive", "hate"]
    assert [e.label for e in examples] == ["none", "offensive", "hate", "none"]
    # Both originals' HateSpeechProcessor: text_a = line[1] (the comment), text_b = None.
    assert examples[1].text_a == "이런 것도 노래라고 부르냐 ㅋㅋ"
    assert all(e.text_b is None for e in examples)
    assert hate.primary_metric == "macro_f1"


def test_hate_speech_title_pair_is_an_explicit_option():
    hate = task("hate-speech", hate_speech_input="title+comment")
    examples = hate.read_examples(fixture("hate-speech", "train.tsv"), "train")
    assert examples[1].text_a == "가수 B, 컴백 무대 공개"
    assert examples[1].text_b == "이런 것도 노래라고 부르냐 ㅋㅋ"
    with pytest.raises(UserInputError, match="hate_speech_input must be one of comment, title\\+comment"):
        task("hate-speech", hate_speech_input="title").read_examples(fixture("hate-speech", "train.tsv"), "train")


def test_kornli_three_classes():
    examples = task("kornli").read_examples(fixture("kornli", "xnli.dev.ko.tsv"), "dev")
    assert [e.label for e in examples] == ["neutral", "contradiction", "entailment"]
    assert examples[0].text_a == "그녀는 아침마다 공원을 한 바퀴 걷는다고 했다."


def test_korsts_scores_are_floats():
    korsts = task("korsts")
    examples = korsts.read_examples(fixture("korsts", "sts-dev.tsv"), "dev")
    assert [e.label for e in examples] == [5.0, 3.8, 0.5, 2.75]
    assert examples[1].text_b == "여자가 바이올린을 연주하고 있다."
    assert korsts.kind == "regression" and korsts.labels() is None


def test_paws_skips_untranslated_pairs():
    examples = task("paws").read_examples(fixture("paws", "dev_2k.tsv"), "dev")
    assert [e.label for e in examples] == ["1", "0"]
    assert [e.line for e in examples] == [2, 4]


@pytest.mark.parametrize("family, name, message", [
    ("nsmc", "nsmc_bad_label.txt", r"nsmc_bad_label\.txt:3: label '2' is not one of 0, 1"),
    ("nsmc", "nsmc_short_line.txt", r"nsmc_short_line\.txt:3: expected 3 tab-separated fields, got 2"),
    ("korsts", "korsts_bad_score.tsv", r"korsts_bad_score\.tsv:2: score '7\.5' is not a number in \[0, 5\]"),
    ("question-pair", "question_pair_no_label_column.tsv",
     r"question_pair_no_label_column\.tsv:1: header lacks column\(s\) is_duplicate"),
])
def test_bad_files_name_file_and_line(family, name, message):
    with pytest.raises(UserInputError, match=message):
        task(family).read_examples(fixture("bad", name), "train")


def test_not_utf8_names_line(tmp_path):
    path = tmp_path / "ratings.txt"
    path.write_bytes("id\tdocument\tlabel\n1\t좋다\t1\n".encode() + b"2\t\xff\xfe\t0\n")
    with pytest.raises(UserInputError, match=r"ratings\.txt:3: not UTF-8"):
        task("nsmc").read_examples(str(path), "train")


def test_features_are_unpadded_pairs(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    kornli = task("kornli", model_name_or_path=tiny_model_dir)
    examples = kornli.read_examples(fixture("kornli", "xnli.dev.ko.tsv"), "dev")
    features = kornli.build_features(examples, tokenizer, 16, "dev")
    assert [f["labels"] for f in features] == [2, 0, 1]
    for feature, example in zip(features, examples):
        ids = feature["input_ids"]
        assert len(ids) <= 16 and ids[0] == tokenizer.cls_token_id and ids.count(tokenizer.sep_token_id) == 2
        assert len(feature["attention_mask"]) == len(ids) and set(feature["token_type_ids"]) == {0, 1}
    short = kornli.build_features(examples, tokenizer, 128, "dev")
    assert len(short[1]["input_ids"]) < 128  # no padding: the collator pads per batch


REAL_HATE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "..", "shared", "data", "korean-hate-speech", "koelectra", "val.tsv")


@pytest.mark.skipif(not os.path.isfile(REAL_HATE), reason="../shared/data/korean-hate-speech absent")
def test_hate_speech_real_file_reads_what_the_originals_read():
    examples = task("hate-speech").read_examples(REAL_HATE, "test")
    with open(REAL_HATE, encoding="utf-8") as f:
        rows = [line.strip().split("\t") for line in f][1:]
    # The originals' HateSpeechProcessor: text_a = line[1], label = line[3], no text_b.
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [(r[1].strip(), None, r[3]) for r in rows]
