"""End to end: a checkpoint written by a few steps of run_pretraining.py converts with parity."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "conf", "pretrain", "tiny.json")
MAX_SEQ_LENGTH = 32

pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, "run_pretraining.py")) or
                                not os.path.isfile(TINY), reason="run_pretraining.py / tiny.json not present")


def _write_dataset(directory, num_examples=64, vocab_words=100, seed=0):
    """vocab.txt, stats.json and one TFRecord shard in build_pretraining_dataset.py's schema."""
    import tensorflow as tf

    os.makedirs(directory)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"단어{i}" for i in range(vocab_words)]
    vocab = os.path.join(directory, "vocab.txt")
    with open(vocab, "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in tokens)
    rng = np.random.default_rng(seed)
    path = os.path.join(directory, "pretrain_data.tfrecord-0-of-1")
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(num_examples):
            length = int(rng.integers(8, MAX_SEQ_LENGTH + 1))
            ids = [2] + list(rng.integers(5, len(tokens), length - 2)) + [3] + [0] * (MAX_SEQ_LENGTH - length)
            mask = [1] * length + [0] * (MAX_SEQ_LENGTH - length)
            segments = [0] * (length // 2) + [1] * (length - length // 2) + [0] * (MAX_SEQ_LENGTH - length)
            feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
                       for name, values in (("input_ids", ids), ("input_mask", mask), ("segment_ids", segments))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    stats = {"max_seq_length": MAX_SEQ_LENGTH, "vocab_size": len(tokens),
             "vocab_sha256": hashlib.sha256(open(vocab, "rb").read()).hexdigest(), "tokenizer_type": "wordpiece",
             "do_lower_case": False, "examples": num_examples, "num_out_files": 1}
    with open(os.path.join(directory, "stats.json"), "w") as f:
        json.dump(stats, f)


def _run(args):
    env = dict(os.environ, USE_TF="0", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=ROOT, env=env)


def test_run_pretraining_checkpoint_converts_with_parity(tmp_path):
    from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining

    data_dir, model_dir = str(tmp_path / "data"), str(tmp_path / "model")
    _write_dataset(data_dir)
    hparams = json.load(open(TINY))
    hparams.update(max_seq_length=MAX_SEQ_LENGTH, train_batch_size=4, num_train_steps=3,
                   save_checkpoints_steps=3, iterations_per_loop=3, num_warmup_steps=1, do_eval=False,
                   generator_hidden_size=0.5)
    train = _run(["run_pretraining.py", "--data_dir", data_dir, "--model_name", model_dir,
                  "--hparams", json.dumps(hparams)])
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]
    config = json.load(open(os.path.join(model_dir, "pretrain_config.json")))

    out = tmp_path / "pytorch"
    convert = _run(["pytorch_convert.py", "--tf_ckpt_path", model_dir, "--pt_discriminator_path", str(out / "disc"),
                    "--pt_generator_path", str(out / "gen"), "--onnx_path", str(out / "disc.onnx")])
    assert convert.returncode == 0, (convert.stdout + convert.stderr)[-4000:]
    assert "global_step 3" in convert.stdout
    parity_lines = [l for l in convert.stdout.splitlines() if " vs " in l]
    assert len(parity_lines) == 4 and all(l.split()[-1] == "ok" for l in parity_lines), convert.stdout

    disc = ElectraForPreTraining.from_pretrained(out / "disc", local_files_only=True)
    gen = ElectraForMaskedLM.from_pretrained(out / "gen", local_files_only=True)
    for model, sizes in ((disc, config["bert_config"]), (gen, config["generator_bert_config"])):
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "embedding_size", "vocab_size"):
            assert getattr(model.config, key) == sizes[key], key
    assert gen.config.hidden_size == disc.config.hidden_size // 2
    assert AutoTokenizer.from_pretrained(out / "disc", local_files_only=True).tokenize("단어7 단어12") == \
        ["단어7", "단어12"]


# The line that puts the fixture's repeated tokens into real text.
REPEATS_LINE = "ARS 캐시백 평점들은 영화가 재밌다"


@pytest.mark.slow
@pytest.mark.parametrize("tokenizer_type", ["wordpiece", "mecab_wordpiece"])
def test_vocab_with_repeats_goes_through_every_script(tmp_path, sample_corpus_file, tokenizer_type):
    """The released vocab's quirks (tests/util/test_vocab_file.py's fixture: repeated tokens,
    no final newline, no tokenizer_config.json) through the scripts a user runs:
    dataset -> 2 pretraining steps -> conversion -> the transformers tokenizer's ids."""
    import tensorflow as tf
    from transformers import AutoTokenizer, ElectraForPreTraining

    from tests.util.test_vocab_file import write_quirky
    from util.hf_tokenizer import load_tokenizer
    from util.tokenization import KoTokenizer

    text = open(sample_corpus_file, encoding="utf-8").read().rstrip("\n") + "\n" + REPEATS_LINE + "\n"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "text.txt").write_text(text, encoding="utf-8")
    chars = sorted({c for c in text if not c.isspace()})
    vocab = write_quirky(str(tmp_path / "vocab"), chars + ["##" + c for c in chars])
    num_lines = len(open(vocab, encoding="utf-8").read().split("\n"))
    holes = [8, 15]  # the earlier lines of ARS and 캐시백: ids no token has

    data = str(tmp_path / "data")
    built = _run(["build_pretraining_dataset.py", "--corpus_dir", str(corpus), "--vocab_file", vocab,
                  "--tokenizer_type", tokenizer_type, "--output_dir", data, "--max_seq_length", str(MAX_SEQ_LENGTH),
                  "--num_out_files", "1", "--no_progress"])
    assert built.returncode == 0, built.stderr[-3000:]
    assert "vocab.txt:12: 'ARS' repeats line 9" in built.stderr
    stats = json.load(open(os.path.join(data, "stats.json")))
    assert (stats["vocab_size"], stats["tokenizer_type"]) == (num_lines, tokenizer_type)
    assert stats["unk_rate"] < 0.01, stats["unk_rate"]
    written = set()
    for record in tf.data.TFRecordDataset(os.path.join(data, "pretrain_data.tfrecord-0-of-1")):
        written.update(tf.train.Example.FromString(record.numpy()).features.feature["input_ids"].int64_list.value)
    assert 11 in written and not written & set(holes)  # ARS as its last line, never a hole

    model_dir = str(tmp_path / "model")
    hparams = json.load(open(TINY))
    hparams.update(max_seq_length=MAX_SEQ_LENGTH, train_batch_size=4, num_train_steps=2, save_checkpoints_steps=2,
                   iterations_per_loop=2, num_warmup_steps=1, do_eval=False)
    # No tokenizer_type here: it comes from the dataset, the bare vocab.txt records none.
    train = _run(["run_pretraining.py", "--data_dir", data, "--model_name", model_dir, "--hparams", json.dumps(hparams)])
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]
    config = json.load(open(os.path.join(model_dir, "pretrain_config.json")))
    assert (config["vocab_size"], config["tokenizer_type"]) == (num_lines, tokenizer_type)

    disc = str(tmp_path / "pytorch" / "disc")
    convert = _run(["pytorch_convert.py", "--tf_ckpt_path", model_dir, "--pt_discriminator_path", disc, "--seed", "0"])
    assert convert.returncode == 0, (convert.stdout + convert.stderr)[-4000:]
    assert "global_step 2" in convert.stdout and f"({tokenizer_type}, do_lower_case=False)" in convert.stdout
    assert open(os.path.join(disc, "vocab.txt"), "rb").read() == open(vocab, "rb").read()
    model = ElectraForPreTraining.from_pretrained(disc, local_files_only=True)
    assert model.electra.embeddings.word_embeddings.weight.shape[0] == num_lines

    lines = [line for line in text.split("\n") if line]
    ours = KoTokenizer(vocab, tokenizer_type).encode_batch(lines)
    hf = load_tokenizer(disc)
    assert hf(lines, add_special_tokens=False)["input_ids"] == ours
    repeats = hf(REPEATS_LINE, add_special_tokens=False)["input_ids"]
    assert repeats[0] == 11 and (tokenizer_type == "mecab_wordpiece" or repeats[1] == 16)
    if tokenizer_type == "wordpiece":
        auto = AutoTokenizer.from_pretrained(disc, local_files_only=True)
        assert auto(lines, add_special_tokens=False)["input_ids"] == ours
    assert "contains holes" not in convert.stdout + train.stdout + built.stdout


def _eval_results(model_dir):
    lines = open(os.path.join(model_dir, "results", "unsup_results.txt"), encoding="utf-8").read().splitlines()
    return dict(line.split(" = ") for line in lines)


@pytest.mark.slow
def test_tf_to_transformers_to_tf_keeps_every_variable_and_the_eval_metrics(tmp_path):
    """run_pretraining.py's checkpoint -> transformers -> TF (convert/to_tf.py): the same model
    variables bit for bit, and run_pretraining.py's evaluation of both gives the same metrics."""
    from convert.checkpoint import CheckpointVariables, resolve_checkpoint
    from convert.pipeline import convert_checkpoint
    from convert.to_tf import transformers_to_tf

    data_dir, model_dir = str(tmp_path / "data"), str(tmp_path / "model")
    _write_dataset(data_dir)
    hparams = json.load(open(TINY))
    hparams.update(max_seq_length=MAX_SEQ_LENGTH, train_batch_size=4, eval_batch_size=4, num_train_steps=3,
                   save_checkpoints_steps=3, iterations_per_loop=3, num_warmup_steps=1, num_eval_steps=4,
                   do_eval=True, generator_hidden_size=0.5, seed=5)  # seeded: evaluation masks and samples
    train = _run(["run_pretraining.py", "--data_dir", data_dir, "--model_name", model_dir,
                  "--hparams", json.dumps(hparams)])
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]

    hub = tmp_path / "pytorch"
    convert_checkpoint(model_dir, str(hub / "disc"), str(hub / "gen"), log=lambda _: None)
    back = str(tmp_path / "back" / "model.ckpt")
    report = transformers_to_tf(str(hub / "disc"), str(hub / "gen"), back)
    assert report["notes"] == [] and report["embeddings_replaced"] == []

    original = CheckpointVariables(resolve_checkpoint(model_dir)[0])
    converted = CheckpointVariables(back)
    assert converted.shapes == original.shapes  # every model variable, no other (training state aside)
    for name in original.shapes:
        np.testing.assert_array_equal(converted.get(name), original.get(name), err_msg=name)

    # Evaluate the converted checkpoint from a fresh model dir that starts from it (saved_model).
    hparams.update(do_train=False, saved_model=back)
    evaluate = _run(["run_pretraining.py", "--data_dir", data_dir, "--model_name", str(tmp_path / "eval"),
                     "--hparams", json.dumps(hparams)])
    assert evaluate.returncode == 0, (evaluate.stdout + evaluate.stderr)[-4000:]
    before, after = _eval_results(model_dir), _eval_results(str(tmp_path / "eval"))
    assert before.pop("global_step") == "3" and after.pop("global_step") == "0"
    assert "disc_auc" in " ".join(before) and "masked_lm_accuracy" in " ".join(before), before
    assert after == before
