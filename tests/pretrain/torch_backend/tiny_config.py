"""A small PretrainingConfig on the sample vocab, for the torch backend's tests."""
import os

from configure_pretraining import PretrainingConfig
from util.tokenization import KoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SEQ = 32
SIZES = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256,
         "max_position_embeddings": SEQ}


def make_config(vocab_dir, sizes=SIZES, seq=SEQ, embedding_size=32, **overrides):
    """Validated, with the vocab attached (vocab_size, mask_id, special_ids)."""
    vocab = f"{vocab_dir}/vocab.txt"
    config = PretrainingConfig("m", vocab_dir, vocab_file=vocab, max_seq_length=seq, embedding_size=embedding_size,
                               model_hparam_overrides=dict(sizes), **overrides)
    config.validate()
    config.attach_vocab(KoTokenizer.from_vocab(vocab, "wordpiece", False))
    return config
