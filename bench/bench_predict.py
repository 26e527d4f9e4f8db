"""predict.py's throughput and latency on NSMC test reviews: PyTorch vs onnxruntime, 1 and 2 threads.

    .venv/bin/python -m bench.bench_predict [--reviews 2000] [--latency_calls 100] [--no-write]

A sequence classifier in ELECTRA-Small's shape (hidden 256, 12 layers, embedding 128, 4 heads,
intermediate 1024; random weights — the time does not depend on their values) with a
``mecab_wordpiece`` vocab learned from NSMC training reviews is saved as a fine-tuned directory
and exported with ``convert.onnx_export``. ``finetune.inference.Predictor`` (what predict.py
runs, minus process start-up) then predicts the first ``--reviews`` non-empty reviews of
``ratings_test.txt``: examples/s at batch 32 (mecab, tokenization, batching and the model),
and the median latency of one review at batch 1. Both runtimes get the same thread count; the
figure that matters is the ratio onnxruntime / PyTorch measured in the same run.
"""
import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("USE_TF", "0")

SMALL = dict(embedding_size=128, hidden_size=256, num_hidden_layers=12, num_attention_heads=4,
             intermediate_size=1024, max_position_embeddings=512)
SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


def nsmc_documents(name, limit):
    with open(os.path.join(SHARED, "nsmc", name), encoding="utf-8") as f:
        next(f)
        docs = [line.rstrip("\n").split("\t")[1] for line in f]
    docs = [d for d in docs if d.strip()]
    return docs[:limit] if limit else docs


def make_classifier_dir(directory, vocab_reviews=20000, vocab_size=16000):
    """A fine-tuned-style NSMC directory: config, weights, mecab vocab, finetune_config.json."""
    import torch
    from transformers import ElectraConfig, ElectraForSequenceClassification, ElectraTokenizerFast

    from util.files import write_json
    from util.tokenization import tokenizer_config
    from util.vocab_builder import build_vocab

    corpus = os.path.join(directory, "corpus.txt")
    os.makedirs(directory, exist_ok=True)
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(nsmc_documents("ratings_train.txt", vocab_reviews)) + "\n")
    build_vocab(corpus, directory, "mecab_wordpiece", vocab_size=vocab_size, min_frequency=2,
                limit_alphabet=3000, unused_size=50)
    os.remove(corpus)
    ElectraTokenizerFast(vocab_file=os.path.join(directory, "vocab.txt"), do_lower_case=False,
                         strip_accents=False).save_pretrained(directory)
    write_json(os.path.join(directory, "tokenizer_config.json"),
               dict(tokenizer_config("mecab_wordpiece", False), model_max_length=512))
    vocab = sum(1 for _ in open(os.path.join(directory, "vocab.txt"), encoding="utf-8"))
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=vocab, num_labels=2, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1},
                           **SMALL)
    ElectraForSequenceClassification(config).eval().save_pretrained(directory)
    write_json(os.path.join(directory, "finetune_config.json"), {"task": "nsmc_bench", "max_seq_len": 128})
    return directory


def measure(predictor, reviews, latency_reviews):
    predictor.predict(reviews[:64])  # warm-up: mecab's dictionary, onnxruntime's first runs
    start = time.perf_counter()
    predictions = predictor.predict(reviews)
    throughput = len(reviews) / (time.perf_counter() - start)
    latencies = []
    for review in latency_reviews:
        start = time.perf_counter()
        predictor.predict([review])
        latencies.append(time.perf_counter() - start)
    return throughput, 1000 * statistics.median(latencies), [p["label"] for p in predictions]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--latency_calls", type=int, default=100)
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                        help="write the section of docs/benchmarks.md (default on)")
    args = parser.parse_args()
    from convert.onnx_export import export_finetuned
    from finetune.inference import Predictor

    reviews = nsmc_documents("ratings_test.txt", args.reviews)
    latency_reviews = reviews[-args.latency_calls:]
    tokens = None
    load_before = os.getloadavg()
    rows, agree = [], True
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_classifier_dir(os.path.join(tmp, "nsmc"))
        onnx_path, _ = export_finetuned(model_dir, log=lambda _: None)
        for threads in (1, 2):
            labels = {}
            for runtime in ("PyTorch", "onnxruntime"):
                predictor = Predictor(model_dir, onnx_path=onnx_path if runtime == "onnxruntime" else None,
                                      threads=threads, batch_size=32)
                if tokens is None:
                    from finetune.tasks.sequence_classification import Example

                    features = predictor.task.build_features(
                        [Example(str(i), r, None, "0", i) for i, r in enumerate(reviews)],
                        predictor.tokenizer, 128, "bench")
                    tokens = statistics.mean(len(f["input_ids"]) for f in features)
                throughput, latency, labels[runtime] = measure(predictor, reviews, latency_reviews)
                rows.append((threads, runtime, throughput, latency))
                print(f"{threads} thread(s), {runtime}: {throughput:.1f} examples/s, batch-1 latency "
                      f"{latency:.1f} ms", flush=True)
            agree = agree and labels["PyTorch"] == labels["onnxruntime"]
    load_after = os.getloadavg()
    body = [
        f"`finetune.inference.Predictor` (predict.py without process start-up) on the first {len(reviews):,} "
        f"non-empty NSMC test reviews (mean {tokens:.1f} tokens with [CLS]/[SEP]): an ELECTRA-Small-shaped "
        "sequence classifier (hidden 256, 12 layers, embedding 128, 4 heads, intermediate 1024; random "
        "weights) with a `mecab_wordpiece` vocab learned from 20,000 NSMC training reviews, so each review "
        "goes through mecab, the fast tokenizer, length-sorted batching and the model. Throughput at batch 32; "
        f"latency = median of {len(latency_reviews)} single-review calls. The ONNX file comes from "
        "`python -m convert.onnx_export`; both runtimes predicted the same labels for every review: "
        f"{'yes' if agree else 'NO'}.",
        "",
        f"Load average (1 / 5 / 15 min) {' / '.join(f'{x:.1f}' for x in load_before)} at the start and "
        f"{' / '.join(f'{x:.1f}' for x in load_after)} at the end, on {os.cpu_count()} cores: the machine was "
        "shared with a long pretraining job, so absolute figures are low and the 2-thread rows suffer most; "
        "compare the ratios, which were measured in the same run.",
        "",
        "| threads | runtime | examples/s (batch 32) | latency, batch 1 (ms) | onnxruntime / PyTorch throughput "
        "| PyTorch / onnxruntime latency |",
        "|---|---|---|---|---|---|",
    ]
    by_key = {(t, r): (x, lat) for t, r, x, lat in rows}
    for threads, runtime, throughput, latency in rows:
        torch_x, torch_lat = by_key[threads, "PyTorch"]
        ratio = (f"**{throughput / torch_x:.2f}x**", f"**{torch_lat / latency:.2f}x**") \
            if runtime == "onnxruntime" else ("1.00x", "1.00x")
        body.append(f"| {threads} | {runtime} | {throughput:.1f} | {latency:.1f} | {ratio[0]} | {ratio[1]} |")
    body += ["", "Each ratio is against the PyTorch row with the same thread count. Reproduce a "
             "prediction run by hand with `python predict.py --model_dir DIR --input reviews.txt --threads 1 "
             "[--onnx DIR/model.onnx]`."]
    if args.write:
        from bench.report import write_section

        write_section("predict", "predict.py on NSMC reviews: PyTorch vs onnxruntime",
                      "python -m bench.bench_predict", "\n".join(body))
    else:
        print("\n".join(body))


if __name__ == "__main__":
    main()
