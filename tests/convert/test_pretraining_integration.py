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
