"""build_pretraining_dataset.py on real Korean text (wikinews from the boddari corpus).

Every dataset here is parsed back with tf.data and checked example by example.
"""
import glob
import os
import random
import re
import subprocess
import sys

import pytest

from pretrain import dataset_builder, dataset_writer
from pretrain.dataset_builder import DatasetOptions, ExampleBuilder, build_dataset
from util.files import read_json, sha256_of_file, write_json
from util.tokenization import SPECIAL_TOKENS, KoTokenizer, tokenizer_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIKINEWS = os.path.join(os.path.dirname(ROOT), "shared", "data", "pretrain-text", "boddari", "boddari", "txt",
                        "wikinews.txt")
NUM_DOCS = 40
# Whole-word vocab entries, one per document, put at the start of each of its sentences,
# so the document an example came from can be read off its ids.
MARKERS = [f"DOCMARK{i:02d}" for i in range(NUM_DOCS)]
MAX_LEN = 64


def wikinews_documents(count):
    """The first ``count`` wikinews articles, each a list of sentences."""
    with open(WIKINEWS, encoding="utf-8") as f:
        paragraphs = [p for p in f.read().split("\n\n") if p.strip()]
    documents = []
    for paragraph in paragraphs[:count]:
        sentences = []
        for line in paragraph.splitlines():
            sentences += [s for s in re.split(r"(?<=[.?!])\s+", line.strip()) if s]
        documents.append(sentences)
    return documents


def train_vocab(directory, lines, tokenizer_type="wordpiece", extra_tokens=()):
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(strip_accents=False, lowercase=False)
    trainer.train_from_iterator(lines, vocab_size=3000, special_tokens=SPECIAL_TOKENS)
    os.makedirs(directory, exist_ok=True)
    trainer.save_model(directory)
    vocab_file = os.path.join(directory, "vocab.txt")
    with open(vocab_file, encoding="utf-8") as f:
        known = set(f.read().split("\n"))
    with open(vocab_file, "a", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in extra_tokens if t not in known)
    write_json(os.path.join(directory, "tokenizer_config.json"), tokenizer_config(tokenizer_type, False))
    return directory


def write_corpus(directory, documents, markers=True):
    """Documents 0..n/2-1 in a.txt, the rest in sub/b.txt; blank lines between documents."""
    half = len(documents) // 2
    for name, part, offset in (("a.txt", documents[:half], 0), ("sub/b.txt", documents[half:], half)):
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for i, sentences in enumerate(part, offset):
                prefix = MARKERS[i] + " " if markers else ""
                f.write("".join(prefix + s + "\n" for s in sentences) + "\n")
    return directory


@pytest.fixture(scope="module")
def documents():
    return wikinews_documents(NUM_DOCS)


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory, documents):
    lines = [s for d in wikinews_documents(300) for s in d]
    return train_vocab(str(tmp_path_factory.mktemp("vocab")), lines, extra_tokens=MARKERS)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, documents):
    return write_corpus(str(tmp_path_factory.mktemp("corpus")), documents)


def build(corpus, vocab, output, **overrides):
    options = DatasetOptions(corpus_dir=corpus, vocab_file=vocab, output_dir=output,
                             max_seq_length=overrides.pop("max_seq_length", MAX_LEN),
                             num_out_files=overrides.pop("num_out_files", 3), progress=False, **overrides)
    return build_dataset(options)


def read_examples(output_dir, max_len):
    """Every example of every shard, shard by shard, as dicts of int lists."""
    import tensorflow as tf

    spec = {name: tf.io.FixedLenFeature([max_len], tf.int64) for name in dataset_writer.FEATURE_NAMES}
    examples = []
    for path in sorted(glob.glob(os.path.join(output_dir, "pretrain_data.tfrecord*"))):
        for record in tf.data.TFRecordDataset(path):
            parsed = tf.io.parse_single_example(record, spec)
            examples.append({k: v.numpy().tolist() for k, v in parsed.items()})
    return examples


def shard_bytes(output_dir):
    paths = sorted(glob.glob(os.path.join(output_dir, "pretrain_data.tfrecord*")))
    return {os.path.basename(p): open(p, "rb").read() for p in paths}


def check_invariants(example, max_len, tokenizer):
    ids, mask, segments = example["input_ids"], example["input_mask"], example["segment_ids"]
    assert len(ids) == len(mask) == len(segments) == max_len
    length = sum(mask)
    assert mask == [1] * length + [0] * (max_len - length)
    assert ids[length:] == [tokenizer.pad_id] * (max_len - length)
    assert tokenizer.pad_id not in ids[:length]
    assert ids[0] == tokenizer.cls_id and ids[length - 1] == tokenizer.sep_id
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    seps = [i for i in range(length) if ids[i] == tokenizer.sep_id]
    assert len(seps) in (1, 2)
    assert seps[0] >= 2, "segment A is empty"
    assert tokenizer.cls_id not in ids[1:]
    if len(seps) == 2:
        assert seps[1] == length - 1 and seps[1] - seps[0] >= 2, "segment B is empty"
    assert segments == [0] * (seps[0] + 1) + [1] * (length - seps[0] - 1) + [0] * (max_len - length)


def test_examples_hold_every_invariant_and_stats_count_the_corpus(corpus_dir, vocab_dir, documents, tmp_path):
    out = str(tmp_path / "out")
    stats = build(corpus_dir, vocab_dir, out)
    tokenizer = KoTokenizer.from_vocab(vocab_dir)

    names = sorted(os.listdir(out))
    assert names == sorted(["stats.json"] + [f"pretrain_data.tfrecord-{i}-of-3" for i in range(3)])
    examples = read_examples(out, MAX_LEN)
    for example in examples:
        check_invariants(example, MAX_LEN, tokenizer)
    lengths = [sum(e["input_mask"]) for e in examples]
    two_segments = sum(e["segment_ids"][sum(e["input_mask"]) - 1] == 1 for e in examples)
    assert 0 < two_segments < len(examples)  # both [CLS] A [SEP] B [SEP] and [CLS] A [SEP] occur
    assert max(lengths) == MAX_LEN and min(lengths) < MAX_LEN

    sentences = [MARKERS[i] + " " + s for i, d in enumerate(documents) for s in d]
    token_ids = tokenizer.encode_batch(sentences)
    assert read_json(os.path.join(out, "stats.json")) == stats
    assert stats["examples"] == len(examples)
    assert stats["documents"] == NUM_DOCS
    assert stats["sentences"] == len(sentences)
    assert stats["tokens"] == sum(map(len, token_ids))
    unk = sum(ids.count(tokenizer.unk_id) for ids in token_ids)
    assert stats["unk_rate"] == pytest.approx(unk / stats["tokens"])
    assert stats["vocab_sha256"] == sha256_of_file(os.path.join(vocab_dir, "vocab.txt"))
    assert stats["vocab_size"] == tokenizer.vocab_size
    assert (stats["tokenizer_type"], stats["do_lower_case"], stats["max_seq_length"], stats["num_out_files"]) == \
        ("wordpiece", False, MAX_LEN, 3)
    assert stats["args"]["seed"] == 12345 and stats["args"]["corpus_dir"] == corpus_dir

    # The first example starts with the first sentence of the first document.
    first = token_ids[0][:MAX_LEN - 2]
    assert examples[0]["input_ids"][1:1 + len(first)] == first


def documents_of(example, marker_ids):
    return {i for i in example["input_ids"] if i in marker_ids}


def test_documents_never_share_an_example_unless_blanks_are_ignored(corpus_dir, vocab_dir, tmp_path):
    tokenizer = KoTokenizer.from_vocab(vocab_dir)
    marker_ids = {tokenizer.vocab[m] for m in MARKERS}
    build(corpus_dir, vocab_dir, str(tmp_path / "docs"), max_seq_length=128)
    for example in read_examples(str(tmp_path / "docs"), 128):
        assert len(documents_of(example, marker_ids)) == 1

    stats = build(corpus_dir, vocab_dir, str(tmp_path / "stream"), max_seq_length=128,
                  blanks_separate_docs=False)
    mixed = [e for e in read_examples(str(tmp_path / "stream"), 128) if len(documents_of(e, marker_ids)) > 1]
    assert mixed, "with blank lines ignored, examples run across documents"
    assert stats["documents"] == 2  # one per file
    for example in mixed:  # ...but never across files
        docs = documents_of(example, marker_ids)
        half = {tokenizer.vocab[m] for m in MARKERS[:NUM_DOCS // 2]}
        assert docs <= half or not docs & half


def test_same_inputs_give_the_same_bytes_for_any_process_count(corpus_dir, vocab_dir, tmp_path):
    # Small chunks, so each file is cut into several byte ranges shared by the workers.
    small = dict(chunk_bytes=3000)
    first = build(corpus_dir, vocab_dir, str(tmp_path / "one"), **small)
    again = build(corpus_dir, vocab_dir, str(tmp_path / "again"), **small)
    two = build(corpus_dir, vocab_dir, str(tmp_path / "two"), num_processes=2, **small)
    reference = shard_bytes(str(tmp_path / "one"))
    assert len(reference) == 3 and all(reference.values())
    assert shard_bytes(str(tmp_path / "again")) == reference
    assert shard_bytes(str(tmp_path / "two")) == reference
    assert first["examples"] == again["examples"] == two["examples"]
    assert first["documents"] == two["documents"] == NUM_DOCS  # documents cut by chunks count once

    tokenizer = KoTokenizer.from_vocab(vocab_dir)
    for example in read_examples(str(tmp_path / "two"), MAX_LEN):
        check_invariants(example, MAX_LEN, tokenizer)

    build(corpus_dir, vocab_dir, str(tmp_path / "seed"), seed=7, **small)
    assert shard_bytes(str(tmp_path / "seed")) != reference


def test_mecab_wordpiece_vocab_tokenizes_morphemes(documents, tmp_path):
    from util.tokenization import MecabSplitter

    split = MecabSplitter()
    lines = [split(s) for d in wikinews_documents(150) for s in d]
    vocab = train_vocab(str(tmp_path / "vocab"), lines, tokenizer_type="mecab_wordpiece")
    corpus = write_corpus(str(tmp_path / "corpus"), documents[:6], markers=False)
    stats = build(corpus, vocab, str(tmp_path / "out"), max_seq_length=128)
    assert stats["tokenizer_type"] == "mecab_wordpiece"

    mecab = KoTokenizer.from_vocab(vocab)
    plain = KoTokenizer.from_vocab(vocab, tokenizer_type="wordpiece")
    expected = [i for ids in mecab.encode_batch(documents[0]) for i in ids]
    assert expected != [i for ids in plain.encode_batch(documents[0]) for i in ids]
    examples = read_examples(str(tmp_path / "out"), 128)
    # The first example is the start of the first document, in mecab morphemes.
    content = [i for i in examples[0]["input_ids"][1:] if i not in (mecab.sep_id, mecab.pad_id)]
    assert len(content) > 20 and content == expected[:len(content)]
    for example in examples:
        check_invariants(example, 128, mecab)


def test_lower_case_flag_overrides_the_vocab(vocab_dir, tmp_path):
    # The vocab knows the marker only in capitals and records do_lower_case=false.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "DOCMARK01 한국 정부는 발표했다."
    (corpus / "a.txt").write_text(text + "\n", encoding="utf-8")
    marker = KoTokenizer.from_vocab(vocab_dir).vocab["DOCMARK01"]

    kept = build(str(corpus), vocab_dir, str(tmp_path / "kept"))
    assert kept["do_lower_case"] is False
    assert marker in read_examples(str(tmp_path / "kept"), MAX_LEN)[0]["input_ids"]

    lower = build(str(corpus), vocab_dir, str(tmp_path / "lower"), do_lower_case=True)
    assert lower["do_lower_case"] is True and lower["args"]["do_lower_case"] is True
    ids = read_examples(str(tmp_path / "lower"), MAX_LEN)[0]["input_ids"]
    expected = KoTokenizer.from_vocab(vocab_dir, do_lower_case=True).encode(text)
    assert marker not in ids and ids[1:1 + len(expected)] == expected


def test_rerun_clears_what_a_killed_run_left(corpus_dir, vocab_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [".pretrain_data.tfrecord-0-of-3.x1y2.tmp", "pretrain_data.tfrecord-4-of-7", ".stats.json.ab.tmp"]
    for name in leftovers:
        (out / name).write_bytes(b"half a record")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    build(corpus_dir, vocab_dir, str(out))
    assert sorted(os.listdir(out)) == sorted(
        ["notes.txt", "stats.json"] + [f"pretrain_data.tfrecord-{i}-of-3" for i in range(3)])


def test_shard_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with dataset_writer.ShardWriter(str(tmp_path), 4) as writer:
            writer.write(b"x")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_example_builder_fills_to_length_and_sometimes_shorter():
    rng = random.Random(0)
    builder = ExampleBuilder(128, rng)
    lengths, singles = [], 0
    for _ in range(20000):
        segments = builder.add_sentence(list(range(5, 5 + rng.randint(3, 40))))
        if segments:
            first, second = segments
            assert first and len(first) + len(second) + 3 <= 128 + (0 if second else 1)
            lengths.append(len(first) + len(second) + (3 if second else 2))
            singles += not second
    full = sum(n >= 120 for n in lengths) / len(lengths)
    assert 0.85 < full < 0.99  # about 5% get a random shorter target
    assert 0.05 < singles / len(lengths) < 0.2  # about 10% are one segment
    assert builder.end_document() is not None and builder.end_document() is None


def test_blank_flag_spellings():
    sys.path.insert(0, ROOT)
    import build_pretraining_dataset as script

    base = ["--corpus_dir", "c", "--vocab_file", "v", "--output_dir", "o"]
    assert script.parse_args(base).blanks_separate_docs is True
    assert script.parse_args(base + ["--blanks-separate-docs"]).blanks_separate_docs is True
    assert script.parse_args(base + ["--blanks-separate-docs", "false"]).blanks_separate_docs is False
    assert script.parse_args(base + ["--blanks-separate-docs=True"]).blanks_separate_docs is True
    assert script.parse_args(base + ["--no-blanks-separate-docs"]).blanks_separate_docs is False
    assert script.parse_args(base).do_lower_case is None
    assert script.parse_args(base + ["--no-lower-case"]).do_lower_case is False
    assert script.parse_args(base + ["--do-lower-case"]).do_lower_case is True


def run_script(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, os.path.join(ROOT, "build_pretraining_dataset.py"), *args,
                           "--no_progress"], capture_output=True, text=True, cwd=ROOT, env=env)


def assert_fails(result, *culprits, output_dir=None):
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for culprit in culprits:
        assert culprit in last
    if output_dir and os.path.isdir(output_dir):
        left = os.listdir(output_dir)
        assert "stats.json" not in left and not any(n.startswith("pretrain_data") for n in left), left


def test_cli_builds_the_seed_example(corpus_dir, vocab_dir, tmp_path):
    out = str(tmp_path / "out")
    result = run_script("--corpus_dir", corpus_dir, "--vocab_file", os.path.join(vocab_dir, "vocab.txt"),
                        "--tokenizer_type", "wordpiece", "--output_dir", out, "--max_seq_length", "128",
                        "--num_processes", "2", "--num_out_files", "2", "--blanks-separate-docs", "true")
    assert result.returncode == 0, result.stderr
    stats = read_json(os.path.join(out, "stats.json"))
    assert f"wrote {stats['examples']} examples" in result.stdout
    assert len(read_examples(out, 128)) == stats["examples"] > 0


def test_bad_inputs_fail_with_one_line_naming_the_culprit(corpus_dir, vocab_dir, tmp_path):
    out = str(tmp_path / "out")
    vocab = os.path.join(vocab_dir, "vocab.txt")
    missing = str(tmp_path / "nowhere")
    assert_fails(run_script("--corpus_dir", missing, "--vocab_file", vocab, "--output_dir", out), missing,
                 output_dir=out)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_fails(run_script("--corpus_dir", str(empty), "--vocab_file", vocab, "--output_dir", out), str(empty),
                 output_dir=out)
    for length in ("7", "5000"):
        assert_fails(run_script("--corpus_dir", corpus_dir, "--vocab_file", vocab, "--output_dir", out,
                                "--max_seq_length", length), "--max_seq_length", length, output_dir=out)

    bad_vocab = tmp_path / "bad_vocab.txt"
    bad_vocab.write_text("[PAD]\n[UNK]\n[CLS]\n한국\n", encoding="utf-8")
    assert_fails(run_script("--corpus_dir", corpus_dir, "--vocab_file", str(bad_vocab), "--output_dir", out),
                 str(bad_vocab), "[SEP]", "[MASK]", output_dir=out)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.txt").write_text("좋은 문장입니다.\n", encoding="utf-8")
    os.symlink(str(tmp_path / "gone.txt"), str(broken / "b.txt"))
    assert_fails(run_script("--corpus_dir", str(broken), "--vocab_file", vocab, "--output_dir", out),
                 str(broken / "b.txt"), output_dir=out)


def test_undecodable_file_names_its_line_and_removes_the_old_dataset(corpus_dir, vocab_dir, tmp_path):
    out = str(tmp_path / "out")
    build(corpus_dir, vocab_dir, out)  # a complete dataset from an earlier run
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("좋은 문장입니다.\n\n다른 문서입니다.\n", encoding="utf-8")
    (corpus / "b.txt").write_bytes("첫 줄\n둘째 줄\n".encode("utf-8") + b"\xff\xfe bad\n")
    result = run_script("--corpus_dir", str(corpus), "--vocab_file", vocab_dir, "--output_dir", out)
    assert_fails(result, f"{corpus / 'b.txt'}:3:", "UTF-8", output_dir=out)
    assert os.listdir(out) == []
    # The same from a worker process, with the bad line in a chunk that starts mid-file.
    with pytest.raises(dataset_builder.UserInputError, match=re.escape(f"{corpus / 'b.txt'}:3: not UTF-8")):
        build(str(corpus), vocab_dir, out, num_processes=2, chunk_bytes=8, blanks_separate_docs=False)
    assert os.listdir(out) == []


def test_output_inside_corpus_is_refused(corpus_dir, vocab_dir):
    with pytest.raises(dataset_builder.UserInputError, match="inside --corpus_dir"):
        build(corpus_dir, vocab_dir, os.path.join(corpus_dir, "tfrecords"))


TRICKY_LINES = ["a\u3000b  c\t\td", "한국어\u2028문장", "中文字符 漢字abc", "x\x00y\ufffdz [SEP] a[MASK]b", " ",
                "e\u0301 café ÀB", "가" * 150, "x[SEP]y [SEP]", "(괄호)…그리고,  쉼표.", "\U000f0855사용자 영역"]


@pytest.mark.parametrize("lower", [False, True])
def test_word_cache_gives_the_tokenizers_ids(vocab_dir, lower):
    tokenizer = KoTokenizer.from_vocab(vocab_dir, do_lower_case=lower)
    lines = [s for d in wikinews_documents(120) for s in d] + TRICKY_LINES
    # A tiny cache and tiny inputs, so clearing and grouping both happen.
    encoder = dataset_builder.WordCachedEncoder(tokenizer, cache_size=700, words_per_input=7)
    got = []
    for start in range(0, len(lines), 97):
        got += encoder.encode_batch(lines[start:start + 97])
    assert got == tokenizer.encode_batch(lines)
    last_batch_words = {w for line in lines[start:] for w in line.split(" ")}
    assert 0 < len(encoder._cache) <= 700 + len(last_batch_words)  # the cap, or one batch past it


def test_word_cache_gives_the_tokenizers_ids_for_mecab(tmp_path):
    from util.tokenization import MecabSplitter

    split = MecabSplitter()
    lines = [s for d in wikinews_documents(60) for s in d]
    vocab = train_vocab(str(tmp_path / "vocab"), [split(s) for s in lines], tokenizer_type="mecab_wordpiece")
    tokenizer = KoTokenizer.from_vocab(vocab)
    encoder = dataset_builder.WordCachedEncoder(tokenizer)
    assert encoder.encode_batch(lines + TRICKY_LINES) == tokenizer.encode_batch(lines + TRICKY_LINES)


def test_a_tokenizer_type_contradicting_the_vocab_is_refused_unless_forced(corpus_dir, tmp_path):
    """The README's old chain: a mecab_wordpiece vocab, then --tokenizer_type wordpiece."""
    from util.errors import UserInputError

    vocab = train_vocab(str(tmp_path / "vocab"), ["가나 다라"] * 20, tokenizer_type="mecab_wordpiece")
    with pytest.raises(UserInputError, match=r"--tokenizer_type wordpiece contradicts .*tokenizer_config.json, "
                                             r"which records tokenizer_type mecab_wordpiece .*--force_tokenizer_type"):
        build(corpus_dir, vocab, str(tmp_path / "out"), tokenizer_type="wordpiece")
    assert not os.path.exists(tmp_path / "out")
    stats = build(corpus_dir, vocab, str(tmp_path / "out"), tokenizer_type="wordpiece", force_tokenizer_type=True)
    assert stats["tokenizer_type"] == "wordpiece"
    bare = tmp_path / "bare"  # a bare vocab.txt records nothing: the flag rules
    bare.mkdir()
    (bare / "vocab.txt").write_bytes((tmp_path / "vocab" / "vocab.txt").read_bytes())
    assert build(corpus_dir, str(bare), str(tmp_path / "out2"), tokenizer_type="wordpiece")["tokenizer_type"] == "wordpiece"


def test_a_second_build_into_a_locked_output_dir_names_the_holder(corpus_dir, vocab_dir, tmp_path):
    from util.dir_lock import DirectoryInUseError

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    output = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from util.dir_lock import hold\n"
                               f"with hold({str(output)!r}):\n    print('held', flush=True); sys.stdin.read()"],
                              cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUseError, match=rf"--output_dir {output} is in use by PID {holder.pid} "):
            build(corpus_dir, vocab_dir, str(output))
    finally:
        holder.communicate("")
    assert build(corpus_dir, vocab_dir, str(output))["examples"] > 0


@pytest.mark.parametrize("max_len", [64])
def test_the_builder_writes_the_same_bytes_with_tensorflow_and_without_it(sample_corpus_file, sample_vocab_dir,
                                                                         tmp_path, max_len):
    """data/sample written through tf.train.Example and tf.io.TFRecordWriter in this process, and by
    the command line in a process where importing TensorFlow fails (2 worker processes)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    os.symlink(sample_corpus_file, corpus / "sample.txt")
    with_tf = build(str(corpus), sample_vocab_dir, str(tmp_path / "tf"), max_seq_length=max_len,
                    num_processes=2, record_io="tensorflow")
    script = ("import runpy, sys\n"
              "sys.modules['tensorflow'] = None  # any import of TensorFlow now fails\n"
              "sys.argv = ['build_pretraining_dataset.py'] + sys.argv[1:]\n"
              "runpy.run_path('build_pretraining_dataset.py', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", script, "--corpus_dir", str(corpus), "--vocab_file",
                             sample_vocab_dir, "--output_dir", str(tmp_path / "free"), "--max_seq_length",
                             str(max_len), "--num_out_files", "3", "--num_processes", "2", "--no_progress"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    reference = shard_bytes(str(tmp_path / "tf"))
    assert len(reference) == 3 and all(reference.values())
    assert shard_bytes(str(tmp_path / "free")) == reference
    without_tf = read_json(str(tmp_path / "free" / "stats.json"))
    assert without_tf["args"].pop("output_dir") == str(tmp_path / "free")
    with_tf["args"].pop("output_dir")
    assert without_tf == with_tf and without_tf["examples"] > 20
