"""A vocab that is not the model's is refused before pretraining, by both backends (pretrain/prepare.py):
at warm start against the vocab beside a transformers directory or TF checkpoint, at resume against
the model directory's; an extension passes when its vocab_extension.json names the model's vocab.
A resume never rewrites the model directory's vocab.txt."""
import os
import shutil
import subprocess
import sys

import pytest

from configure_pretraining import PretrainingConfig
from pretrain.dataset_builder import DatasetOptions, build_dataset
from pretrain.prepare import prepare
from util.errors import UserInputError
from util.files import read_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = dict(max_seq_length=64, train_batch_size=8, eval_batch_size=8, num_train_steps=1, iterations_per_loop=1,
           save_checkpoints_steps=100, keep_checkpoint_max=0, num_warmup_steps=1, seed=0, num_eval_steps=1)
SIZES = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256)


def data_with(vocab_dir, corpus_file, directory):
    """The cleaned sample built with ``vocab_dir``, the vocab beside the shards (as a data dir carries it)."""
    corpus = os.path.join(directory, "corpus")
    os.makedirs(corpus)
    os.symlink(corpus_file, os.path.join(corpus, "sample.txt"))
    out = os.path.join(directory, "data")
    build_dataset(DatasetOptions(corpus_dir=corpus, vocab_file=vocab_dir, output_dir=out, max_seq_length=64,
                                 num_out_files=1, progress=False))
    for name in os.listdir(vocab_dir):
        shutil.copy(os.path.join(vocab_dir, name), out)
    return out


def permuted(vocab_dir, directory, first, second):
    """The same tokens with lines ``first`` and ``second`` (1-based) swapped: same size, other ids."""
    os.makedirs(directory)
    with open(os.path.join(vocab_dir, "vocab.txt"), encoding="utf-8") as f:
        tokens = f.read().split("\n")[:-1]
    tokens[first - 1], tokens[second - 1] = tokens[second - 1], tokens[first - 1]
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in tokens))
    shutil.copy(os.path.join(vocab_dir, "tokenizer_config.json"), directory)
    return str(directory), tokens


@pytest.fixture(scope="module")
def released(tmp_path_factory, sample_vocab_dir):
    """A discriminator/generator pair transformers made and saved, with its vocab.txt, as on the Hub."""
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraTokenizer

    directory = tmp_path_factory.mktemp("released")
    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    with open(vocab, encoding="utf-8") as f:
        config = ElectraConfig(vocab_size=sum(1 for _ in f), embedding_size=32, max_position_embeddings=128,
                               **SIZES)
    torch.manual_seed(0)
    tokenizer = ElectraTokenizer(vocab, do_lower_case=False)
    for model, name in ((ElectraForPreTraining(config), "discriminator"), (ElectraForMaskedLM(config), "generator")):
        model.save_pretrained(directory / name)
        tokenizer.save_pretrained(directory / name)
    return str(directory / "discriminator"), str(directory / "generator")


def config_for(model_dir, data, released, **hparams):
    return PretrainingConfig(str(model_dir), data, saved_model=released[0], saved_generator=released[1],
                             **dict(RUN, **hparams))


def test_a_permuted_vocab_of_the_same_size_is_refused_at_warm_start(released, sample_vocab_dir,
                                                                     sample_corpus_file, tmp_path):
    vocab, tokens = permuted(sample_vocab_dir, tmp_path / "vocab", 700, 701)
    data = data_with(vocab, sample_corpus_file, str(tmp_path))
    with pytest.raises(UserInputError) as error:
        prepare(config_for(tmp_path / "model", data, released), backend="torch")
    message = str(error.value)
    beside = os.path.join(released[0], "vocab.txt")
    assert message.startswith(f"{os.path.join(data, 'vocab.txt')}: not the vocab of saved_model {released[0]}: ")
    assert f"line 700 is {tokens[699]!r} here and {tokens[700]!r} in {beside}" in message
    assert "\n" not in message and not os.path.exists(tmp_path / "model")


def test_an_extension_passes_when_it_names_the_models_vocab_and_is_refused_when_not(released, sample_vocab_dir,
                                                                                    sample_corpus_file, tmp_path):
    def extend(base, out):
        subprocess.run([sys.executable, os.path.join(ROOT, "build_vocab.py"), "--extend", base, "--corpus",
                        sample_corpus_file, "--num_new", "5", "--min_frequency", "1", "--output_dir", out],
                       check=True, capture_output=True)
        return out

    extended = extend(released[0], str(tmp_path / "extended"))
    config = config_for(tmp_path / "model", data_with(extended, sample_corpus_file, str(tmp_path / "a")), released)
    prepare(config, backend="torch")
    assert config.warm_start.record["vocab_extension"]["new_tokens"] == 5

    # An extension of another vocab of the same size: its record names that vocab, not the model's.
    other, _ = permuted(sample_vocab_dir, tmp_path / "other", 700, 701)
    foreign = extend(other, str(tmp_path / "foreign"))
    data = data_with(foreign, sample_corpus_file, str(tmp_path / "b"))
    with pytest.raises(UserInputError, match=rf"{data}/vocab_extension.json: base_vocab_sha256 .* is not "
                                             rf"{released[0]}/vocab.txt's .*: the extension was made from another"):
        prepare(config_for(tmp_path / "model2", data, released), backend="torch")


def test_a_released_tf_checkpoint_with_its_vocab_beside_it(sample_vocab_dir, sample_corpus_file, tmp_path):
    # The TF backend's own path: a TF-v1 checkpoint directory holding vocab.txt, as released ones do.
    pytest.importorskip("tensorflow")
    from .upstream_checkpoint import upstream_shapes, write_released_checkpoint

    with open(os.path.join(sample_vocab_dir, "vocab.txt"), encoding="utf-8") as f:
        rows = sum(1 for _ in f)
    disc = {"vocab_size": rows, "embedding_size": 32, "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 1, "intermediate_size": 256, "max_position_embeddings": 128, "type_vocab_size": 2}
    source = str(tmp_path / "released")
    gen = dict(disc, hidden_size=48, num_hidden_layers=1, intermediate_size=192)
    write_released_checkpoint(source + "/model.ckpt-1000", upstream_shapes(disc, gen))
    shutil.copy(os.path.join(sample_vocab_dir, "vocab.txt"), source)
    vocab, tokens = permuted(sample_vocab_dir, tmp_path / "vocab", 30, 900)
    data = data_with(vocab, sample_corpus_file, str(tmp_path))
    for backend in ("tf", "torch"):
        config = PretrainingConfig(str(tmp_path / backend), data, saved_model=source, **RUN)
        with pytest.raises(UserInputError, match=rf"line 30 is {tokens[29]!r} here and {tokens[899]!r} in "
                                                 rf"{source}/vocab.txt"):
            prepare(config, backend=backend)


def test_a_resume_refuses_another_vocab_and_never_rewrites_the_model_dirs(sample_vocab_dir, sample_corpus_file,
                                                                          tmp_path):
    from pretrain.torch_backend import train

    tiny = read_json(os.path.join(ROOT, "conf", "pretrain", "tiny.json"))
    data = data_with(sample_vocab_dir, sample_corpus_file, str(tmp_path / "first"))
    model_dir = str(tmp_path / "model")
    train.main(PretrainingConfig(model_dir, data, **dict(tiny, **RUN)))
    kept = os.path.join(model_dir, "vocab.txt")
    before = (os.stat(kept).st_mtime_ns, open(kept, "rb").read())

    vocab, tokens = permuted(sample_vocab_dir, tmp_path / "vocab", 800, 1200)
    other = data_with(vocab, sample_corpus_file, str(tmp_path / "second"))
    with pytest.raises(UserInputError) as error:
        prepare(PretrainingConfig(model_dir, other, **{**tiny, **RUN, "num_train_steps": 2}), backend="torch")
    assert str(error.value).startswith(f"{os.path.join(other, 'vocab.txt')}: not the vocab of the model dir "
                                       f"{model_dir}: line 800 is {tokens[799]!r} here and {tokens[1199]!r} in {kept}")
    assert (os.stat(kept).st_mtime_ns, open(kept, "rb").read()) == before
    # The same vocab resumes, and leaves the model dir's copy as it was.
    train.main(PretrainingConfig(model_dir, data, **{**tiny, **RUN, "num_train_steps": 2}))
    assert (os.stat(kept).st_mtime_ns, open(kept, "rb").read()) == before
