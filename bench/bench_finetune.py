"""Fine-tuning throughput on NSMC at max_seq_len 128: our trainer vs a plain transformers Trainer.

One run each, same process, same random-init ELECTRA-Small (hidden 256, 12 layers, 4 heads,
embedding 128), same examples (a fixed sample of NSMC's train set), batch 32, lr 5e-5,
AdamW, linear schedule, grad clipping 1.0, one epoch, fp32 on CPU:

- baseline: ``transformers.Trainer`` fed features tokenized with ``padding="max_length"``
  (every example 128 tokens), as Dialog-KoELECTRA and KoELECTRA's data pipelines did;
- reference: ``transformers.Trainer`` with ``DataCollatorWithPadding`` (dynamic padding,
  random order);
- ours: ``run_finetune``'s trainer (dynamic padding + length-grouped batches), fp32 and
  with ``bf16: true`` (bfloat16 autocast on the CPU).

    python -m bench.bench_finetune [--examples 512] [--threads 1]
"""
import argparse
import os
import random
import tempfile
import time

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NSMC = os.path.join(os.path.dirname(ROOT), "shared", "data", "nsmc", "ratings_train.txt")
SEQ_LEN = 128
BATCH = 32


BASELINE_TRAINER = ("Baseline: a plain `transformers.Trainer` over features padded to max_length, as the "
                    "original pipelines built them.")
BASELINE_LOOP = ("Baseline: `transformers.Trainer` cannot run in this environment (it requires the `accelerate` "
                 "package, which requirements.txt does not install), so the baseline is the loop Trainer runs for "
                 "this setup, written plainly: shuffled `DataLoader` over features padded to max_length (as the "
                 "original pipelines built them) with transformers' `default_data_collator`, AdamW, "
                 "`get_linear_schedule_with_warmup`, gradient clipping; the second row uses "
                 "`DataCollatorWithPadding` instead. With `accelerate` installed the script uses Trainer itself.")


def read_nsmc(count, seed=0):
    with open(NSMC, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return random.Random(seed).sample(rows, count), rows


def make_model_dir(directory, vocab_rows):
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import ElectraConfig, ElectraForPreTraining

    from util.files import write_json
    from util.tokenization import SPECIAL_TOKENS, tokenizer_config

    wordpiece = BertWordPieceTokenizer(strip_accents=False, lowercase=False)
    wordpiece.train_from_iterator([r[1] for r in vocab_rows], vocab_size=16000, min_frequency=2,
                                  special_tokens=SPECIAL_TOKENS, limit_alphabet=2000, show_progress=False)
    wordpiece.save_model(directory)
    write_json(os.path.join(directory, "tokenizer_config.json"), tokenizer_config("wordpiece", False))
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=wordpiece.get_vocab_size(), embedding_size=128, hidden_size=256,
                           num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024)
    ElectraForPreTraining(config).save_pretrained(directory)


def trainer_available():
    """transformers.Trainer needs the accelerate package, which requirements.txt does not pin."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        return False
    return True


def baseline_run(model_dir, rows, work, dynamic):
    """transformers.Trainer when it can run here; otherwise the loop it runs, written plainly."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer([r[1] for r in rows], truncation=True, max_length=SEQ_LEN,
                        padding=False if dynamic else "max_length")
    dataset = [{**{k: encoded[k][i] for k in encoded}, "labels": int(r[2])} for i, r in enumerate(rows)]
    torch.manual_seed(42)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    collator = DataCollatorWithPadding(tokenizer) if dynamic else None
    if trainer_available():
        return hf_trainer_run(model, dataset, collator, work)
    return plain_loop_run(model, dataset, collator)


def plain_loop_run(model, dataset, collator):
    """What Trainer.train does for this setup: shuffled batches, AdamW, linear schedule, clipping."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler
    from transformers import default_data_collator, get_linear_schedule_with_warmup

    generator = torch.Generator().manual_seed(42)
    loader = DataLoader(dataset, batch_size=BATCH, sampler=RandomSampler(dataset, generator=generator),
                        collate_fn=collator or default_data_collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, len(loader))
    model.train()
    started = time.perf_counter()
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        model.zero_grad(set_to_none=True)
    return len(dataset) / (time.perf_counter() - started)


def hf_trainer_run(model, dataset, collator, work):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=work, per_device_train_batch_size=BATCH, learning_rate=5e-5,
                             num_train_epochs=1, weight_decay=0.0, warmup_ratio=0.0, max_grad_norm=1.0,
                             adam_epsilon=1e-8, lr_scheduler_type="linear", logging_strategy="no",
                             save_strategy="no", eval_strategy="no", report_to=[], use_cpu=True, seed=42,
                             dataloader_num_workers=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    started = time.perf_counter()
    trainer.train()
    return len(dataset) / (time.perf_counter() - started)


def our_run(model_dir, rows, work, bf16):
    from finetune import tasks
    from finetune.config import load_config
    from finetune.trainer import run

    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "ratings_train.txt"), "w", encoding="utf-8") as f:
        f.write("id\tdocument\tlabel\n" + "".join("\t".join(r) + "\n" for r in rows))
    yaml_path = os.path.join(work, "bench.yaml")
    with open(yaml_path, "w", encoding="utf-8") as f:
        f.write(f"task: nsmc_bench\ndata_dir: {data_dir}\ntrain_file: ratings_train.txt\nckpt_dir: {work}/ckpt\n"
                f"model_name_or_path: {model_dir}\nmax_seq_len: {SEQ_LEN}\ntrain_batch_size: {BATCH}\n"
                f"learning_rate: 5e-5\nnum_train_epochs: 1\ndo_eval: false\nseed: 42\nbf16: {str(bf16).lower()}\n")
    config = load_config(yaml_path, extra_defaults=tasks.task_config_defaults())
    return run(config)["train"]["examples_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for every run (1: the machine is shared with other jobs)")
    args = parser.parse_args()

    import torch

    from bench.report import write_section

    torch.set_num_threads(args.threads)
    rows, all_rows = read_nsmc(args.examples)
    with tempfile.TemporaryDirectory() as work:
        model_dir = os.path.join(work, "electra-small")
        os.makedirs(model_dir)
        make_model_dir(model_dir, all_rows[:30000])
        from transformers import AutoTokenizer

        lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(model_dir)(
            [r[1] for r in rows], truncation=True, max_length=SEQ_LEN)["input_ids"]]
        figures = {}
        base = "Trainer" if trainer_available() else "Trainer-equivalent loop"
        for name, fn in ((f"{base}, padding=max_length", lambda: baseline_run(model_dir, rows, work, False)),
                         (f"{base}, DataCollatorWithPadding", lambda: baseline_run(model_dir, rows, work, True)),
                         ("ours (dynamic padding + length groups)", lambda: our_run(model_dir, rows, work, False)),
                         ("ours + bf16 autocast", lambda: our_run(model_dir, rows, work, True))):
            figures[name] = fn()
            print(f"{name}: {figures[name]:.1f} examples/s", flush=True)

    baseline = figures[f"{base}, padding=max_length"]
    table = "| run | train examples/s | vs baseline |\n|---|---:|---:|\n" + "".join(
        f"| {name} | {value:.1f} | {value / baseline:.2f}× |\n" for name, value in figures.items())
    body = (
        f"Training throughput, NSMC at max_seq_len {SEQ_LEN}: {args.examples} examples sampled from "
        f"`ratings_train.txt` (mean {sum(lengths) / len(lengths):.1f} tokens, max {max(lengths)}), one epoch, "
        f"batch {BATCH}, random-init ELECTRA-Small (hidden 256, 12 layers, 4 heads, embedding 128; "
        f"16k WordPiece vocab learned from NSMC), lr 5e-5, AdamW, linear schedule, clipping 1.0, "
        f"torch on {args.threads} CPU thread(s), one run each in one process.\n\n"
        + (BASELINE_TRAINER if trainer_available() else BASELINE_LOOP) +
        " Ours pads each batch to its longest example and batches examples of similar "
        "length (transformers' `LengthGroupedSampler`).\n\n"
        f"{table}\n"
        f"**Ratio ours / baseline: {figures['ours (dynamic padding + length groups)'] / baseline:.2f}×** "
        "(target ≥ 1.2×). The runs follow one another in one process, on the same examples and weights; "
        "the load average above says how busy the machine was.\n"
    )
    write_section("finetune", "Fine-tuning throughput (run_finetune.py)",
                  f"python -m bench.bench_finetune --examples {args.examples} --threads {args.threads}", body)


if __name__ == "__main__":
    main()
