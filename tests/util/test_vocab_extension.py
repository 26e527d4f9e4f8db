"""build_vocab.py --extend on the quirky fixture (repeated tokens, no final newline, like the
released Dialog-KoELECTRA vocab) with the bundled dialogue sample as the domain text."""
import json
import os

import pytest

import build_vocab
from tests.util.test_vocab_file import QUIRKY, write_quirky
from util.errors import run_cli
from util.tokenization import KoTokenizer
from util.vocab_file import VocabFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIALOGUE = os.path.join(ROOT, "data", "sample", "dialogue.txt")
UNUSED = 40  # QUIRKY's [unused0] plus these
RECORD_KEYS = {"base_vocab", "base_vocab_sha256", "base_vocab_size", "tokenizer_type", "do_lower_case", "corpus",
               "num_new", "new_tokens", "tokens_per_sentence"}
ENTRY_KEYS = {"id", "token", "replaced", "base_pieces", "count", "pieces_saved"}


def dialogue_lines():
    return [line.strip() for line in open(DIALOGUE, encoding="utf-8") if line.strip()]


def quirky_vocab(directory):
    """The quirky fixture, then more [unusedN] lines, then the dialogue's characters bare and
    ##-marked, so every word tokenizes, letter by letter."""
    chars = sorted({c for line in dialogue_lines() for c in line if not c.isspace()})
    unused = [f"[unused{i}]" for i in range(1, UNUSED)]
    return write_quirky(directory, unused + chars + ["##" + c for c in chars])


def extend(args):
    build_vocab.main(["--corpus", DIALOGUE, "--min_frequency", "2"] + args)


@pytest.fixture(scope="module", params=["wordpiece", "mecab_wordpiece"])
def extended(request, tmp_path_factory):
    """(base vocab.txt, extended directory, record) for each tokenizer type."""
    tmp = tmp_path_factory.mktemp(request.param)
    base = quirky_vocab(str(tmp / "base"))
    out = tmp / "extended"
    extend(["--extend", base, "--tokenizer", request.param, "--num_new", "25", "--output_dir", str(out)])
    return base, str(out), json.load(open(out / "vocab_extension.json", encoding="utf-8"))


def test_every_old_line_and_id_stays(extended):
    base, out, record = extended
    old_raw, new_raw = open(base, "rb").read(), open(os.path.join(out, "vocab.txt"), "rb").read()
    old_lines, new_lines = old_raw.split(b"\n"), new_raw.split(b"\n")
    replaced = {t["id"] for t in record["new_tokens"]}
    assert len(new_lines) == len(old_lines) and not new_raw.endswith(b"\n")  # no final newline, as before
    assert len(replaced) == record["num_new"] == 25
    assert all(new_lines[i] == old_lines[i] for i in range(len(old_lines)) if i not in replaced)
    old, new = VocabFile(base), VocabFile(os.path.join(out, "vocab.txt"))
    assert len(new) == len(old) == record["base_vocab_size"]
    # Every old token keeps its id, the repeated ones (ARS, 캐시백) their last line.
    assert all(new.ids[t] == i for t, i in old.ids.items() if i not in replaced)
    assert new.ids["ARS"] == 11 and new.ids["캐시백"] == 16
    # The slots are filled in file order: [unused0] (id 5, before the repeats), then the rest.
    slots = [i for i, t in enumerate(old.tokens) if t.startswith("[unused")]
    assert sorted(replaced) == slots[:25] and 5 in replaced
    for entry in record["new_tokens"]:
        assert new.tokens[entry["id"]] == entry["token"] and old.tokens[entry["id"]] == entry["replaced"]


def test_record_describes_the_extension(extended):
    base, out, record = extended
    tokenizer_type = json.load(open(os.path.join(out, "tokenizer_config.json")))["tokenizer_type"]
    assert set(record) == RECORD_KEYS and all(set(e) == ENTRY_KEYS for e in record["new_tokens"])
    assert record["tokenizer_type"] == tokenizer_type and record["do_lower_case"] is False
    assert record["base_vocab_sha256"] == VocabFile(base).sha256 and record["base_vocab"] == os.path.abspath(base)
    old = KoTokenizer(base, tokenizer_type)
    scores = []
    for entry in record["new_tokens"]:
        pieces = old.inv_vocab
        assert entry["pieces_saved"] == len(entry["base_pieces"]) - 1 >= 1
        assert old.unk_id not in entry["base_pieces"] and entry["count"] >= 2
        # The old pieces spell the token out (mecab's fall-back drops the ## of a later morpheme).
        spelled = "".join(pieces[i].replace("##", "") for i in entry["base_pieces"])
        assert spelled == entry["token"].replace("##", "")
        scores.append(entry["count"] * entry["pieces_saved"])
    assert scores == sorted(scores, reverse=True)


def test_tokenizer_emits_every_new_token_and_sentences_get_shorter(extended):
    base, out, record = extended
    lines = dialogue_lines()
    new = KoTokenizer.from_vocab(out)
    old = KoTokenizer(base, new.tokenizer_type)
    old_ids, new_ids = old.encode_batch(lines), new.encode_batch(lines)
    emitted = {i for seq in new_ids for i in seq}
    assert {e["id"] for e in record["new_tokens"]} <= emitted
    before, after = sum(map(len, old_ids)) / len(lines), sum(map(len, new_ids)) / len(lines)
    assert record["tokens_per_sentence"] == {"before": round(before, 4), "after": round(after, 4),
                                             "sentences": len(lines)}
    assert after < before
    if new.tokenizer_type == "mecab_wordpiece":
        # Later morphemes go in ##-marked, as the tokenizer looks them up.
        assert any(e["token"].startswith("##") for e in record["new_tokens"])
    else:
        assert not any(e["token"].startswith("##") for e in record["new_tokens"])


def test_a_token_that_would_make_a_longer_word_unknown_is_skipped(tmp_path):
    """WordPiece matches longest-first from a word's start: with 안녕 in the vocab, 안녕히
    becomes 안녕 + a rest the vocab cannot continue (no ##히), i.e. [UNK]."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("안녕 안녕 안녕 안녕\n안녕히\n", encoding="utf-8")
    vocab = tmp_path / "base" / "vocab.txt"
    vocab.parent.mkdir()
    vocab.write_text("\n".join(QUIRKY[:6] + ["[unused1]", "안", "##녕", "##녕히"]) + "\n", encoding="utf-8")
    old = KoTokenizer(str(vocab))
    assert old.tokenize("안녕 안녕히") == ["안", "##녕", "안", "##녕히"]
    build_vocab.main(["--extend", str(vocab), "--corpus", str(corpus), "--num_new", "1", "--min_frequency", "1",
                      "--output_dir", str(tmp_path / "out")])
    record = json.load(open(tmp_path / "out" / "vocab_extension.json"))
    # 안녕 scores 4 x 1 but would turn 안녕히 into [UNK]; 안녕히 (1 x 1) takes the slot.
    assert [e["token"] for e in record["new_tokens"]] == ["안녕히"]
    assert KoTokenizer.from_vocab(str(tmp_path / "out")).tokenize("안녕 안녕히") == ["안", "##녕", "안녕히"]


def test_settings_come_from_the_recorded_config(tmp_path):
    """A vocab directory's tokenizer_config.json decides; the output carries it on."""
    base = tmp_path / "base"
    quirky_vocab(str(base))
    (base / "tokenizer_config.json").write_text(json.dumps({"tokenizer_type": "mecab_wordpiece",
                                                            "do_lower_case": False, "model_max_length": 512}))
    extend(["--extend", str(base), "--num_new", "3", "--output_dir", str(tmp_path / "out")])
    config = json.load(open(tmp_path / "out" / "tokenizer_config.json"))
    assert config["tokenizer_type"] == "mecab_wordpiece" and config["model_max_length"] == 512
    assert json.load(open(tmp_path / "out" / "vocab_extension.json"))["tokenizer_type"] == "mecab_wordpiece"


@pytest.mark.parametrize("config, args, message", [
    (None, ["--num_new", str(UNUSED + 1)], f"--num_new {UNUSED + 1}: {{vocab}} has only {UNUSED} free [unusedN] slots"),
    ({"tokenizer_type": "mecab_wordpiece"}, ["--num_new", "3", "--tokenizer", "wordpiece"],
     "--tokenizer wordpiece contradicts tokenizer_type 'mecab_wordpiece' recorded in"),
    ({"tokenizer_type": "wordpiece", "do_lower_case": False}, ["--num_new", "3", "--do_lower_case"],
     "--do_lower_case contradicts do_lower_case false recorded in"),
    (None, ["--num_new", "3", "--vocab_size", "100"], "--vocab_size: not used with --extend"),
    (None, ["--num_new", "0"], "--num_new must be at least 1, got 0"),
])
def test_bad_extension_exits_1_and_writes_nothing(tmp_path, capsys, config, args, message):
    base = tmp_path / "base"
    vocab = quirky_vocab(str(base))
    if config is not None:
        (base / "tokenizer_config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        run_cli(lambda: extend(["--extend", str(base), "--output_dir", str(out)] + args))
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and message.format(vocab=vocab) in err, err
    assert not out.exists()


def test_output_into_the_base_directory_is_refused(tmp_path, capsys):
    base = tmp_path / "base"
    quirky_vocab(str(base))
    before = (base / "vocab.txt").read_bytes()
    with pytest.raises(SystemExit):
        run_cli(lambda: extend(["--extend", str(base), "--num_new", "3", "--output_dir", str(base)]))
    assert "holds the vocab being extended" in capsys.readouterr().err
    assert (base / "vocab.txt").read_bytes() == before and not (base / "vocab_extension.json").exists()


def test_extended_vocab_builds_a_dataset(extended, tmp_path):
    from pretrain.dataset_builder import DatasetOptions, build_dataset

    base, out, record = extended
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "dialogue.txt").write_text("\n".join(dialogue_lines()) + "\n", encoding="utf-8")
    stats = build_dataset(DatasetOptions(corpus_dir=str(corpus), vocab_file=out, output_dir=str(tmp_path / "data"),
                                         max_seq_length=32, num_out_files=1, progress=False))
    assert stats["vocab_sha256"] == VocabFile(os.path.join(out, "vocab.txt")).sha256 != record["base_vocab_sha256"]
    assert stats["vocab_size"] == record["base_vocab_size"]
    assert stats["tokenizer_type"] == record["tokenizer_type"] and stats["unk_rate"] == 0
