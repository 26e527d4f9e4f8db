"""The converted directories' tokenizer: AutoTokenizer tokenizes exactly like our KoTokenizer."""
import json
import os
import shutil

import pytest

from tiny_checkpoint import bert_config, make_model_dir

from convert.checkpoint import Architecture
from convert.pipeline import convert_checkpoint
from convert.to_transformers import discriminator_entries, generator_entries
from util.tokenization import SPECIAL_TOKENS, KoTokenizer

NSMC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "shared", "data", "nsmc", "ratings_test.txt")
EDGE_CASES = ["Hello WORLD 안녕하세요!!", "café Über naïve", "漢字 섞인 文章입니다", "ㅋㅋㅋ ㅠㅠ 😀 …",
              "[CLS] 특수 [MASK] 토큰 [SEP]", "  공백   여러  개 \t탭 "]


def _nsmc_lines(n):
    if not os.path.isfile(NSMC):
        pytest.skip(f"{NSMC} not available")
    with open(NSMC, encoding="utf-8") as f:
        next(f)
        return [line.split("\t")[1] for _, line in zip(range(n), f)]


@pytest.fixture(scope="module")
def trained_vocab(tmp_path_factory):
    """A real WordPiece vocab learned from NSMC reviews, special tokens at 0-4 as our vocabs have them."""
    from tokenizers import BertWordPieceTokenizer

    directory = tmp_path_factory.mktemp("vocab")
    trainer = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                     lowercase=False)
    trainer.train_from_iterator(_nsmc_lines(3000), vocab_size=1200, min_frequency=2,
                                special_tokens=SPECIAL_TOKENS, show_progress=False)
    trainer.save_model(str(directory))
    return str(directory / "vocab.txt")


@pytest.mark.parametrize("tokenizer_type,do_lower_case", [("wordpiece", False), ("wordpiece", True),
                                                          ("mecab_wordpiece", False)])
def test_auto_tokenizer_tokenizes_like_ko_tokenizer(tmp_path, trained_vocab, tokenizer_type, do_lower_case):
    from transformers import AutoTokenizer

    vocab_size = sum(1 for _ in open(trained_vocab, encoding="utf-8"))
    model_dir = make_model_dir(str(tmp_path / "model"), bert_config(16, 1, 1, 16, vocab_size),
                               bert_config(16, 1, 1, 16, vocab_size), tokenizer_type=tokenizer_type,
                               do_lower_case=do_lower_case)
    shutil.copyfile(trained_vocab, os.path.join(model_dir, "vocab.txt"))
    out = tmp_path / "disc"
    convert_checkpoint(model_dir, str(out), verify=False, log=lambda _: None)

    saved = json.load(open(out / "tokenizer_config.json"))
    assert saved["tokenizer_type"] == tokenizer_type and saved["do_lower_case"] is do_lower_case
    assert saved["strip_accents"] is False and saved["model_max_length"] == 40
    hf = AutoTokenizer.from_pretrained(out, local_files_only=True, trust_remote_code=True)
    assert type(hf).__name__ == ("MecabElectraTokenizerFast" if tokenizer_type == "mecab_wordpiece"
                                 else "ElectraTokenizerFast")
    ours = KoTokenizer.from_vocab(str(out))
    assert (ours.tokenizer_type, ours.do_lower_case) == (tokenizer_type, do_lower_case)
    texts = _nsmc_lines(300) + EDGE_CASES
    from util.hf_tokenizer import load_tokenizer

    ko_hf = load_tokenizer(str(out))  # MecabElectraTokenizerFast when tokenizer_type says mecab
    for text in texts:
        assert ko_hf.tokenize(text) == ours.tokenize(text), text
        encoded = ko_hf(text)["input_ids"]
        assert encoded == [ours.cls_id] + ours.encode(text) + [ours.sep_id], text
        assert hf(text)["input_ids"] == encoded, text  # AutoTokenizer too, mecab included
    assert sum(ours.unk_id in ours.encode(t) for t in texts) < len(texts)  # a real vocab, not all [UNK]


def test_every_model_variable_is_mapped_once_per_model():
    """Each TF variable feeds one transformers weight per model (the generator's table feeds two: tied)."""
    disc, gen = bert_config(32, 2, 2, 16, 50), bert_config(16, 2, 1, 16, 50)
    arch = Architecture(discriminator=disc, generator=gen)
    for entries in (discriminator_entries(arch), generator_entries(arch)):
        keys = [key for _, _, key, _ in entries]
        assert len(keys) == len(set(keys))
    gen_names = [name for name, _, _, _ in generator_entries(arch)]
    assert gen_names.count("electra/embeddings/word_embeddings") == 2  # input table and tied output layer
    assert "generator/embeddings_project/kernel" not in gen_names  # gen hidden == embedding size
    assert "electra/embeddings_project/kernel" in [n for n, _, _, _ in discriminator_entries(arch)]
