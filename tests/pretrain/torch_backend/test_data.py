"""PretrainingBatches on a dataset built from data/sample by the real builder: the TF pipeline's
order, disjoint ranks, and exact resume from a small state."""
import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pretrain import input_pipeline, tfrecords
from pretrain.dataset_builder import DatasetOptions, build_dataset
from pretrain.torch_backend.data import PretrainingBatches
from util.errors import UserInputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MAX_LEN = 32
FEATURES = input_pipeline.FEATURES


@pytest.fixture(scope="module")
def dataset(sample_corpus_file, sample_vocab_dir, tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    os.symlink(sample_corpus_file, corpus / "sample.txt")
    out = str(tmp_path_factory.mktemp("data"))
    stats = build_dataset(DatasetOptions(corpus_dir=str(corpus), vocab_file=sample_vocab_dir, output_dir=out,
                                         max_seq_length=MAX_LEN, num_out_files=3, num_processes=1, progress=False))
    assert stats["examples"] > 60  # enough for several batches per pass
    return input_pipeline.find_tfrecords(out), stats


def rows(batch):
    """Each example of a batch as one hashable tuple of its three features."""
    joined = np.concatenate([batch[name].numpy() for name in FEATURES], axis=1)
    return [tuple(r) for r in joined]


def take(batches, n):
    it = iter(batches)
    return [next(it) for _ in range(n)]


def records_of(files):
    """Every example in ``files``, read by the builder-independent reader."""
    out = []
    for path in files:
        for offset, data in tfrecords.iter_records(path):
            example = tfrecords.parse_int64_example(data, FEATURES, MAX_LEN, path, offset)
            out.append(tuple(np.concatenate([example[name] for name in FEATURES])))
    return out


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in FEATURES)


def test_batches_have_the_interface_shapes_and_types(dataset):
    files, _ = dataset
    batch = take(PretrainingBatches(files, 8, MAX_LEN), 1)[0]
    assert sorted(batch) == sorted(FEATURES)
    for value in batch.values():
        assert value.dtype == torch.int64 and value.shape == (8, MAX_LEN)
    assert (batch["input_ids"][:, 0] == batch["input_ids"][0, 0]).all()  # [CLS] first


def test_eval_order_is_the_tf_pipelines_record_for_record(dataset):
    tf = pytest.importorskip("tensorflow")
    files, stats = dataset
    num_batches = 3 * stats["examples"] // 8  # three passes: files end and reopen in the cycle
    ours = take(PretrainingBatches(files, 8, MAX_LEN, is_training=False), num_batches)
    theirs = input_pipeline.input_fn_builder(files, MAX_LEN, False)({"batch_size": 8})
    for mine, (_, reference) in zip(ours, zip(range(num_batches), theirs.as_numpy_iterator())):
        for name in FEATURES:
            np.testing.assert_array_equal(mine[name].numpy(), reference[name])
    del tf


def test_each_training_pass_holds_every_example_once(dataset):
    files, stats = dataset
    n = stats["examples"]
    reference = collections.Counter(records_of(files))
    assert sum(reference.values()) == n
    # One file at a time and no buffer: every n records are one pass in a shuffled file order.
    stream = [r for b in take(PretrainingBatches(files, 1, MAX_LEN, cycle_length=1, shuffle_buffer=0), 3 * n)
              for r in rows(b)]
    passes = [stream[i * n:(i + 1) * n] for i in range(3)]
    assert all(collections.Counter(p) == reference for p in passes)
    assert len({tuple(p) for p in passes}) > 1  # the file order changes between passes


def test_the_shuffle_buffer_reorders_the_stream_without_losing_a_record(dataset):
    files, _ = dataset
    unbuffered = [r for b in take(PretrainingBatches(files, 8, MAX_LEN, shuffle_buffer=0), 140) for r in rows(b)]
    shuffled = PretrainingBatches(files, 8, MAX_LEN)
    out = [r for b in take(shuffled, 15) for r in rows(b)]
    assert out != unbuffered[:len(out)]
    # What left the buffer plus what is in it is exactly what entered it.
    held = [tuple(np.concatenate([v for v in tfrecords.parse_int64_example(
        tfrecords.read_record_at(shuffled.files[i], offset), FEATURES, MAX_LEN).values()]))
        for i, offset in shuffled.state_dict()["buffer"]]
    assert len(held) == 1000
    assert collections.Counter(out + held) == collections.Counter(unbuffered[:len(out) + 1000])


def test_same_seed_same_batches_other_seed_other_batches(dataset):
    files, _ = dataset
    a = take(PretrainingBatches(files, 8, MAX_LEN, seed=3), 6)
    assert same(a, take(PretrainingBatches(files, 8, MAX_LEN, seed=3), 6))
    assert not same(a, take(PretrainingBatches(files, 8, MAX_LEN, seed=4), 6))


@pytest.mark.parametrize("world_size", [2, 4])  # 3 files: whole files for 2 ranks, every 4th record for 4
def test_ranks_read_disjoint_parts_that_cover_the_data(dataset, world_size):
    files, stats = dataset
    per_rank = []
    for rank in range(world_size):
        # One file at a time, so a pass is a contiguous stretch of the stream.
        batches = PretrainingBatches(files, 1, MAX_LEN, rank=rank, world_size=world_size, is_training=False,
                                     cycle_length=1)
        expected = (records_of(batches.files) if batches.record_stride == 1
                    else [r for path in files for r in records_of([path])[rank::world_size]])
        per_rank.append([r for b in take(batches, len(expected)) for r in rows(b)])
        assert collections.Counter(per_rank[-1]) == collections.Counter(expected)
    everything = [r for part in per_rank for r in part]
    assert collections.Counter(everything) == collections.Counter(records_of(files))
    assert len(everything) == stats["examples"]


@pytest.mark.parametrize("kwargs, cuts", [
    ({}, [1, 5, 13, 37]),  # the 1000-record buffer spans many passes
    ({"shuffle_buffer": 10}, [3, 11, 12, 25]),  # 11 -> 12 crosses the end of the first pass (8-example batches)
    ({"is_training": False}, [2, 12, 30]),
    ({"rank": 1, "world_size": 4, "seed": 7}, [4, 9]),
])
def test_resume_from_the_state_gives_the_uninterrupted_batches(dataset, kwargs, cuts):
    files, stats = dataset
    total = 45
    uninterrupted = take(PretrainingBatches(files, 8, MAX_LEN, **kwargs), total)
    for cut in cuts:
        first = PretrainingBatches(files, 8, MAX_LEN, **kwargs)
        head = take(first, cut)
        state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint would store it
        first.close()
        resumed = PretrainingBatches(files, 8, MAX_LEN, **kwargs)
        resumed.load_state_dict(state)
        assert same(uninterrupted, head + take(resumed, total - cut)), f"resumed after batch {cut}"
        if kwargs == {"shuffle_buffer": 10} and cut == 12:
            assert state["epoch"] >= 1  # the resume point lies past a pass boundary


def test_prefetching_gives_the_same_batches_and_the_state_of_the_last_one_handed_out(dataset):
    files, _ = dataset
    plain = take(PretrainingBatches(files, 8, MAX_LEN, seed=5), 30)
    ahead = PretrainingBatches(files, 8, MAX_LEN, seed=5, prefetch_batches=3)
    it = iter(ahead)
    head = [next(it) for _ in range(11)]
    state = json.loads(json.dumps(ahead.state_dict()))  # the thread has built batches past these
    assert same(plain[:11], head)
    assert same(plain[11:20], [next(it) for _ in range(9)])
    resumed = PretrainingBatches(files, 8, MAX_LEN, seed=5, prefetch_batches=3)
    resumed.load_state_dict(state)
    assert same(plain[11:30], take(resumed, 19))
    # A new iterator takes over where the consumer is, not where the thread got to.
    assert same(plain[20:25], take(ahead, 5))
    ahead.close()
    resumed.close()


def test_a_state_from_another_setup_is_refused_in_one_line(dataset):
    files, _ = dataset
    batches = PretrainingBatches(files, 8, MAX_LEN, seed=1)
    take(batches, 2)
    state = batches.state_dict()
    with pytest.raises(UserInputError, match="^the saved data position has seed 1 but this run has 2;"):
        PretrainingBatches(files, 8, MAX_LEN, seed=2).load_state_dict(state)
    with pytest.raises(UserInputError, match="world_size 1 but this run has 2"):
        PretrainingBatches(files, 8, MAX_LEN, seed=1, world_size=2).load_state_dict(state)
    with pytest.raises(UserInputError, match="files_sha256"):
        PretrainingBatches(files[:2], 8, MAX_LEN, seed=1).load_state_dict(state)


def damage(path, how):
    if how == "flipped":  # the size and the last record stay right; a checksum fails
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            chunk = f.read(8)
            f.seek(-8, 1)
            f.write(bytes(b ^ 0xFF for b in chunk))
    else:
        os.truncate(path, os.path.getsize(path) - 37)


@pytest.mark.parametrize("how, reason", [("flipped", "corrupted record at "), ("cut", "truncated record at ")])
def test_a_damaged_shard_is_named_in_one_line(dataset, tmp_path, how, reason):
    files, _ = dataset
    copies = []
    for path in files:
        copies.append(str(tmp_path / os.path.basename(path)))
        with open(path, "rb") as src, open(copies[-1], "wb") as dst:
            dst.write(src.read())
    damage(copies[1], how)
    with pytest.raises(UserInputError) as e:
        take(PretrainingBatches(copies, 8, MAX_LEN), 20)
    with pytest.raises(UserInputError) as prefetched:  # raised from the reading thread to the consumer
        take(PretrainingBatches(copies, 8, MAX_LEN, prefetch_batches=2), 20)
    assert str(prefetched.value) == str(e.value)
    message = str(e.value)
    assert message.startswith(f"{copies[1]}: damaged TFRecord ({reason}") and "\n" not in message
    assert (e.value.path, e.value.reason.startswith(reason)) == (copies[1], True)


def test_reads_and_resumes_with_tensorflow_unimportable(dataset):
    files, _ = dataset
    script = f"""
import json, sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
from pretrain.torch_backend.data import PretrainingBatches
from pretrain import damage_check, input_pipeline
files = input_pipeline.find_tfrecords({os.path.dirname(files[0])!r})
path, stats = input_pipeline.read_stats(files)
damage_check.check_shards(files, stats, path, {MAX_LEN})
b = PretrainingBatches(files, 8, {MAX_LEN})
it = iter(b)
first = [next(it)["input_ids"].sum().item() for _ in range(3)]
state = json.dumps(b.state_dict())
rest = [next(it)["input_ids"].sum().item() for _ in range(2)]
again = PretrainingBatches(files, 8, {MAX_LEN})
again.load_state_dict(json.loads(state))
it = iter(again)
assert [next(it)["input_ids"].sum().item() for _ in range(2)] == rest
print("ok", len(files))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "3"]


def test_a_rank_left_without_records_is_one_line(tmp_path):
    path = str(tmp_path / "pretrain_data.tfrecord-0-of-1")
    serialize = tfrecords.ExampleSerializer(FEATURES)
    with tfrecords.TFRecordWriter(path) as writer:
        for _ in range(2):
            writer.write(serialize([2] + [5] * (MAX_LEN - 2) + [3], [1] * MAX_LEN, [0] * MAX_LEN))
    assert len(take(PretrainingBatches([path], 4, MAX_LEN, rank=1, world_size=3), 2)) == 2  # record 1, repeated
    with pytest.raises(UserInputError, match=rf"^no records for rank 2 of 3: it reads records 2, 5, \.\.\. of {path}, "
                                             "and none has that many; use fewer processes$"):
        take(PretrainingBatches([path], 4, MAX_LEN, rank=2, world_size=3), 1)
