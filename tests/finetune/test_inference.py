"""finetune.inference: predictions on raw text match what the trainer predicted, for every head.

Each family is fine-tuned for a few steps on its fixture by the real trainer, which writes
``predictions_<split>.jsonl``; the predictor then reads the same texts as unlabelled input.
Equal labels, scores, entities and answers show that prediction tokenizes exactly as training
did (mecab, truncation, NER units, QA windows) and that outputs come back in input order.
The ONNX path is checked against the PyTorch path on the same inputs.
"""
import json
import os

import pytest

from finetune.config import load_config
from finetune.inference import Predictor, describe_model_dir
from finetune.predict_cli import predict_lines
from finetune.tasks import task_config_defaults
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import SAMPLE_DIR, fixture_texts, make_tiny_electra, tiny_run_config
from fixtures_ner_qa.tiny_model import fixture_texts as ner_qa_texts

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
NER_QA = os.path.join(HERE, "fixtures_ner_qa")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_electra(str(tmp_path_factory.mktemp("tiny")), vocab_size=900,
                             texts=fixture_texts() + ner_qa_texts(), max_positions=256)


@pytest.fixture(scope="module")
def finetuned(tiny_dir, tmp_path_factory):
    """finetuned(name, **yaml) -> run directory of a few-step run (cached per name)."""
    cache = {}

    def make(name, **values):
        if name not in cache:
            import yaml

            root = tmp_path_factory.mktemp(name)
            settings = {"task": name, "ckpt_dir": str(root / "ckpt"), "model_name_or_path": tiny_dir,
                        "max_seq_len": 64, "train_batch_size": 8, "eval_batch_size": 16, "logging_steps": 0,
                        "save_steps": 0, "learning_rate": 2e-3, "seed": 5, "max_steps": 12, "dev_file": "",
                        **values}
            (root / "run.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
            run(load_config(str(root / "run.yaml"), extra_defaults=task_config_defaults()))
            cache[name] = root / "ckpt" / name
        return cache[name]

    return make


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def nsmc_run(finetuned):
    return finetuned("nsmc_tiny", data_dir=SAMPLE_DIR, train_file="sample_reviews_train.txt",
                     test_file="sample_reviews_test.txt", max_steps=20)


def test_single_sentence_labels_match_the_trainers_predictions(finetuned):
    out = nsmc_run(finetuned)
    expected = read_jsonl(out / "predictions_test.jsonl")
    predictor = Predictor(str(out / "best_model"), batch_size=7)  # batches of mixed lengths
    assert predictor.info.kind == "classification" and predictor.info.pair_input is False
    got = predictor.predict([e["text_a"] for e in expected])
    # The model names NSMC's labels (finetune/tasks/nsmc.py); the trainer's file keeps the data's values.
    named = {"0": "negative", "1": "positive"}
    assert [g["label"] for g in got] == [named[e["prediction"]] for e in expected]
    for g in got:
        assert set(g["probabilities"]) == {"negative", "positive"}
        assert abs(sum(g["probabilities"].values()) - 1.0) < 1e-5
        assert g["probabilities"][g["label"]] == max(g["probabilities"].values())
    assert len({round(g["probabilities"]["positive"], 6) for g in got}) > 1  # not one constant answer


def test_pair_classification_and_regression_match_the_trainer(finetuned):
    qp = finetuned("question-pair_tiny", data_dir=os.path.join(FIXTURES, "question-pair"),
                   train_file="train.tsv", test_file="test.tsv")
    expected = read_jsonl(qp / "predictions_test.jsonl")
    got = Predictor(str(qp / "best_model")).predict([(e["text_a"], e["text_b"]) for e in expected])
    assert [g["label"] for g in got] == [e["prediction"] for e in expected]

    sts = finetuned("korsts_tiny", data_dir=os.path.join(FIXTURES, "korsts"), train_file="sts-dev.tsv",
                    test_file="sts-dev.tsv")
    expected = read_jsonl(sts / "predictions_test.jsonl")
    predictor = Predictor(str(sts / "best_model"))
    assert predictor.info.kind == "regression" and predictor.info.pair_input is True
    got = predictor.predict([(e["text_a"], e["text_b"]) for e in expected])
    assert [g["score"] for g in got] == pytest.approx([e["prediction"] for e in expected], abs=1e-5)


@pytest.mark.parametrize("name,train", [("klue-ner_tiny", "klue_ner.tsv"), ("naver-ner_tiny", "naver_ner.tsv")])
def test_ner_entities_match_the_trainer_and_point_into_the_text(finetuned, name, train):
    out = finetuned(name, data_dir=NER_QA, train_file=train, test_file=train, max_steps=30, learning_rate=5e-3)
    expected = read_jsonl(out / "predictions_test.jsonl")
    texts = [e["text"] for e in expected]
    got = Predictor(str(out / "best_model")).predict(texts)
    assert sum(len(g["entities"]) for g in got) > 0
    for text, g, e in zip(texts, got, expected):
        assert [(x["type"], x["text"]) for x in g["entities"]] == [(x["type"], x["text"]) for x in e["entities"]]
        for entity in g["entities"]:
            assert text[entity["start"]:entity["end"]] == entity["text"]


def test_character_ner_prediction_logs_no_tokenization_ceiling_for_its_placeholder_tags(finetuned, caplog):
    # Unlabelled text is tagged all-O as a placeholder: an entity F1 "ceiling" computed on it is
    # 0.00 and says nothing about the tokenization, so prediction must not log one.
    out = finetuned("klue-ner_tiny", data_dir=NER_QA, train_file="klue_ner.tsv", test_file="klue_ner.tsv",
                    max_steps=30, learning_rate=5e-3)
    texts = [e["text"] for e in read_jsonl(out / "predictions_test.jsonl")]
    with caplog.at_level("WARNING"):
        Predictor(str(out / "best_model")).predict(texts)
    assert "perfect tagger" not in caplog.text


def test_qa_answers_match_the_trainer_over_strided_windows(finetuned):
    out = finetuned("korquad_tiny", data_dir=NER_QA, train_file="korquad.json", dev_file="korquad.json",
                    test_file="", max_steps=40, learning_rate=3e-3, doc_stride=16, max_query_length=16,
                    max_answer_length=10, n_best_size=10)
    expected = {k: v for record in read_jsonl(out / "predictions_dev.jsonl") for k, v in record.items()}
    with open(os.path.join(NER_QA, "korquad.json"), encoding="utf-8") as f:
        questions = [(qa["id"], p["context"], qa["question"]) for a in json.load(f)["data"]
                     for p in a["paragraphs"] for qa in p["qas"]]
    predictor = Predictor(str(out / "best_model"))
    from finetune.tasks.korquad import QaExample

    features = predictor.task.build_features(
        [QaExample(q, qu, c, [{"text": "", "answer_start": 0}]) for q, c, qu in questions],
        predictor.tokenizer, predictor.max_seq_len, "check")
    assert len(features) > len(questions)  # contexts longer than 64 tokens really are strided
    got = predictor.predict([{"context": c, "question": qu} for _, c, qu in questions])
    for (qid, context, _), g in zip(questions, got):
        assert g["answer"] == expected[qid]
        assert context[g["start"]:g["end"]] == g["answer"]
        assert 0.0 < g["score"] <= 1.0


@pytest.mark.parametrize("name", ["nsmc_tiny", "klue-ner_tiny", "korquad_tiny"])
def test_onnx_predictions_equal_pytorch(finetuned, tmp_path, name):
    from convert.onnx_export import export_finetuned

    if name == "nsmc_tiny":
        out, items = nsmc_run(finetuned), ["정말 재밌어요 최고", "시간 아깝다", "배우 연기는 좋았는데 결말이 별로"]
    elif name == "klue-ner_tiny":
        out = finetuned(name, data_dir=NER_QA, train_file="klue_ner.tsv", test_file="klue_ner.tsv", max_steps=30,
                        learning_rate=5e-3)
        items = [e["text"] for e in read_jsonl(out / "predictions_test.jsonl")]
    else:
        out = finetuned(name, data_dir=NER_QA, train_file="korquad.json", dev_file="korquad.json", test_file="",
                        max_steps=40, learning_rate=3e-3, doc_stride=16, max_query_length=16,
                        max_answer_length=10, n_best_size=10)
        with open(os.path.join(NER_QA, "korquad.json"), encoding="utf-8") as f:
            items = [{"context": p["context"], "question": qa["question"]} for a in json.load(f)["data"]
                     for p in a["paragraphs"] for qa in p["qas"]]
    onnx_path, results = export_finetuned(str(out / "best_model"), str(tmp_path / "model.onnx"), log=lambda _: None)
    assert all(r.ok for r in results)
    torch_out = Predictor(str(out / "best_model")).predict(items)
    onnx_out = Predictor(str(out / "best_model"), onnx_path=onnx_path, threads=1).predict(items)
    for t, o in zip(torch_out, onnx_out):
        assert t.keys() == o.keys()
        for key in t:
            if key == "probabilities":
                assert o[key] == pytest.approx(t[key], abs=1e-4)
            elif key == "score":
                assert o[key] == pytest.approx(t[key], abs=1e-4)
            else:
                assert o[key] == t[key]


def test_bad_lines_are_named_and_the_others_predicted(finetuned):
    qp = Predictor(str(finetuned("question-pair_tiny", data_dir=os.path.join(FIXTURES, "question-pair"),
                                 train_file="train.tsv", test_file="test.tsv") / "best_model"))
    lines = ["환불 어떻게 하나요?\t환불 방법 알려주세요".encode(), b"", "탭이 없는 줄".encode(),
             b"\xff\xfe", "a\tb\tc".encode(), "배송 언제 와요?\t배송 기간이 궁금해요".encode()]
    warnings = []
    records = list(predict_lines(qp, lines, "in.tsv", warn=warnings.append))
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert [("error" in r) for r in records] == [False, True, True, True, True, False]
    assert records[1]["error"] == "empty line"
    assert "text_a<TAB>text_b" in records[2]["error"] and "3 tab-separated" in records[4]["error"]
    assert "not UTF-8" in records[3]["error"]
    assert records[5]["text_a"] == "배송 언제 와요?" and records[5]["label"] in ("0", "1")
    assert warnings[0].startswith("in.tsv:2: error:") and len(warnings) == 4


def test_malformed_qa_json_and_long_text_warnings(finetuned):
    out = finetuned("korquad_tiny", data_dir=NER_QA, train_file="korquad.json", dev_file="korquad.json",
                    test_file="", max_steps=40, learning_rate=3e-3, doc_stride=16, max_query_length=16,
                    max_answer_length=10, n_best_size=10)
    qa = Predictor(str(out / "best_model"))
    lines = [b'{"context": "x"', b'{"context": "', '{"context": "서울은 한국의 수도다.", "question": ""}'.encode(),
             '{"id": "q1", "context": "서울은 한국의 수도다.", "question": "한국의 수도는?"}'.encode()]
    records = list(predict_lines(qa, lines, "qa.jsonl", warn=lambda _: None))
    assert "malformed JSON" in records[0]["error"] and "malformed JSON" in records[1]["error"]
    assert "'question'" in records[2]["error"]
    assert records[3]["id"] == "q1" and "서울은 한국의 수도다."[records[3]["start"]:records[3]["end"]] == records[3]["answer"]

    nsmc = Predictor(str(nsmc_run(finetuned) / "best_model"))
    long_review = " ".join(["영화가 정말 재밌었어요"] * 60)
    warnings = []
    records = list(predict_lines(nsmc, [long_review.encode(), "짧은 리뷰".encode()], "r.txt", warn=warnings.append))
    assert "truncated to max_seq_len 64" in records[0]["warning"] and "warning" not in records[1]
    assert warnings == [f"r.txt:1: warning: {records[0]['warning']}"]


def test_directories_that_are_not_fine_tuned_models(tiny_dir, tmp_path, finetuned):
    with pytest.raises(UserInputError, match="ElectraForPreTraining is not a fine-tuned model"):
        describe_model_dir(tiny_dir)
    with pytest.raises(UserInputError, match="no config.json"):
        describe_model_dir(str(tmp_path))
    with pytest.raises(UserInputError, match="not found"):
        describe_model_dir(str(tmp_path / "missing"))
    # An ONNX file of another head is refused before any prediction.
    from convert.onnx_export import export_finetuned

    nsmc = str(nsmc_run(finetuned) / "best_model")
    onnx_path, _ = export_finetuned(nsmc, str(tmp_path / "cls.onnx"), log=lambda _: None)
    qa = finetuned("korquad_tiny", data_dir=NER_QA, train_file="korquad.json", dev_file="korquad.json",
                   test_file="", max_steps=40, learning_rate=3e-3, doc_stride=16, max_query_length=16,
                   max_answer_length=10, n_best_size=10)
    with pytest.raises(UserInputError, match=r"needing start_logits and end_logits \[batch, sequence\]"):
        Predictor(str(qa / "best_model"), onnx_path=onnx_path)


def test_the_pretrained_discriminators_onnx_is_refused_for_a_classifier(tiny_dir, tmp_path, finetuned):
    """Its per-token logits [batch, sequence] once raised IndexError on several lines and, on one
    short line, were read as two class scores that did not sum to 1."""
    from transformers import ElectraForPreTraining

    from convert.onnx_export import export_onnx
    from finetune.predict_cli import main

    disc_onnx = export_onnx(ElectraForPreTraining.from_pretrained(tiny_dir), str(tmp_path / "disc.onnx"))
    nsmc = str(nsmc_run(finetuned) / "best_model")
    with pytest.raises(UserInputError, match=r"outputs logits \[batch, sequence\], but .* is a classification "
                                             r"model over 2 labels needing logits \[batch, 2\]"):
        Predictor(nsmc, onnx_path=disc_onnx)
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("좋아요\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(UserInputError, match="needing logits"):  # predict.py prints it as one error: line
        main(["--model_dir", nsmc, "--onnx", disc_onnx, "--input", str(reviews), "--output", str(out)])
    assert not out.exists()


def test_mecab_vocab_text_is_split_as_in_training(tmp_path):
    import yaml

    mecab_dir = make_tiny_electra(str(tmp_path / "mecab"), tokenizer_type="mecab_wordpiece")
    settings = tiny_run_config(mecab_dir, tmp_path / "ckpt", task="nsmc_mecab", max_steps=6, logging_steps=0,
                               learning_rate=2e-3, seed=1)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    run(load_config(str(tmp_path / "run.yaml"), extra_defaults=task_config_defaults()))
    out = tmp_path / "ckpt" / "nsmc_mecab"
    expected = read_jsonl(out / "predictions_test.jsonl")
    predictor = Predictor(str(out / "best_model"))
    got = predictor.predict([e["text_a"] for e in expected])
    named = {"0": "negative", "1": "positive"}
    assert [g["label"] for g in got] == [named[e["prediction"]] for e in expected]
    # The features are the training run's own (its task and tokenizer), not plain WordPiece's.
    from transformers import ElectraTokenizerFast

    from finetune.models import load_tokenizer, resolve_model_dir
    from finetune.tasks import get_task
    from finetune.tasks.sequence_classification import Example

    config = load_config(str(tmp_path / "run.yaml"), extra_defaults=task_config_defaults())
    trainer_tokenizer = load_tokenizer(config, resolve_model_dir(config))
    text = "배우들의 연기가 좋았어요"
    ours = predictor.task.build_features([Example("0", text, None, "negative", 1)], predictor.tokenizer, 64,
                                         "p")[0]["input_ids"]  # the predictor's labels are the model's names
    training = get_task(config.task, config).build_features([Example("0", text, None, "0", 1)], trainer_tokenizer,
                                                            64, "p")[0]["input_ids"]
    plain = ElectraTokenizerFast(os.path.join(mecab_dir, "vocab.txt"), do_lower_case=False)(text)["input_ids"]
    assert ours == training != plain


@pytest.mark.parametrize("hate_input,pair", [("comment", False), ("title+comment", True)])
def test_hate_speech_input_follows_how_it_was_trained(finetuned, hate_input, pair):
    out = finetuned(f"hate-speech_{hate_input.replace('+', '_')}", data_dir=os.path.join(FIXTURES, "hate-speech"),
                    train_file="train.tsv", test_file="val.tsv", max_steps=4, hate_speech_input=hate_input)
    expected = read_jsonl(out / "predictions_test.jsonl")
    predictor = Predictor(str(out / "best_model"))
    assert predictor.info.pair_input is pair
    lines = [(f"{e['text_a']}\t{e['text_b']}" if pair else e["text_a"]).encode() for e in expected]
    records = list(predict_lines(predictor, lines, "hate.tsv", warn=lambda _: None))
    assert [r["label"] for r in records] == [e["prediction"] for e in expected]
