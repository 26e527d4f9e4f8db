"""Everything a pre-training run checks and resolves before it builds a network, for both backends.

Config, vocab, dataset, warm-start plan and the model directory's own config are settled
here once, so the TF and the torch backend refuse the same mistakes with the same lines.
No TensorFlow is imported, except where a TF checkpoint must be read (a TF-v1 ``saved_model``)
or a ``gs://`` path (pretrain/layout.py).
"""
import json
import os

from pretrain import data_quality, input_pipeline, layout, settings_check, warm_start
from pretrain.layout import CONFIG_NAME
from util import vocab_identity
from util.errors import UserInputError
from util.files import write_json
from util.tokenization import KoTokenizer


def resolve_vocab(config, stats=None):
    """The vocab: hparam vocab_file, else DATA_DIR/vocab.txt, else the one stats.json says the dataset used.

    ``tokenizer_type`` and ``do_lower_case`` left unset in the hparams are what the dataset
    was built with (its stats.json), then what the vocab records: a bare vocab.txt (such as
    the released one) records nothing, and ``build_pretraining_dataset.py --tokenizer_type
    mecab_wordpiece`` over it must not train as, and write a model directory saying, wordpiece.
    """
    candidates = [config.vocab_file] if config.vocab_file else settings_check.vocab_candidates(config, stats)
    built = stats or {}
    tokenizer_type = config.tokenizer_type if config.tokenizer_type is not None else built.get("tokenizer_type")
    do_lower_case = config.do_lower_case if config.do_lower_case is not None else built.get("do_lower_case")
    for path in candidates:
        if os.path.exists(path):
            return KoTokenizer.from_vocab(path, tokenizer_type, do_lower_case)
    if config.vocab_file:
        raise UserInputError(f"vocab_file not found: {config.vocab_file}")
    raise UserInputError(f"no vocab: set \"vocab_file\" in --hparams (nothing at {' or '.join(candidates)})")


def check_model_dir(config, backend, tokenizer=None):
    """A model dir with checkpoints continues only with the sizes, the vocab and the backend it was trained with.

    Both kinds at the newest step (one converted beside the other by convert/torch_tf.py) continue
    with either backend, each from its own.
    """
    latest = layout.latest_checkpoint(config.model_dir)
    if latest is None:
        return
    kind, path, step = latest
    own = layout.latest_checkpoint(config.model_dir, backend) if kind != backend else latest
    if own is None or own[2] < step:
        other = {"tf": "TF-v1 (model.ckpt-N)", "torch": f"torch ({layout.TORCH_CHECKPOINT_DIR}/)"}
        # The torch backend warm-starts from a TF checkpoint (pretrain/warm_start.py); the reverse needs a conversion.
        start = (f", or start another model_name from it with --hparams '{{\"saved_model\": \"{config.model_dir}\"}}'"
                 if kind == "tf" else "")
        raise UserInputError(f"{config.model_dir}: its newest checkpoint {path} is a {other[kind]} one, and this "
                             f"run uses --backend {backend}: continue it with --backend {kind}, convert it to "
                             f"continue with {backend} at the same step (python pytorch_convert.py --tf_ckpt_path "
                             f"{config.model_dir} --to_{backend}_model_dir DIR){start}")
    kept = os.path.join(config.model_dir, "vocab.txt")
    if tokenizer is not None and not layout.is_remote(kept) and os.path.isfile(kept):
        # Same size is not enough: another vocab gives the trained rows other tokens, and conversion would pair them.
        vocab_identity.check_vocab_of_model(tokenizer.vocab_file, kept, f"the model dir {config.model_dir}",
                                            allow_extension=False)
    existing = os.path.join(config.model_dir, CONFIG_NAME)
    if not layout.exists(existing):
        return
    old = json.loads(layout.read_text(existing))
    new = config.to_dict()
    differ = [f"{name} {was!r} there, {now!r} now" for key in ("bert_config", "generator_bert_config", "max_seq_length")
              for name, was, now in _differing(key, old.get(key), new[key])]
    if differ:
        raise UserInputError(f"{existing}: the checkpoints in {config.model_dir} were trained with other sizes "
                             f"({'; '.join(differ)}); drop those settings to continue, or use another model_name")


def _differing(name, old, new):
    """(dotted key, old value, new value) of each leaf where two configs differ: the keys, not the whole dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new), key=str)
                for d in _differing(f"{name}.{key}", old.get(key), new.get(key))]
    return [] if old == new else [(name, old, new)]


def prepare(config, backend="tf"):
    """Validate config, vocab and dataset; return (tokenizer, tfrecord files). Trains nothing.

    With ``saved_model`` the sizes come from its checkpoint first, and on a first run
    ``config.warm_start`` is set to what will be loaded (in upstream's variable names, which
    both backends load: pretrain/warm_start.py).
    """
    source = warm_start.load(config, backend)
    config.validate()
    files = input_pipeline.find_tfrecords(config.data_dir, config.pretrain_tfrecords)
    stats = input_pipeline.read_stats(files)[1]
    for line in data_quality.warnings(stats):  # what the builder said, again, before any step is paid for
        print(line, flush=True)
    if settings_check.take_sequence_length(config, stats):
        config.validate()  # the dataset's length against the positions and prediction slots
    settings_check.check_against_files(config, stats)  # every contradiction at once, with its fix
    tokenizer = resolve_vocab(config, stats)
    if source and not source[2]:  # a resume is checked against the model dir's own vocab (check_model_dir)
        warm_start.check_vocab(config, source[0], tokenizer, source[1])
    config.attach_vocab(tokenizer)
    input_pipeline.check_dataset(config, tokenizer, files)
    check_model_dir(config, backend, tokenizer)
    if source:
        variables, prefix, resuming, origin = source
        if resuming:  # the resume line names the checkpoint and step
            print(f"saved_model {config.saved_model} is not loaded again: the model dir has checkpoints of its own "
                  f"({warm_start.RECORD_NAME} records the first start)", flush=True)
        else:
            config.warm_start = warm_start.plan(config, prefix, variables, tokenizer, origin, backend)
    return tokenizer, files


def write_model_dir(config, tokenizer):
    """pretrain_config.json, vocab.txt and tokenizer_config.json, beside the checkpoints.

    A model dir with checkpoints keeps the vocab.txt it has: check_model_dir made sure the run's is the
    same, and a resume must never be the moment the checkpoints' vocab changes."""
    if layout.is_remote(config.model_dir):  # a gs:// bucket on Cloud TPU: gfile writes are whole-object already
        import tensorflow as tf

        tf.io.gfile.makedirs(config.model_dir)
        for name, text in ((CONFIG_NAME, json.dumps(config.to_dict(), ensure_ascii=False, indent=2, sort_keys=True)),
                           ("tokenizer_config.json", json.dumps(tokenizer.config, indent=2, sort_keys=True))):
            with tf.io.gfile.GFile(os.path.join(config.model_dir, name), "w") as f:
                f.write(text + ("" if text.endswith("\n") else "\n"))
        with tf.io.gfile.GFile(os.path.join(config.model_dir, "vocab.txt"), "wb") as f:
            f.write(tokenizer.vocab_bytes)  # byte for byte: the checksum and ids stay
        return
    os.makedirs(config.model_dir, exist_ok=True)
    write_json(os.path.join(config.model_dir, CONFIG_NAME), config.to_dict())
    kept = os.path.join(config.model_dir, "vocab.txt")
    if not (os.path.isfile(kept) and layout.latest_checkpoint(config.model_dir)):
        tokenizer.save(config.model_dir)
