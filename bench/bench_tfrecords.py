"""TFRecords without TensorFlow (pretrain/tfrecords.py) against TensorFlow's own I/O.

    .venv/bin/python -m bench.bench_tfrecords

On synthetic examples of the builder's schema (three int64 features of 128, ids below 32k):
(1) crc32c throughput of google-crc32c against tensorboard's pure-Python crc32c;
(2) serializing and writing records: protobuf + google-crc32c against tf.train.Example +
    tf.io.TFRecordWriter (and whether the bytes are equal);
(3) reading and decoding: PretrainingBatches (the PyTorch backend's batches, evaluation
    order) against the TF backend's input_fn, both over the same shards.
Times are CPU seconds of this process (every thread counted, so tf.data's threads are
charged to TF) and wall seconds; each measurement is repeated in alternation, median kept.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

MAX_SEQ_LENGTH = 128
FEATURES = ("input_ids", "input_mask", "segment_ids")


def clocked(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def make_rows(count, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        length = int(rng.integers(MAX_SEQ_LENGTH // 2, MAX_SEQ_LENGTH + 1))
        pad = [0] * (MAX_SEQ_LENGTH - length)
        ids = [2] + [int(i) for i in rng.integers(5, 32000, length - 2)] + [3]
        split = length // 2
        rows.append((ids + pad, [1] * length + pad, [0] * split + [1] * (length - split) + pad))
    return rows


def measure(cases, rounds):
    """{name: (median CPU seconds, median wall seconds)}, the cases run in alternation."""
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            times[name].append(clocked(fn))
    return {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
            for name, ts in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import google_crc32c
    import tensorflow as tf
    import torch
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as python_crc32c

    from bench.report import write_section
    from pretrain import dataset_writer, input_pipeline, tfrecords
    from pretrain.torch_backend.data import PretrainingBatches

    torch.set_num_threads(1)
    rows = make_rows(args.records)
    serialized = [dataset_writer.example_serializer()(*row) for row in rows]
    mean_bytes = sum(map(len, serialized)) / len(serialized)

    # (1) crc32c
    crc_c = measure({"google-crc32c": lambda: [google_crc32c.value(r) for r in serialized for _ in range(20)],
                     "python": lambda: [python_crc32c(r) for r in serialized[:200]]}, args.rounds)
    crc_rate = {"google-crc32c": 20 * sum(map(len, serialized)) / crc_c["google-crc32c"][0] / 1e6,
                "python": sum(map(len, serialized[:200])) / crc_c["python"][0] / 1e6}

    with tempfile.TemporaryDirectory(prefix="bench_tfrecords_") as work:
        # (2) serialize + write, 4 shards round-robin as the builder does
        def write(record_io):
            def run():
                serialize = dataset_writer.example_serializer(record_io)
                out = os.path.join(work, record_io)
                os.makedirs(out, exist_ok=True)
                dataset_writer.clear_output_dir(out)
                with dataset_writer.ShardWriter(out, 4, record_io) as writer:
                    for row in rows:
                        writer.write(serialize(*row))
                    writer.commit()
            return run

        writing = measure({"protobuf": write("protobuf"), "tensorflow": write("tensorflow")}, args.rounds)
        shards = {io: [open(os.path.join(work, io, dataset_writer.shard_name(i, 4)), "rb").read() for i in range(4)]
                  for io in ("protobuf", "tensorflow")}
        identical = shards["protobuf"] == shards["tensorflow"]

        # (3) read + decode into batches of 32, evaluation order (no shuffle buffer)
        files = input_pipeline.find_tfrecords(os.path.join(work, "protobuf"))
        num_batches = args.records // 32

        def read_torch():
            it = iter(PretrainingBatches(files, 32, MAX_SEQ_LENGTH, is_training=False))
            for _ in range(num_batches):
                next(it)

        def read_tf():
            dataset = input_pipeline.input_fn_builder(files, MAX_SEQ_LENGTH, False)({"batch_size": 32})
            for _, _batch in zip(range(num_batches), dataset):
                pass

        reading = measure({"PretrainingBatches": read_torch, "TF input_fn": read_tf}, args.rounds)

    n = args.records
    body = [
        f"Synthetic examples of the builder's schema: {n:,} records of three int64 features of "
        f"{MAX_SEQ_LENGTH} (ids below 32k, lengths 64-128), {mean_bytes:.0f} bytes each on average. "
        "CPU seconds are this process's, every thread counted (tf.data's threads are charged to TF); each "
        f"figure is the median of {args.rounds} runs made in alternation.",
        "",
        "| what | ours (TF-free) | TensorFlow | ours / TF |",
        "|---|---|---|---|",
        f"| crc32c, MB per CPU-second | google-crc32c {crc_rate['google-crc32c']:,.0f} | "
        f"(pure-Python crc32c, tensorboard's: {crc_rate['python']:.1f}) | "
        f"{crc_rate['google-crc32c'] / crc_rate['python']:,.0f}x the pure-Python one |",
        f"| serialize + write, records per CPU-second | {n / writing['protobuf'][0]:,.0f} | "
        f"{n / writing['tensorflow'][0]:,.0f} | {writing['tensorflow'][0] / writing['protobuf'][0]:.2f}x |",
        f"| serialize + write, records per wall second | {n / writing['protobuf'][1]:,.0f} | "
        f"{n / writing['tensorflow'][1]:,.0f} | {writing['tensorflow'][1] / writing['protobuf'][1]:.2f}x |",
        f"| read + decode into batches, examples per CPU-second | {32 * num_batches / reading['PretrainingBatches'][0]:,.0f} | "
        f"{32 * num_batches / reading['TF input_fn'][0]:,.0f} | "
        f"{reading['TF input_fn'][0] / reading['PretrainingBatches'][0]:.2f}x |",
        f"| read + decode into batches, examples per wall second | {32 * num_batches / reading['PretrainingBatches'][1]:,.0f} | "
        f"{32 * num_batches / reading['TF input_fn'][1]:,.0f} | "
        f"{reading['TF input_fn'][1] / reading['PretrainingBatches'][1]:.2f}x |",
        "",
        f"- Shards written both ways byte-identical: **{'yes' if identical else 'NO'}**.",
        "- Reading: PretrainingBatches parses each record with protobuf in Python on one thread and checks both "
        "checksums; tf.data decodes in C++ on parallel threads. For a GPU step the reader can build batches "
        "ahead on a thread (`prefetch_batches`).",
    ]
    print("\n".join(body))
    write_section("tfrecords", "TFRecords without TensorFlow (pretrain/tfrecords.py)",
                  ".venv/bin/python -m bench.bench_tfrecords", "\n".join(body))


if __name__ == "__main__":
    main()
