"""A tiny random-init ELECTRA directory whose vocab is learned from the NER/QA fixtures.

Written the way pytorch_convert.py writes a model directory (config.json + weights,
vocab.txt, tokenizer_config.json with our ``tokenizer_type``), at toy size, so the task
code under test loads it exactly as it loads a real one.
"""
import contextlib
import json
import os

FIXTURES = os.path.dirname(os.path.abspath(__file__))


def fixture_texts():
    """Every sentence, context and question of the fixtures: the vocab's training text."""
    texts = []
    with open(os.path.join(FIXTURES, "naver_ner.tsv"), encoding="utf-8") as f:
        texts += [line.split("\t")[0] for line in f if line.strip()]
    with open(os.path.join(FIXTURES, "klue_ner.tsv"), encoding="utf-8") as f:
        texts += [line.split("\t", 1)[1] for line in f if line.startswith("## klue")]
    with open(os.path.join(FIXTURES, "korquad.json"), encoding="utf-8") as f:
        for article in json.load(f)["data"]:
            for paragraph in article["paragraphs"]:
                texts.append(paragraph["context"])
                texts += [qa["question"] for qa in paragraph["qas"]]
    return texts


def make_tiny_electra(directory, tokenizer_type="wordpiece", vocab_size=400, texts=None):
    """``texts``: the vocab's training text (default: the fixtures')."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import ElectraConfig, ElectraForPreTraining, ElectraTokenizerFast

    from util.files import write_json
    from util.tokenization import SPECIAL_TOKENS, MecabSplitter, tokenizer_config

    texts = list(texts) if texts is not None else fixture_texts()
    if tokenizer_type == "mecab_wordpiece":
        texts = [MecabSplitter()(t) for t in texts]
    os.makedirs(directory, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(strip_accents=False, lowercase=False)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1,
                                  special_tokens=SPECIAL_TOKENS, limit_alphabet=1000)
    wordpiece.save_model(directory)
    ElectraTokenizerFast(vocab_file=os.path.join(directory, "vocab.txt"), do_lower_case=False,
                         strip_accents=False).save_pretrained(directory)
    # save_pretrained drops keys it does not know; put ours back as the vocab stage writes it.
    config_path = os.path.join(directory, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as f:
        saved = json.load(f)
    saved.update(tokenizer_config(tokenizer_type, False))
    write_json(config_path, saved)
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=wordpiece.get_vocab_size(), embedding_size=32, hidden_size=32,
                           num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           max_position_embeddings=256)
    ElectraForPreTraining(config).save_pretrained(directory)
    return directory


def load_tokenizer(directory):
    from util.hf_tokenizer import load_tokenizer as load_ko_tokenizer  # mecab dirs get the mecab tokenizer

    return load_ko_tokenizer(directory)


@contextlib.contextmanager
def one_thread():
    """Torch on one thread: on a CPU shared with other jobs, two spinning threads make
    a toy model's step dozens of times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_steps(model, features, steps, lr=3e-3, batch_size=8, seed=0):
    """A plain loop over the features, padded per batch the way the trainer pads them
    (labels with -100); returns the losses."""
    with one_thread():
        return _train_steps(model, features, steps, lr, batch_size, seed)


def _train_steps(model, features, steps, lr, batch_size, seed):
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(steps):
        chosen = torch.randperm(len(features), generator=generator)[:batch_size].tolist()
        loss = model(**collate([features[i] for i in chosen])).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def collate(features):
    import torch

    width = max(len(f["input_ids"]) for f in features)
    batch = {}
    for key in features[0]:
        if key.startswith("_"):
            continue
        if isinstance(features[0][key], list):
            pad = -100 if key == "labels" else 0
            batch[key] = torch.tensor([f[key] + [pad] * (width - len(f[key])) for f in features])
        else:
            batch[key] = torch.tensor([f[key] for f in features])
    return batch


def predict(model, features, batch_size=16):
    """Stacked raw outputs, zero-padded along the sequence to a common length."""
    import numpy as np
    import torch

    model.eval()
    width = max(len(f["input_ids"]) for f in features)
    chunks = {}
    with torch.no_grad(), one_thread():
        for i in range(0, len(features), batch_size):
            out = model(**collate(features[i:i + batch_size]))
            for key, value in out.items():
                if key == "loss":
                    continue
                value = value.numpy()
                pad = [(0, 0), (0, width - value.shape[1])] + [(0, 0)] * (value.ndim - 2)
                chunks.setdefault(key, []).append(np.pad(value, pad))
    return {k: np.concatenate(v) for k, v in chunks.items()}
