"""Helpers for the fine-tuning tests (imported by name: conftest puts this folder on sys.path).

``make_tiny_electra`` writes what pytorch_convert.py would write, at toy size: config.json and
weights of an ``ElectraForPreTraining`` (hidden 32, 2 layers, 2 heads), a WordPiece vocab
learned with ``tokenizers`` from the Korean fixture and sample texts, and our
tokenizer_config.json.
"""
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SAMPLE_DIR = os.path.join(ROOT, "data", "finetune_sample")


def fixture_texts():
    """Every text field of the fixture and sample files: the vocab's training text."""
    paths = glob.glob(os.path.join(FIXTURES, "*", "*")) + glob.glob(os.path.join(SAMPLE_DIR, "*.txt"))
    texts = []
    for path in sorted(paths):
        with open(path, encoding="utf-8") as f:
            for line in f:
                texts.extend(field for field in line.rstrip("\n").split("\t") if field)
    return texts


def make_tiny_electra(directory, vocab_size=800, tokenizer_type="wordpiece", layers=2, texts=None,
                      max_positions=128):
    """Write a tiny random-init ELECTRA discriminator directory; returns its path.

    The vocab is learned from ``texts`` (default: the fixture and sample files).
    """
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import ElectraConfig, ElectraForPreTraining

    from util.files import write_json
    from util.tokenization import SPECIAL_TOKENS, tokenizer_config

    os.makedirs(directory, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                       lowercase=False)
    wordpiece.train_from_iterator(texts or fixture_texts(), vocab_size=vocab_size, min_frequency=1,
                                  special_tokens=SPECIAL_TOKENS, limit_alphabet=1000)
    vocab = [t for t, _ in sorted(wordpiece.get_vocab().items(), key=lambda kv: kv[1])]
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in vocab)
    write_json(os.path.join(directory, "tokenizer_config.json"), tokenizer_config(tokenizer_type, False))
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=len(vocab), embedding_size=32, hidden_size=32, num_hidden_layers=layers,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=max_positions)
    ElectraForPreTraining(config).save_pretrained(directory)
    return directory


def tiny_run_config(model_dir, ckpt_dir, **values):
    """Settings for a seconds-long run of the tiny model; ``values`` override them."""
    config = {
        "task": "nsmc_tiny",
        "train_file": "sample_reviews_train.txt",
        "dev_file": "",
        "test_file": "sample_reviews_test.txt",
        "data_dir": SAMPLE_DIR,
        "ckpt_dir": str(ckpt_dir),
        "model_name_or_path": str(model_dir),
        "max_seq_len": 64,
        "num_train_epochs": 1,
        "train_batch_size": 16,
        "eval_batch_size": 64,
        "logging_steps": 10,
        "save_steps": 10,
        "learning_rate": 1e-3,
        "seed": 7,
    }
    config.update(values)
    return config
