import os
import pickle

import pytest

from util.errors import UserInputError
from util.files import write_json
from util.tokenization import KoTokenizer, MecabSplitter, tokenizer_config


def sample_lines(path):
    return [l for l in open(path, encoding="utf-8").read().split("\n") if l]


def test_parity_with_transformers_on_every_sample_line(sample_vocab_dir, sample_corpus_file):
    os.environ.setdefault("USE_TF", "0")
    from transformers import ElectraTokenizerFast

    ours = KoTokenizer.from_vocab(sample_vocab_dir)
    theirs = ElectraTokenizerFast(os.path.join(sample_vocab_dir, "vocab.txt"), do_lower_case=False)
    lines = sample_lines(sample_corpus_file) + ["[CLS] 한국어 ELECTRA를 공유합니다. [SEP]", "이모지 😀 와 한자 韓國"]
    ours_tokens = ours.tokenize_batch(lines)
    for line, tokens in zip(lines, ours_tokens):
        assert tokens == theirs.tokenize(line), line
    assert ours.encode(lines[0]) == theirs.convert_tokens_to_ids(theirs.tokenize(lines[0]))


def test_special_tokens_stay_whole(sample_vocab_dir):
    tok = KoTokenizer.from_vocab(sample_vocab_dir)
    tokens = tok.tokenize("[CLS] 한국어 ELECTRA를 공유합니다. [SEP]")
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tok.convert_tokens_to_ids(tokens)[0] == tok.cls_id == 2


def test_lower_casing_keeps_hangul_whole(sample_vocab_dir):
    cased = KoTokenizer.from_vocab(sample_vocab_dir)
    lower = KoTokenizer.from_vocab(sample_vocab_dir, do_lower_case=True)
    text = "한국어 문장입니다"
    assert lower.tokenize(text) == cased.tokenize(text)
    assert lower.unk_id not in lower.encode(text)
    assert "ᄒ" not in "".join(lower.tokenize(text))  # no jamo: accents were not stripped
    assert lower.tokenize("ELECTRA") != cased.tokenize("ELECTRA")


def test_recorded_settings_travel_with_the_vocab(tmp_path, sample_vocab_dir):
    vocab = open(os.path.join(sample_vocab_dir, "vocab.txt"), encoding="utf-8").read()
    (tmp_path / "vocab.txt").write_text(vocab, encoding="utf-8")
    assert KoTokenizer.from_vocab(tmp_path).tokenizer_type == "wordpiece"  # no JSON: plain, cased
    write_json(tmp_path / "tokenizer_config.json", tokenizer_config("mecab_wordpiece", True))
    tok = KoTokenizer.from_vocab(tmp_path / "vocab.txt")
    assert (tok.tokenizer_type, tok.do_lower_case) == ("mecab_wordpiece", True)
    assert KoTokenizer.from_vocab(tmp_path, tokenizer_type="wordpiece").tokenizer_type == "wordpiece"


def test_mecab_pretokenization_splits_morphemes_and_keeps_specials():
    split = MecabSplitter()
    assert split("아버지가방에들어가신다") == "아버지 가 방 에 들어가 신다"
    assert split("[CLS] 한국어를 [MASK] [SEP]") == "[CLS] 한국어 를 [MASK] [SEP]"
    assert pickle.loads(pickle.dumps(split))("먹었다") == split("먹었다")


def test_tokenizer_pickles_for_worker_processes(sample_vocab_dir):
    tok = KoTokenizer.from_vocab(sample_vocab_dir, tokenizer_type="mecab_wordpiece")
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.tokenize("오늘 날씨가 좋네요") == tok.tokenize("오늘 날씨가 좋네요")


@pytest.mark.parametrize("content, message", [
    ("[PAD]\n[UNK]\n[CLS]\n[SEP]\n가\n", "lacks special tokens [MASK]"),
    ("[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n", "vocab.txt:3: empty line"),
])
def test_bad_vocab_is_named(tmp_path, content, message):
    (tmp_path / "vocab.txt").write_text(content, encoding="utf-8")
    with pytest.raises(UserInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        KoTokenizer.from_vocab(tmp_path)


def test_missing_vocab_and_bad_type(tmp_path):
    with pytest.raises(UserInputError, match="vocab file not found"):
        KoTokenizer.from_vocab(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", encoding="utf-8")
    write_json(tmp_path / "tokenizer_config.json", {"tokenizer_type": "sentencepiece"})
    with pytest.raises(UserInputError, match="tokenizer_config.json: tokenizer_type 'sentencepiece'"):
        KoTokenizer.from_vocab(tmp_path)
