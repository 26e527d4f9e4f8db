"""KorQuAD task: the JSON reader, KorQuAD's official EM/F1, doc-stride windows, answer spans, a tiny run."""
import json
import os
import re
import sys
from types import SimpleNamespace

os.environ.setdefault("USE_TF", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from finetune import korquad_metrics as km  # noqa: E402
from finetune.tasks.base import get_task  # noqa: E402
from finetune.tasks.korquad import KorquadTask  # noqa: E402
from util.errors import UserInputError  # noqa: E402
from fixtures_ner_qa import tiny_model  # noqa: E402  (tests/finetune is on sys.path via conftest)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_ner_qa")
KORQUAD = os.path.join(FIXTURES, "korquad.json")
SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(FIXTURES))), "..", "shared", "data")
KORQUAD_DEV = os.path.normpath(os.path.join(SHARED, "korquad-v1", "KorQuAD_v1.0_dev.json"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tiny_model.make_tiny_electra(str(tmp_path_factory.mktemp("tiny-qa")))


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    return tiny_model.load_tokenizer(tiny_dir)


def make_task(**values):
    return get_task("korquad", SimpleNamespace(task="korquad", **values))


def gold_outputs(features):
    """Start/end logits that point at each window's gold span (a perfect model)."""
    width = max(len(f["input_ids"]) for f in features)
    start = np.zeros((len(features), width), dtype=np.float32)
    end = np.zeros((len(features), width), dtype=np.float32)
    for i, f in enumerate(features):
        start[i, f["start_positions"]] = 5.0
        end[i, f["end_positions"]] = 5.0
    return {"start_logits": start, "end_logits": end}


# -- reader ---------------------------------------------------------------------------------

def test_reads_squad_json():
    examples = make_task().read_examples(KORQUAD, "train")
    assert len(examples) == 9
    first = examples[0]
    assert (first.qid, first.question, first.title) == ("p1-0", "이순신이 태어난 해는?", "이순신")
    answer = first.answers[0]
    assert first.context[answer["answer_start"]:answer["answer_start"] + len(answer["text"])] == "1545년"
    assert isinstance(get_task("squad_v1", SimpleNamespace(task="squad_v1")), KorquadTask)


def test_answer_not_at_its_start_names_file_and_question(tmp_path):
    with open(KORQUAD, encoding="utf-8") as f:
        doc = json.load(f)
    doc["data"][1]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(UserInputError, match=re.escape(f"{path}: question p3-1: answer '백록담'")):
        make_task().read_examples(str(path), "dev")


def test_malformed_json_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"title": "x",\n  "paragraphs": [}\n]}', encoding="utf-8")
    with pytest.raises(UserInputError, match=re.escape(f"{path}:3:")):
        make_task().read_examples(str(path), "dev")
    path.write_text('{"version": "x"}', encoding="utf-8")
    with pytest.raises(UserInputError, match="'data'"):
        make_task().read_examples(str(path), "dev")


# -- KorQuAD's official scoring ------------------------------------------------------------------

def test_normalisation_by_hand():
    # Quotes and brackets become spaces, ASCII punctuation goes, case folds, spaces collapse.
    assert km.normalize_answer("《토지》의") == "토지 의"
    assert km.normalize_answer('"서울"') == "서울"
    assert km.normalize_answer("(1945년)") == "1945년"
    assert km.normalize_answer("‘정조’ 임금") == "정조 임금"
    assert km.normalize_answer("Hello,  World!") == "hello world"
    assert km.normalize_answer("3.1 운동") == "31 운동"
    # No English article removal (SQuAD would drop "the").
    assert km.normalize_answer("The Beatles") == "the beatles"


def test_exact_match_and_char_f1_by_hand():
    assert km.exact_match("1945년.", "1945년") == 1.0
    assert km.exact_match("《토지》", "토지") == 1.0
    assert km.exact_match("토지의", "토지") == 0.0
    # 3 common characters; precision 3/4, recall 3/3 -> F1 = 2·0.75/1.75 = 6/7.
    assert km.f1("임수경을", "임수경") == pytest.approx(6 / 7)
    # Spaces do not count: "서울 특별시" vs "서울" -> precision 2/5, recall 1 -> 4/7.
    assert km.f1("서울 특별시", "서울") == pytest.approx(4 / 7)
    # Character counts, not sets: "가가" vs "가" -> precision 1/2, recall 1 -> 2/3.
    assert km.f1("가가", "가") == pytest.approx(2 / 3)
    assert km.f1("부산", "서울") == 0.0
    assert km.f1("", "서울") == 0.0


def test_evaluate_takes_the_best_gold_and_averages():
    golds = [["1989년 2월 15일", "1989년"], ["임수경"], ["충무공"]]
    predictions = ["1989년", "임수경을", "세종"]
    scores = km.evaluate(golds, predictions)
    # EM: 1 + 0 + 0 over 3; F1: 1 + 6/7 + 0 over 3.
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 6 / 7) / 3)
    with pytest.raises(ValueError):
        km.evaluate(golds, predictions[:2])


# -- windows and answer spans ---------------------------------------------------------------------

def test_windows_step_by_doc_stride_and_answer_spans_map_back(tokenizer):
    task = make_task(doc_stride=16, max_query_length=8)
    examples = task.read_examples(KORQUAD, "train")
    features = task.build_features(examples, tokenizer, 48, "train")
    assert len(features) > len(examples), "the first context must need several windows"
    by_example = {}
    for f in features:
        assert len(f["input_ids"]) <= 48
        assert len(f["_offsets"]) == len(f["input_ids"])
        by_example.setdefault(f["_example_index"], []).append(f)
    for index, windows in by_example.items():
        ex = examples[index]
        answer = ex.answers[0]
        # Consecutive windows start doc_stride context tokens apart.
        firsts = [next(o for o in w["_offsets"] if o is not None)[0] for w in windows]
        context_tokens = tokenizer(ex.context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        token_index = {start: k for k, (start, _) in enumerate(context_tokens)}
        assert [token_index[s] for s in firsts] == [16 * k for k in range(len(windows))]
        answerable = 0
        for w in windows:
            s, e = w["start_positions"], w["end_positions"]
            if s == 0:
                assert e == 0
                continue
            answerable += 1
            # The gold token span cuts exactly the answer text out of the context.
            assert ex.context[w["_offsets"][s][0]:w["_offsets"][e][1]] == answer["text"]
        assert answerable >= 1
    # A question is cut to max_query_length tokens.
    for f in features:
        assert f["token_type_ids"].count(0) <= 8 + 2


def test_postprocess_picks_the_best_window_and_respects_max_answer_length(tokenizer):
    task = make_task(doc_stride=16, max_query_length=8, n_best_size=5)
    examples = task.read_examples(KORQUAD, "dev")
    features = task.build_features(examples, tokenizer, 48, "dev")
    outputs = gold_outputs(features)
    predictions = task.postprocess(outputs, features, examples)
    assert predictions == [ex.answers[0]["text"] for ex in examples]
    assert task.compute_metrics(predictions, examples) == {"exact_match": 100.0, "f1": 100.0}
    # A longer, higher-scoring span in another window loses to the length limit.
    task = make_task(doc_stride=16, max_query_length=8, max_answer_length=3, n_best_size=5)
    first = [i for i, f in enumerate(features) if f["_example_index"] == 0]
    gold = next(features[i] for i in first if features[i]["start_positions"])
    assert gold["end_positions"] - gold["start_positions"] + 1 <= 3
    other = next(i for i in first if features[i]["start_positions"] == 0)
    # Starts are only taken where the window gives the token its most context (max-context rule).
    context_positions = [k for k, o in enumerate(features[other]["_offsets"])
                         if o is not None and features[other]["_max_context"][k]]
    outputs["start_logits"][other, :] = -100.0  # an answer-less window: low logits, then two peaks
    outputs["end_logits"][other, :] = -100.0
    outputs["start_logits"][other, context_positions[0]] = 50.0
    outputs["end_logits"][other, context_positions[5]] = 50.0
    assert task.postprocess(outputs, features, examples)[0] == "1545년"
    # Within the limit it wins.
    outputs["end_logits"][other, context_positions[1]] = 60.0
    offsets = features[other]["_offsets"]
    expected = examples[0].context[offsets[context_positions[0]][0]:offsets[context_positions[1]][1]]
    assert task.postprocess(outputs, features, examples)[0] == expected
    records = task.prediction_records(predictions, examples)
    assert records[0] == {"p1-0": "1545년"}


def test_mecab_offsets_point_into_the_original_context(tmp_path):
    helpers = tiny_model
    mecab_dir = helpers.make_tiny_electra(str(tmp_path / "mecab"), tokenizer_type="mecab_wordpiece")
    tokenizer = helpers.load_tokenizer(mecab_dir)
    task = make_task(doc_stride=16, max_query_length=8)
    examples = task.read_examples(KORQUAD, "dev")
    features = task.build_features(examples, tokenizer, 48, "dev")
    for f in features:
        if f["start_positions"]:
            ex = examples[f["_example_index"]]
            assert ex.context[f["_offsets"][f["start_positions"]][0]:f["_offsets"][f["end_positions"]][1]] \
                == ex.answers[0]["text"]
    predictions = task.postprocess(gold_outputs(features), features, examples)
    assert task.compute_metrics(predictions, examples)["exact_match"] == 100.0


def test_question_too_long_for_max_seq_len_is_a_user_error(tokenizer):
    task = make_task(max_query_length=64)
    examples = task.read_examples(KORQUAD, "dev")
    with pytest.raises(UserInputError, match="max_seq_len"):
        task.build_features(examples, tokenizer, 8, "dev")


# -- a tiny model, trained -----------------------------------------------------------------------

def test_tiny_model_learns_the_fixture(tiny_dir, tokenizer):
    helpers = tiny_model
    task = make_task(doc_stride=32, max_query_length=16, max_answer_length=10, n_best_size=10)
    examples = task.read_examples(KORQUAD, "train")
    features = task.build_features(examples, tokenizer, 64, "train")
    model = task.build_model(tiny_dir)
    before = task.compute_metrics(task.postprocess(helpers.predict(model, features), features, examples), examples)
    losses = helpers.train_steps(model, features, steps=120)
    assert losses[-1] < losses[0] / 4
    predictions = task.postprocess(helpers.predict(model, features), features, examples)
    after = task.compute_metrics(predictions, examples)
    assert all(p in ex.context for p, ex in zip(predictions, examples))
    assert after["f1"] > 70.0 > before["f1"]


# -- the real KorQuAD 1.0 dev file --------------------------------------------------------------

@pytest.mark.skipif(not os.path.isfile(KORQUAD_DEV), reason="KorQuAD dev file not present")
def test_korquad_dev_loads_with_manifest_counts(tokenizer):
    task = make_task()
    examples = task.read_examples(KORQUAD_DEV, "dev")
    assert len(examples) == 5774  # MANIFEST: 5,774 questions
    assert len({ex.qid for ex in examples}) == 5774
    assert len({ex.title for ex in examples}) == 140  # articles
    with open(KORQUAD_DEV, encoding="utf-8") as f:
        paragraphs = [p for article in json.load(f)["data"] for p in article["paragraphs"]]
    assert len(paragraphs) == 964
    assert [ex.context for ex in examples] == [p["context"] for p in paragraphs for _ in p["qas"]]
    # Windows of a slice: every question has a window holding its whole answer, and
    # that window's token span covers the answer.
    some = examples[:150]
    features = make_task(doc_stride=64).build_features(some, tokenizer, 128, "dev")
    found = set()
    for f in features:
        if f["start_positions"]:
            ex = some[f["_example_index"]]
            span = ex.context[f["_offsets"][f["start_positions"]][0]:f["_offsets"][f["end_positions"]][1]]
            assert ex.answers[0]["text"] in span
            found.add(f["_example_index"])
    assert found == set(range(len(some)))


# -- through run_finetune.py ----------------------------------------------------------------------

def test_run_finetune_trains_and_evaluates_korquad(tiny_dir, tmp_path):
    import yaml

    import run_finetune

    values = {
        "task": "korquad_tiny", "train_file": "korquad.json", "dev_file": "korquad.json", "test_file": "",
        "data_dir": FIXTURES, "ckpt_dir": str(tmp_path / "ckpt"), "model_name_or_path": tiny_dir,
        "max_seq_len": 64, "doc_stride": 32, "max_query_length": 16, "max_answer_length": 10,
        "n_best_size": 10, "max_steps": 120, "train_batch_size": 8, "eval_batch_size": 16,
        "logging_steps": 60, "save_steps": 60, "learning_rate": 3e-3, "seed": 3,
    }
    path = tmp_path / "korquad.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with tiny_model.one_thread():
        run_finetune.main(["--config_file", str(path)])
    out = tmp_path / "ckpt" / "korquad_tiny"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["primary_metric"] == "f1"
    assert set(results["best"]["metrics"]) == {"exact_match", "f1"}
    assert results["best"]["metrics"]["f1"] > 70.0
    lines = (out / "predictions_dev.jsonl").read_text(encoding="utf-8").splitlines()
    merged = {k: v for line in lines for k, v in json.loads(line).items()}
    assert len(merged) == 9 and set(merged) == {ex.qid for ex in make_task().read_examples(KORQUAD, "dev")}
    # The official evaluator's inputs: predictions.json {id: text}, nbest_predictions.json {id: [...]}.
    official = json.loads((out / "predictions.json").read_text(encoding="utf-8"))
    assert official == merged
    nbest = json.loads((out / "nbest_predictions.json").read_text(encoding="utf-8"))
    assert all(nbest[q][0]["text"] == official[q] and {"text", "probability", "start_logit", "end_logit"}
               <= set(nbest[q][0]) for q in official)


@pytest.mark.parametrize("size", ["small", "base"])
def test_shipped_yaml_runs_on_korquad_layout_data(tiny_dir, tmp_path, size):
    """conf/korquad/electra-<size>.yaml with only the data, model, length and run length changed."""
    from finetune.config import load_config
    from finetune.trainer import run

    root = os.path.dirname(os.path.dirname(os.path.dirname(FIXTURES)))
    overrides = {"data_dir": FIXTURES, "train_file": KORQUAD, "dev_file": KORQUAD,
                 "model_name_or_path": tiny_dir, "ckpt_dir": str(tmp_path), "max_seq_len": 64,
                 "doc_stride": 32, "max_steps": 4, "logging_steps": 4, "save_steps": 4}
    config = load_config(os.path.join(root, "conf", "korquad", f"electra-{size}.yaml"),
                         overrides=overrides, extra_defaults=KorquadTask.config_defaults)
    with tiny_model.one_thread():
        results = run(config)
    assert results["best"]["split"] == "dev"
    assert set(results["best"]["metrics"]) == {"exact_match", "f1"}


def test_a_start_counts_only_in_the_window_where_it_has_most_context(tokenizer):
    task = make_task(doc_stride=16, max_query_length=8, n_best_size=5)
    examples = task.read_examples(KORQUAD, "dev")
    features = task.build_features(examples, tokenizer, 48, "dev")
    windows = [i for i, f in enumerate(features) if f["_example_index"] == 0]
    assert len(windows) >= 2
    first, second = features[windows[0]], features[windows[1]]
    # The last context token of the first window reappears in the second, with more context there.
    last = max(k for k, o in enumerate(first["_offsets"]) if o is not None)
    shared = first["_offsets"][last]
    again = second["_offsets"].index(shared)
    assert first["_max_context"][last] is False and second["_max_context"][again] is True
    # Every context token is max-context in exactly one window.
    marks = {}
    for i in windows:
        for o, mark in zip(features[i]["_offsets"], features[i]["_max_context"]):
            if o is not None:
                marks.setdefault(o, []).append(mark)
    assert all(m.count(True) == 1 for m in marks.values())
    # A huge start logit at the first window's edge is ignored there (transformers'
    # compute_predictions_logits skips starts without max context); the gold span wins.
    outputs = gold_outputs(features)
    outputs["start_logits"][windows[0], last] = 100.0
    predictions = task.postprocess(outputs, features, examples)
    assert predictions[0] == examples[0].answers[0]["text"]
    # The n-best list is ranked by start + end logit with softmax probabilities.
    nbest = predictions[0].nbest
    assert nbest[0]["text"] == predictions[0] and sum(n["probability"] for n in nbest) == pytest.approx(1.0)
    totals = [n["start_logit"] + n["end_logit"] for n in nbest]
    assert totals == sorted(totals, reverse=True) and len({n["text"] for n in nbest}) == len(nbest)
    files = task.prediction_files(predictions, examples)
    assert files["predictions.json"] == {ex.qid: ex.answers[0]["text"] for ex in examples}
    assert set(files["nbest_predictions.json"]) == {ex.qid for ex in examples}


def test_eval_all_checkpoints_scores_every_checkpoint_on_the_dev_file_as_koelectra(tiny_dir, tmp_path):
    """KorQuAD's published YAML has only a dev file (KoELECTRA's predict_file), and KoELECTRA's
    final loop scores every checkpoint on it; eval_all_checkpoints must not be silently ignored."""
    from finetune.config import load_config
    from finetune.trainer import run

    root = os.path.dirname(os.path.dirname(os.path.dirname(FIXTURES)))
    overrides = {"data_dir": FIXTURES, "train_file": KORQUAD, "dev_file": KORQUAD,
                 "model_name_or_path": tiny_dir, "ckpt_dir": str(tmp_path), "max_seq_len": 64,
                 "doc_stride": 32, "max_steps": 4, "logging_steps": 2, "save_steps": 2}
    config = load_config(os.path.join(root, "conf", "korquad", "electra-small.yaml"),
                         overrides=overrides, extra_defaults=KorquadTask.config_defaults)
    assert config.eval_all_checkpoints and not config.test_file
    with tiny_model.one_thread():
        results = run(config)
    record = results["checkpoints"]
    assert record["split"] == "dev" and [e["step"] for e in record["evaluations"]] == [2, 4]
    lines = (tmp_path / config.task / "eval_results.txt").read_text().splitlines()
    assert "f1_2 = " + str(record["evaluations"][0]["metrics"]["f1"]) in lines
