"""Every hparam that contradicts the vocab or the dataset, reported at once.

The published JSON (conf/pretrain/small_config_kor_wordpiece_train.json) names the released
``vocab_file``, ``vocab_size`` 40000 and ``tokenizer_type`` wordpiece. On one's own data
each of them is wrong, and three one-line errors in a row, each found only after fixing the
last, cost three starts. This check lists them together with the one ``--hparams`` layer
that resolves them: ``null`` hands a key back to the files (docs/pretraining.md).
"""
import json
import os

from configure_pretraining import prediction_slots
from util.errors import UserInputError
from util.tokenization import read_tokenizer_config, resolve_vocab_path
from util.vocab_file import VocabFile


def vocab_candidates(config, stats):
    """Where the vocab is looked for when vocab_file is unset (as pretrain/training.resolve_vocab)."""
    found = [os.path.join(config.data_dir, "vocab.txt"), os.path.join(config.data_dir, "vocab")]
    recorded = ((stats or {}).get("args") or {}).get("vocab_file")
    return found + ([recorded] if recorded else [])


def take_sequence_length(config, stats):
    """max_seq_length left unset in the hparams is the dataset's (a preset's 128 or 512 is a
    default, not a choice), with max_predictions_per_seq derived from it unless set. True when
    it changed anything; printed, since the length decides the cost of every step."""
    built = (stats or {}).get("max_seq_length")
    if built is None or "max_seq_length" in config.user_set or built == config.max_seq_length:
        return False
    config.max_seq_length = built
    if "max_predictions_per_seq" not in config.user_set:
        config.max_predictions_per_seq = prediction_slots(config.mask_prob, built)
    print(f"max_seq_length {built}: read from the dataset's stats.json (max_predictions_per_seq "
          f"{config.max_predictions_per_seq})", flush=True)
    return True


def check_against_files(config, stats):
    """Raise one UserInputError naming every contradiction and the --hparams override for them all."""
    problems, fixes = [], {}
    fallback = next((p for p in vocab_candidates(config, stats) if os.path.exists(p)), None)
    vocab = config.vocab_file
    if vocab and not os.path.exists(vocab):
        problems.append(f"vocab_file {vocab} does not exist")
        if fallback:
            fixes["vocab_file"] = None
        vocab = fallback
    elif not vocab:
        vocab = fallback
    if vocab and os.path.exists(vocab):
        vocab_file, directory = resolve_vocab_path(vocab)
        size = len(VocabFile(vocab_file).tokens)
        if config.vocab_size is not None and config.vocab_size != size:
            problems.append(f"vocab_size {config.vocab_size}, but {vocab_file} has {size} tokens")
            fixes["vocab_size"] = None
        built = (stats or {}).get("tokenizer_type")
        recorded = read_tokenizer_config(directory).get("tokenizer_type")
        expected, where = (built, "the dataset was built with") if built else (recorded, f"{directory} records")
        if config.tokenizer_type is not None and expected and config.tokenizer_type != expected:
            problems.append(f"tokenizer_type {config.tokenizer_type}, but {where} {expected}")
            fixes["tokenizer_type"] = None
    if (stats or {}).get("max_seq_length") not in (None, config.max_seq_length):
        problems.append(f"max_seq_length {config.max_seq_length}, but the dataset has {stats['max_seq_length']}")
        fixes["max_seq_length"] = stats["max_seq_length"]
    if not problems:
        return
    line = f"{config._source}: {len(problems)} setting(s) contradict the data in {config.data_dir}: " + "; ".join(problems)
    if len(fixes) == len(problems):
        line += (f". To take them from the data, layer this after the file: --hparams '{json.dumps(fixes)}' "
                 "(null means: read it from the vocab and the dataset)")
    else:
        line += f". Set vocab_file to your vocab (no vocab at {' or '.join(vocab_candidates(config, stats))})"
        if fixes:
            line += f" and layer --hparams '{json.dumps(fixes)}' after the file"
    raise UserInputError(line)
