"""What the predictor reads: NFC text without invisible characters, and items it can predict.

Real NSMC test reviews and the KLUE-NER fixture's sentences are fed as written, decomposed
(NFD, as macOS writes Hangul) and with invisible characters; ``Predictor`` itself refuses items
it cannot predict, so predict.py and the server, which call it, refuse them the same way.
"""
import os
import unicodedata

import pytest

from finetune.inference import Predictor
from finetune.predict_cli import predict_lines
from util.errors import UserInputError

from serving_models import NER_QA, nsmc_lines, nsmc_reviews


def nfd(text):
    return unicodedata.normalize("NFD", text)


@pytest.fixture(scope="module")
def nsmc(nsmc_model):
    return Predictor(nsmc_model, threads=1)


def test_nfd_reviews_are_predicted_as_their_nfc_text(nsmc):
    reviews = nsmc_reviews(300)
    decomposed = [nfd(r) for r in reviews]
    assert sum(d != r for d, r in zip(decomposed, reviews)) > 250
    assert nsmc.predict(decomposed) == nsmc.predict(reviews)
    records = list(predict_lines(nsmc, [d.encode() for d in decomposed[:20]], "nfd.txt", warn=lambda _: None))
    assert [r["text"] for r in records] == reviews[:20]  # the text echoed is the text read


def test_an_nfd_training_file_gives_the_features_of_the_nfc_file(nsmc, tmp_path):
    lines = ["id\tdocument\tlabel"] + nsmc_lines("ratings_train.txt", 200)
    (tmp_path / "nfc.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "nfd.txt").write_text(nfd("\n".join(lines)) + "\n", encoding="utf-8")
    from finetune.tasks import get_task

    task, tokenizer = get_task(nsmc.info.settings.task, nsmc.info.settings), nsmc.tokenizer  # the run's own
    features = [task.build_features(task.read_examples(str(tmp_path / name), "train"), tokenizer, 64, "train")
                for name in ("nfc.txt", "nfd.txt")]
    assert features[0] == features[1]


def test_ner_reads_nfd_and_zero_width_spaces_as_the_plain_sentence(ner_model):
    with open(os.path.join(NER_QA, "klue_ner.tsv"), encoding="utf-8") as f:
        sentences = [line.split("\t", 1)[1].strip() for line in f if line.startswith("## klue")]
    import re

    plain = [re.sub(r"<([^:<>]+):[A-Z]{2}>", r"\1", s) for s in sentences]
    predictor = Predictor(ner_model, threads=1)
    expected = predictor.predict(plain)
    assert sum(len(p["entities"]) for p in expected) > 0
    assert predictor.predict([nfd(s) for s in plain]) == expected
    # A zero-width space inside every word is not part of any entity's text.
    marked = [" ".join(w[:1] + "\u200b" + w[1:] for w in s.split(" ")) for s in plain]
    assert predictor.predict(marked) == expected


def test_invisible_only_and_whitespace_only_lines_are_both_empty(nsmc):
    lines = ["\u200b", "\ufeff", "\x00", "\u200b \ufeff", "   ", "\t", "", "재밌어요"]
    records = list(predict_lines(nsmc, [line.encode() for line in lines], "in.txt", warn=lambda _: None))
    assert [r.get("error") for r in records] == ["empty line"] * 7 + [None]
    assert records[-1]["label"] in nsmc.info.labels
    for text in ("\u200b\x00", " "):
        with pytest.raises(UserInputError, match=r"items\[1\]: text is empty"):
            nsmc.predict(["좋아요", text])


def test_the_api_refuses_what_the_cli_refuses(nsmc, pair_model):
    with pytest.raises(UserInputError, match=r"items\[0\]: text is empty"):
        nsmc.predict([""])
    with pytest.raises(UserInputError, match=r"items\[0\]: this model reads one text, not a pair"):
        nsmc.predict([("좋아요", "별로")])
    with pytest.raises(UserInputError, match=r"items\[0\]: text must be a string, got int"):
        nsmc.predict([3])
    kept = nsmc.predict(["좋아요", "", "별로예요"], errors="record")
    assert kept[1] == {"error": "text is empty"} and kept[0]["label"] in nsmc.info.labels
    assert kept[0] == nsmc.predict(["좋아요"])[0] and kept[2] == nsmc.predict(["별로예요"])[0]

    pairs = Predictor(pair_model, threads=1)
    with pytest.raises(UserInputError, match=r"items\[0\]: this model reads a pair \(text_a, text_b\); "
                                             r"the second text is missing"):
        pairs.predict(["환불 어떻게 하나요?"])
    with pytest.raises(UserInputError, match=r"items\[0\]: text_b is empty"):
        pairs.predict([("환불 어떻게 하나요?", "\u200b")])
    assert pairs.predict([("환불 어떻게 하나요?", "환불 방법 알려주세요")])[0]["label"] in pairs.info.labels
