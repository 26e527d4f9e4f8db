"""What the dataset builder says about its input before pretraining spends time on it: raw corpus
files refused with the command that cleans them, a vocab that does not fit the text (UNK rate and
what became [UNK]) and padding (fill rate), at the build and again at the start of pretraining."""
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from pretrain import data_quality, dataset_writer, tfrecords
from util.files import read_json
from util.tokenization import KoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
COMMENTS = os.path.join(SHARED, "korean-hate-speech", "unlabeled", "unlabeled_comments_5.txt")


def run_builder(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "build_pretraining_dataset.py"), *args,
                           "--no_progress"], cwd=ROOT, capture_output=True, text=True)


def comments_corpus(directory, count, one_per_document=True):
    """The first ``count`` unlabeled hate-speech comments, one a line (a blank line after each: one document each)."""
    with open(COMMENTS, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()][:count]
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "comments.txt"), "w", encoding="utf-8") as f:
        f.writelines(line + ("\n\n" if one_per_document else "\n") for line in lines)
    return str(directory)


def test_raw_corpus_files_are_refused_with_the_preprocess_command_that_cleans_them(sample_vocab_dir, tmp_path):
    out = tmp_path / "continued" / "tfrecords"
    result = run_builder("--corpus_dir", "data/sample", "--vocab_file", sample_vocab_dir, "--output_dir", str(out))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # The first raw file by name, the others counted; the builder would have read their keys and columns as text.
    assert lines[0].startswith("error: data/sample/chatbot_style_pairs.csv: ")
    assert "nikl_style_conversation.json" in lines[0]
    assert not out.exists() or not os.listdir(out)
    # The commands the line gives run as written and end in a dataset of the cleaned text.
    commands = re.findall(r"`([^`]+)`", lines[0])
    assert [c.split()[1] for c in commands] == ["preprocess.py", "build_pretraining_dataset.py"]
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "python3"
        done = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    stats = read_json(os.path.join(out, "stats.json"))
    assert stats["unk_rate"] < data_quality.UNK_RATE_WARN and stats["examples"] > 0
    assert stats["args"]["corpus_dir"] == str(tmp_path / "continued" / "corpus")


def test_a_vocab_that_does_not_fit_the_text_is_reported_with_what_became_unk(sample_vocab_dir, tmp_path):
    # data/sample's own vocab (1,500 pieces of its written and dialogue text) on web comments.
    corpus = comments_corpus(tmp_path / "corpus", 3000)
    out = str(tmp_path / "out")
    result = run_builder("--corpus_dir", corpus, "--vocab_file", sample_vocab_dir, "--output_dir", out,
                         "--max_seq_length", "64", "--num_out_files", "2")
    assert result.returncode == 0, result.stderr
    stats = read_json(os.path.join(out, "stats.json"))
    assert stats["unk_rate"] > data_quality.UNK_RATE_WARN

    # Counted again through transformers' own tokenizer over the same vocab: what each [UNK] covers.
    from transformers import BertTokenizerFast

    reference = BertTokenizerFast(os.path.join(sample_vocab_dir, "vocab.txt"), do_lower_case=False,
                                  strip_accents=False)
    counts = {}
    with open(os.path.join(corpus, "comments.txt"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    encodings = reference(lines, add_special_tokens=False, return_offsets_mapping=True).encodings
    for line, encoding in zip(lines, encodings):
        for token_id, (start, end) in zip(encoding.ids, encoding.offsets):
            if token_id == reference.unk_token_id:
                counts[line[start:end]] = counts.get(line[start:end], 0) + 1
    assert sum(counts.values()) == round(stats["unk_rate"] * stats["tokens"])
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:data_quality.UNK_TOP]
    assert [tuple(pair) for pair in stats["unk_top"]] == expected

    warning = [line for line in result.stdout.splitlines() if line.startswith("warning: UNK rate")]
    assert len(warning) == 1, result.stdout
    assert f"UNK rate {stats['unk_rate']:.2%}" in warning[0]
    for text, count in expected[:5]:
        assert f"{text!r} {count:,}" in warning[0]

    # A vocab of the text itself: no warning.
    fitting = str(tmp_path / "fitting_vocab")
    subprocess.run([sys.executable, os.path.join(ROOT, "build_vocab.py"), "--corpus",
                    os.path.join(corpus, "comments.txt"), "--vocab_size", "4000", "--min_frequency", "1",
                    "--output_dir", fitting], check=True, capture_output=True)
    result = run_builder("--corpus_dir", corpus, "--vocab_file", fitting, "--output_dir", out,
                         "--max_seq_length", "64", "--num_out_files", "2")
    assert result.returncode == 0 and "warning: UNK rate" not in result.stdout, result.stdout


def build(corpus, vocab, out, **options):
    from pretrain.dataset_builder import DatasetOptions, build_dataset

    return build_dataset(DatasetOptions(corpus_dir=corpus, vocab_file=vocab, output_dir=out, progress=False,
                                        **{"max_seq_length": 64, "num_out_files": 2, **options}))


def records(output_dir, max_len):
    """Each shard's examples, shard by shard, as lists of (input_ids, input_mask, segment_ids)."""
    shards = []
    for path in sorted(glob.glob(os.path.join(output_dir, "pretrain_data.tfrecord*"))):
        shards.append([tfrecords.parse_int64_example(data, dataset_writer.FEATURE_NAMES, max_len, path, offset)
                       for offset, data in tfrecords.iter_records(path)])
    # The writer deals examples to the shards in turn: example i is shard i % n's (i // n)th.
    ordered = []
    for i in range(max(len(s) for s in shards)):
        ordered += [s[i] for s in shards if i < len(s)]
    return ordered


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory):
    """The first 3,000 web comments, a document each, and a vocab built on them."""
    base = tmp_path_factory.mktemp("dialogue")
    corpus = comments_corpus(base / "corpus", 3000)
    subprocess.run([sys.executable, os.path.join(ROOT, "build_vocab.py"), "--corpus",
                    os.path.join(corpus, "comments.txt"), "--vocab_size", "4000", "--min_frequency", "1",
                    "--output_dir", str(base / "vocab")], check=True, capture_output=True)
    return corpus, str(base / "vocab")


def test_the_fill_rate_is_the_share_of_positions_the_records_fill(dialogue, tmp_path):
    corpus, vocab = dialogue
    stats = build(corpus, vocab, str(tmp_path / "out"))
    examples = records(str(tmp_path / "out"), 64)
    filled = sum(int(e["input_mask"].sum()) for e in examples)
    assert stats["filled_positions"] == filled
    assert stats["fill_rate"] == pytest.approx(filled / (len(examples) * 64))
    # One comment an example: about a third of the positions hold text.
    assert stats["examples"] == stats["documents"] == 3000 and stats["fill_rate"] < data_quality.FILL_RATE_WARN
    warning = data_quality.fill_line(stats)
    assert warning.startswith(f"warning: fill rate {stats['fill_rate']:.1%}") and "--pack" in warning


def test_packing_fills_examples_with_whole_sentences_across_documents(dialogue, tmp_path):
    corpus, vocab = dialogue
    tokenizer = KoTokenizer.from_vocab(vocab)
    plain = build(corpus, vocab, str(tmp_path / "plain"))
    packed = build(corpus, vocab, str(tmp_path / "packed"), pack=True)
    for key in ("documents", "sentences", "tokens", "unk_rate"):
        assert packed[key] == plain[key]
    assert packed["args"]["pack"] is True and plain["args"]["pack"] is False
    # Whole sentences of ~22 tokens into 61 places: what is left when the next does not fit stays padding.
    assert packed["fill_rate"] > 1.8 * plain["fill_rate"] and packed["fill_rate"] > data_quality.FILL_RATE_WARN
    assert packed["examples"] < plain["examples"] / 1.8
    assert data_quality.fill_line(packed).startswith("fill rate")  # no warning

    # Every packed example is [CLS] A [SEP] (B [SEP]); a [SEP] inside a segment ends a document, and
    # the text, read back in order without [CLS] and [SEP], is every comment's tokens, none cut.
    with open(os.path.join(corpus, "comments.txt"), encoding="utf-8") as f:
        comments = [line.strip() for line in f if line.strip()]
    expected = [ids for ids in tokenizer.encode_batch(comments) if ids]
    # A comment longer than an example's 61 places is an example of its own, cut to segment A's 62.
    assert sum(len(ids) > 61 for ids in expected) > 0
    stream = []
    for example in records(str(tmp_path / "packed"), 64):
        ids, mask, segments = (example[k].tolist() for k in ("input_ids", "input_mask", "segment_ids"))
        length = sum(mask)
        assert ids[0] == tokenizer.cls_id and ids[length - 1] == tokenizer.sep_id
        assert tokenizer.cls_id not in ids[1:length] and tokenizer.pad_id not in ids[:length]
        a_end = segments.index(1) - 1 if 1 in segments else length - 1
        assert ids[a_end] == tokenizer.sep_id and segments[:a_end + 1] == [0] * (a_end + 1)
        assert segments[a_end + 1:length] == [1] * (length - a_end - 1)
        document = []
        for token in ids[1:length]:
            if token == tokenizer.sep_id:
                if document:
                    stream.append(document)
                document = []
            else:
                document.append(token)
    # Here a sentence is a document: every [SEP], inside a segment or ending one, closes exactly one comment.
    assert stream == [ids[:62] for ids in expected]


def test_pretraining_says_the_datasets_warnings_before_it_starts(sample_vocab_dir, tmp_path, capsys):
    # Either backend: both prepare the run through pretrain/prepare.py.
    import shutil

    from configure_pretraining import PretrainingConfig
    from pretrain.prepare import prepare

    corpus = comments_corpus(tmp_path / "corpus", 1000)
    data = str(tmp_path / "data")
    stats = build(corpus, sample_vocab_dir, data)
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(os.path.join(sample_vocab_dir, name), data)
    expected = data_quality.warnings(stats)
    assert [line.split(":")[1].split()[0] for line in expected] == ["UNK", "fill"]
    for backend in ("tf", "torch"):
        config = PretrainingConfig(str(tmp_path / backend), data,
                                   **read_json(os.path.join(ROOT, "conf", "pretrain", "tiny.json")))
        capsys.readouterr()
        prepare(config, backend)
        out = capsys.readouterr().out
        for line in expected:
            assert line in out.splitlines()
