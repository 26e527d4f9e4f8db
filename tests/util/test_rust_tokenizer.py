"""util.rust_tokenizer gives the features transformers' tokenizers give, without importing transformers.

Vocabs of both kinds are learned from real NSMC reviews; single texts, pairs, words already
split (NER, KLUE-DP), and strided question/context windows with offsets (KorQuAD) are
tokenized by util.hf_tokenizer's transformers classes and by RustTokenizer, and compared.
"""
import os

import pytest

from tests.conftest import SHARED_DATA
from util.hf_tokenizer import load_tokenizer
from util.rust_tokenizer import load_rust_tokenizer

NSMC = os.path.join(SHARED_DATA, "nsmc")
pytestmark = pytest.mark.skipif(not os.path.isdir(NSMC), reason="../shared/data/nsmc is not on this machine")


def reviews(n, start=0):
    with open(os.path.join(NSMC, "ratings_train.txt"), encoding="utf-8") as f:
        docs = [line.rstrip("\n").split("\t")[1] for line in list(f)[1 + start:1 + start + n]]
    return [d for d in docs if d.strip()]


@pytest.fixture(scope="module", params=["wordpiece", "mecab_wordpiece"])
def vocab_dir(request, tmp_path_factory):
    from util.vocab_builder import build_vocab

    root = tmp_path_factory.mktemp(request.param)
    (root / "corpus.txt").write_text("\n".join(reviews(3000)) + "\n", encoding="utf-8")
    build_vocab(str(root / "corpus.txt"), str(root / "vocab"), request.param, vocab_size=3000, min_frequency=2,
                limit_alphabet=3000, unused_size=5)
    return str(root / "vocab")


def same(ours, theirs, keys):
    for key in keys:
        assert ours[key] == theirs[key], key


def test_pairs_and_truncation_give_transformers_ids(vocab_dir):
    fast, rust = load_tokenizer(vocab_dir), load_rust_tokenizer(vocab_dir)
    texts = reviews(300, start=5000) + ["[MASK] 는 [SEP] 그대로", "ＡＢＣ 全角 漢字 e\u0301", "a" * 150]
    keys = ("input_ids", "token_type_ids", "attention_mask")
    same(rust(texts, truncation=True, max_length=32), fast(texts, truncation=True, max_length=32), keys)
    same(rust(texts[:150], texts[150:300], truncation=True, max_length=40),
         fast(texts[:150], texts[150:300], truncation=True, max_length=40), keys)
    same(rust(texts[0]), fast(texts[0]), keys)
    assert rust.pad_token_id == fast.pad_token_id and rust.num_special_tokens_to_add(pair=True) == 3


def test_split_words_and_strided_windows_give_transformers_features(vocab_dir):
    fast, rust = load_tokenizer(vocab_dir), load_rust_tokenizer(vocab_dir)
    texts = reviews(60, start=8000)
    for text in texts:
        words = text.split()
        ours, theirs = (t(words, is_split_into_words=True, truncation=True, max_length=24,
                          return_offsets_mapping=True) for t in (rust, fast))
        same(ours, theirs, ("input_ids", "offset_mapping"))
        assert ours.word_ids() == theirs.word_ids()
    questions = [" ".join(t.split()[:3]) for t in texts[:20]]  # short, as KorQuAD cuts them (max_query_length)
    contexts = [" ".join(texts[i:i + 6]) for i in range(20, 40)]
    ours, theirs = (t(questions, contexts, truncation="only_second", max_length=48, stride=12,
                      return_overflowing_tokens=True, return_offsets_mapping=True) for t in (rust, fast))
    same(ours, theirs, ("input_ids", "token_type_ids", "offset_mapping", "overflow_to_sample_mapping"))
    assert len(ours["input_ids"]) > len(questions)  # the contexts really were cut into windows
    assert all(ours.sequence_ids(i) == theirs.sequence_ids(i) for i in range(len(ours["input_ids"])))
    ours, theirs = (t(questions, add_special_tokens=False, return_offsets_mapping=True) for t in (rust, fast))
    same(ours, theirs, ("input_ids", "offset_mapping"))
