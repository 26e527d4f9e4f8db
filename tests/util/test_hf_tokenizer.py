"""util.hf_tokenizer: the transformers tokenizers that give our ids after conversion."""
import json
import os
import pickle

import pytest

from util.files import write_json
from util.hf_tokenizer import MecabElectraTokenizerFast, load_tokenizer
from util.tokenization import KoTokenizer, tokenizer_config
from util.vocab_builder import build_vocab
from tests.util.test_vocab_file import write_quirky

os.environ.setdefault("USE_TF", "0")


@pytest.fixture(scope="module")
def mecab_dir(sample_corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("mecab_vocab")
    build_vocab(sample_corpus_file, str(out), "mecab_wordpiece", vocab_size=1500, min_frequency=1,
                limit_alphabet=600, unused_size=10)
    return str(out)


def sample_lines(path, n=200):
    return [l for l in open(path, encoding="utf-8").read().split("\n") if l][:n]


def test_mecab_tokenizer_gives_ko_tokenizer_ids_and_true_offsets(mecab_dir, sample_corpus_file):
    hf = load_tokenizer(mecab_dir)
    assert isinstance(hf, MecabElectraTokenizerFast)
    ours = KoTokenizer.from_vocab(mecab_dir)
    lines = sample_lines(sample_corpus_file) + ["[CLS] 평점들은 [MASK] 재밌다 [SEP]", "이모지 😀 와 한자 韓國"]
    assert hf(lines, add_special_tokens=False)["input_ids"] == ours.encode_batch(lines)
    assert [hf.tokenize(l) for l in lines] == ours.tokenize_batch(lines)
    text = "영화가 정말 재밌었어요"
    enc = hf(text, return_offsets_mapping=True)
    tokens = hf.convert_ids_to_tokens(enc["input_ids"])
    for token, (start, end) in zip(tokens[1:-1], enc["offset_mapping"][1:-1]):
        if token != "[UNK]":
            assert text[start:end] == token.removeprefix("##"), token
    pair = hf("영화가", "재밌다")
    assert pair["input_ids"][0] == ours.cls_id and pair["token_type_ids"][-1] == 1


def test_saved_mecab_tokenizer_reloads_and_keeps_the_vocab(mecab_dir, tmp_path):
    from transformers import AutoTokenizer

    hf = load_tokenizer(mecab_dir)
    hf.save_pretrained(str(tmp_path))
    assert (tmp_path / "vocab.txt").read_bytes() == open(os.path.join(mecab_dir, "vocab.txt"), "rb").read()
    saved = json.load(open(tmp_path / "tokenizer_config.json"))
    assert saved["tokenizer_class"] == "MecabElectraTokenizerFast" and saved["tokenizer_type"] == "mecab_wordpiece"
    assert saved["auto_map"] == {"AutoTokenizer": [None, "tokenization_mecab_electra.MecabElectraTokenizerFast"]}
    assert (tmp_path / "tokenization_mecab_electra.py").is_file()
    again = load_tokenizer(str(tmp_path))
    assert again("평점들은 재밌다")["input_ids"] == hf("평점들은 재밌다")["input_ids"]
    assert pickle.loads(pickle.dumps(hf))("평점들은")["input_ids"] == hf("평점들은")["input_ids"]
    # AutoTokenizer runs the saved class (tests/util/test_tokenization_mecab_electra.py does it
    # outside the repository); without trust_remote_code it refuses instead of plain WordPiece.
    auto = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True, trust_remote_code=True)
    assert type(auto).__name__ == "MecabElectraTokenizerFast"
    assert auto("평점들은 재밌다")["input_ids"] == hf("평점들은 재밌다")["input_ids"]
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)


def test_plain_tokenizer_saves_a_repeating_vocab_verbatim(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = write_quirky(str(src))
    write_json(src / "tokenizer_config.json", tokenizer_config("wordpiece", False))
    hf = load_tokenizer(str(src))
    ids = hf("ARS 평점 캐시백")["input_ids"]
    assert ids == [2, 11, 12, 16, 3]
    out = tmp_path / "out"
    hf.save_pretrained(str(out))  # transformers alone would drop lines 9 and 16 here
    assert (out / "vocab.txt").read_bytes() == open(path, "rb").read()
    assert load_tokenizer(str(out))("ARS 평점 캐시백")["input_ids"] == ids


def test_repeated_tokens_leave_holes_that_are_never_serialized(tmp_path, capfd):
    """The Rust tokenizers print "The OrderedVocab you are attempting to save contains holes"
    (on stdout, from Rust) whenever a model whose ids skip a repeated token's earlier line is
    serialized. Neither class does that: the mecab one at construction (transformers
    deep-copies the backend), the WordPiece one at save_pretrained (tokenizer.json)."""
    from transformers import AutoTokenizer

    src = tmp_path / "src"
    src.mkdir()
    write_quirky(str(src))
    for kind in ("mecab_wordpiece", "wordpiece"):
        write_json(src / "tokenizer_config.json", tokenizer_config(kind, False))
        hf = load_tokenizer(str(src))
        assert hf.convert_tokens_to_ids(["ARS", "캐시백", "[PAD]", "[MASK]"]) == [11, 16, 0, 4]
        assert hf.convert_ids_to_tokens([8, 15]) == [None, None]  # the holes: lines 9 and 16
        ids = hf("평점 ARS 캐시백")["input_ids"]
        assert ids == [2, 12, 11, 16, 3] or kind == "mecab_wordpiece"  # mecab splits 캐시백
        assert ids == [2] + KoTokenizer.from_vocab(str(src)).encode("평점 ARS 캐시백") + [3]
        out = tmp_path / kind
        hf.save_pretrained(str(out))
        assert not (out / "tokenizer.json").exists()
        assert (out / "vocab.txt").read_bytes() == (src / "vocab.txt").read_bytes()
        assert load_tokenizer(str(out))("평점 ARS 캐시백")["input_ids"] == ids
        plain = AutoTokenizer.from_pretrained(str(out), local_files_only=True, trust_remote_code=True)
        assert plain.convert_tokens_to_ids(["ARS", "캐시백"]) == [11, 16]
        assert "contains holes" not in capfd.readouterr().out, kind
