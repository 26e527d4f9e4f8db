"""The card of a continued model names its base, its vocab extension and its steps of continuation, and its
pretraining data by the corpus stats.json describes: a warm start from a release, trained two steps and
converted, read like a two-step model trained from scratch on "data"."""
import json
import os
import shutil

import pytest

from configure_pretraining import PretrainingConfig
from pretrain.dataset_builder import DatasetOptions, build_dataset

from .conftest import write_vocab
from .upstream_checkpoint import NEW_TOKENS, extend_vocab, upstream_shapes, write_released_checkpoint

tf = pytest.importorskip("tensorflow")
RUN = dict(max_seq_length=64, train_batch_size=8, eval_batch_size=8, num_train_steps=2, iterations_per_loop=1,
           save_checkpoints_steps=100, keep_checkpoint_max=0, num_warmup_steps=1, seed=0)


def released_at_step(prefix, step):
    """A release-style checkpoint that records the steps it was trained for (global_step)."""
    tensors = write_released_checkpoint(prefix + "-tmp", upstream_shapes())
    tensors["global_step"] = tf.constant(step, tf.int64)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


def built_dataset(tmp_path):
    """A dataset build_pretraining_dataset.py makes from two corpus files, its vocab then extended."""
    vocab, _ = write_vocab(str(tmp_path / "vocab"))
    corpus = tmp_path / "dialogue"
    corpus.mkdir()
    for name, offset in (("comments.txt", 0), ("questions.txt", 50)):
        (corpus / name).write_text("".join(" ".join(f"w{(offset + i * 7 + j) % 120}" for j in range(5 + i % 9))
                                           + "\n\n" for i in range(150)), encoding="utf-8")
    data = str(tmp_path / "data")
    build_dataset(DatasetOptions(corpus_dir=str(corpus), vocab_file=vocab, output_dir=data, max_seq_length=64,
                                 num_out_files=2, tokenizer_type="wordpiece", do_lower_case=False, progress=False))
    shutil.copy(vocab, data)
    extend_vocab(data, NEW_TOKENS)
    with open(os.path.join(data, "stats.json"), encoding="utf-8") as f:
        return data, json.load(f)


def read_card(directory):
    with open(os.path.join(directory, "README.md"), encoding="utf-8") as f:
        return None, f.read()


def test_a_continued_models_card_names_its_base_extension_steps_and_corpus(tmp_path):
    from convert.pipeline import convert_checkpoint
    from pretrain import training

    source = str(tmp_path / "released")
    released_at_step(source + "/model.ckpt-1000", 1000)
    data, stats = built_dataset(tmp_path)
    model_dir = str(tmp_path / "model")
    training.train_or_eval(PretrainingConfig(model_dir, data, saved_model=source, **RUN))
    convert_checkpoint(model_dir, str(tmp_path / "disc"), str(tmp_path / "gen"), log=lambda _: None, seed=3)

    for which in ("disc", "gen"):
        _, body = read_card(tmp_path / which)
        assert f"| continued from (base model) | `{source}`: hidden_size 64, num_hidden_layers 2" in body, body
        assert "vocab_size 130" in body
        assert "| steps the base had | 1,000 |" in body and "| steps of continuation | 2 |" in body
        assert "| vocab extension | 2 new tokens (`vocab_extension.json`" in body
        data_row = next(line for line in body.splitlines() if line.startswith("| pretraining data |"))
        assert "corpus `dialogue` (`comments.txt`, `questions.txt`)" in data_row, data_row
        assert f"{stats['sentences']:,} lines, {stats['tokens']:,} tokens" in data_row, data_row
        assert f"in {stats['examples']:,} examples of 64 positions" in data_row


def test_a_model_trained_from_scratch_names_no_base(tmp_path):
    from convert.pipeline import convert_checkpoint
    from pretrain import training

    data, _ = built_dataset(tmp_path)
    model_dir = str(tmp_path / "model")
    training.train_or_eval(PretrainingConfig(model_dir, data, **dict(RUN, model_size="small", hidden_size=64,
                                                                      num_hidden_layers=1, embedding_size=32,
                                                                      intermediate_size=128, num_attention_heads=1)))
    convert_checkpoint(model_dir, str(tmp_path / "disc"), log=lambda _: None, seed=3)
    _, body = read_card(tmp_path / "disc")
    assert "continued from" not in body and "vocab extension" not in body
    assert "| pretraining data | corpus `dialogue`" in body
