"""Finding the TFRecords, refusing a dataset built for another vocab or length, and reading batches."""
import json
import os
import shutil

import pytest
import tensorflow.compat.v1 as tf

from configure_pretraining import PretrainingConfig
from pretrain import input_pipeline, training
from util.errors import UserInputError

from .conftest import make_dataset, tiny_hparams, write_vocab


def config_for(data_dir, **overrides):
    return PretrainingConfig("m", str(data_dir), **tiny_hparams(**overrides))


def test_finds_both_layouts(tmp_path, tiny_data):
    flat = input_pipeline.find_tfrecords(tiny_data)
    assert [os.path.basename(f) for f in flat] == ["pretrain_data.tfrecord-0-of-2", "pretrain_data.tfrecord-1-of-2"]
    nested = tmp_path / "pretrain_tfrecords"
    shutil.copytree(tiny_data, nested)
    assert input_pipeline.find_tfrecords(str(tmp_path)) == sorted(str(nested / os.path.basename(f)) for f in flat)


def test_no_tfrecords_is_one_line(tmp_path):
    with pytest.raises(UserInputError, match="no TFRecords found: nothing matches .*pretrain_data.tfrecord"):
        training.prepare(config_for(tmp_path))


def test_prepare_takes_vocab_size_from_the_vocab(tiny_data):
    config = config_for(tiny_data)
    training.prepare(config)
    assert config.vocab_size == 130 and config.mask_id == 4 and config.tokenizer_type == "wordpiece"


def test_vocab_size_disagreeing_with_vocab_file(tiny_data):
    with pytest.raises(UserInputError, match=r"vocab_size 40000, but .*vocab.txt has 130 tokens"):
        training.prepare(config_for(tiny_data, vocab_size=40000))


def test_dataset_built_with_another_sequence_length(tiny_data):
    with pytest.raises(UserInputError, match=r"max_seq_length 128, but the dataset has 64"):
        training.prepare(config_for(tiny_data, max_seq_length=128))


def test_unset_sequence_length_is_the_datasets(tiny_data, capsys):
    hparams = tiny_hparams()
    hparams.pop("max_seq_length")
    hparams.pop("max_predictions_per_seq", None)
    config = PretrainingConfig("m", str(tiny_data), **hparams)
    assert config.max_seq_length == 128  # the preset's default, before the data is read
    training.prepare(config)
    assert (config.max_seq_length, config.max_predictions_per_seq) == (64, 9)  # int(0.155 * 64)
    assert "max_seq_length 64: read from the dataset's stats.json" in capsys.readouterr().out
    # A set prediction count is kept, and one the length cannot hold is refused.
    config = PretrainingConfig("m", str(tiny_data), **dict(hparams, max_predictions_per_seq=70))
    with pytest.raises(UserInputError, match=r"max_predictions_per_seq \(70\) exceeds max_seq_length \(64\)"):
        training.prepare(config)


def test_dataset_built_with_another_vocab(tmp_path, tiny_data):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    other = tmp_path / "other_vocab"
    write_vocab(str(other))
    # Same size, different content: only the hash tells them apart.
    lines = (other / "vocab.txt").read_text().splitlines()
    lines[-1] = "different"
    (other / "vocab.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserInputError, match="dataset vocab_sha256 is"):
        training.prepare(config_for(data, vocab_file=str(other / "vocab.txt")))


def test_unset_tokenizer_settings_come_from_the_dataset_not_a_bare_vocab(tmp_path, tiny_data):
    """A bare vocab.txt (the released one has no tokenizer_config.json) with a dataset built
    by --tokenizer_type mecab_wordpiece --do-lower-case: pretraining follows the dataset."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    assert not (data / "tokenizer_config.json").exists()
    stats = json.loads((data / "stats.json").read_text())
    stats.update(tokenizer_type="mecab_wordpiece", do_lower_case=True)
    (data / "stats.json").write_text(json.dumps(stats))
    config = config_for(data)
    tokenizer, _ = training.prepare(config)
    assert (config.tokenizer_type, config.do_lower_case) == ("mecab_wordpiece", True)
    assert (tokenizer.tokenizer_type, tokenizer.do_lower_case) == ("mecab_wordpiece", True)
    # What the hparams say still wins, and a contradiction is still refused.
    with pytest.raises(UserInputError, match="tokenizer_type wordpiece, but the dataset was built with mecab_wordpiece"):
        training.prepare(config_for(data, tokenizer_type="wordpiece"))


def test_missing_vocab_is_one_line(tmp_path, tiny_data):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    os.remove(data / "vocab.txt")
    with pytest.raises(UserInputError, match="no vocab: set \"vocab_file\""):
        training.prepare(config_for(data))


def test_input_fn_yields_fixed_int32_batches(tiny_data):
    files = input_pipeline.find_tfrecords(tiny_data)
    graph = tf.Graph()
    with graph.as_default():
        dataset = input_pipeline.input_fn_builder(files, 64, is_training=True)({"batch_size": 8})
        batch = tf.data.make_one_shot_iterator(dataset).get_next()
        with tf.Session() as session:
            values = session.run(batch)
    assert set(values) == {"input_ids", "input_mask", "segment_ids"}
    for value in values.values():
        assert value.shape == (8, 64) and value.dtype.name == "int32"
    assert (values["input_ids"][:, 0] == 2).all()
    stats = json.load(open(os.path.join(tiny_data, "stats.json")))
    assert values["input_ids"].max() < stats["vocab_size"]


def test_make_dataset_without_stats_is_accepted(tmp_path):
    data = make_dataset(str(tmp_path / "plain"), with_stats=False, num_examples=16)
    _, files = training.prepare(config_for(data))
    assert len(files) == 2


def test_the_published_json_on_other_data_names_every_contradiction_at_once(tiny_data):
    """Its vocab_file, vocab_size 40000 and tokenizer_type wordpiece, against a mecab dataset of another vocab."""
    from configure_pretraining import merge_hparams


    data = os.path.join(os.path.dirname(tiny_data), "published_on_own_data")
    shutil.copytree(tiny_data, data, dirs_exist_ok=True)
    stats = json.loads(open(os.path.join(data, "stats.json")).read())
    stats.update(tokenizer_type="mecab_wordpiece")
    open(os.path.join(data, "stats.json"), "w").write(json.dumps(stats))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    published = os.path.join(root, "conf", "pretrain", "small_config_kor_wordpiece_train.json")
    hparams, source = merge_hparams([published, '{"max_seq_length": 64, "model_hparam_overrides": {}}'])
    hparams["vocab_file"] = os.path.join(data, "no_such_dir", "vocab.txt")
    config = PretrainingConfig(os.path.join(data, "model"), data, source=source, **hparams)
    with pytest.raises(UserInputError) as caught:
        training.prepare(config)
    message = str(caught.value)
    assert "3 setting(s) contradict" in message and "vocab_file" in message and "vocab_size 40000" in message
    assert "tokenizer_type wordpiece, but the dataset was built with mecab_wordpiece" in message
    fix = json.loads(message.split("--hparams '")[1].split("'")[0])
    assert fix == {"vocab_file": None, "vocab_size": None, "tokenizer_type": None}
    resolved = PretrainingConfig(os.path.join(data, "model"), data, source=source, **dict(hparams, **fix))
    training.prepare(resolved)  # the suggested layer is enough
    assert (resolved.vocab_size, resolved.tokenizer_type) == (130, "mecab_wordpiece")
