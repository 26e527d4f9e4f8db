"""Continued pre-training from a released (or our own) TF ELECTRA checkpoint: ``saved_model``.

Released checkpoints carry model variables only: no ``adam_m``/``adam_v`` slots and often
no ``global_step``. So every model variable present is loaded with an explicit assignment
map (tf.train.init_from_checkpoint in the scaffold, which also runs under use_tpu), and the
optimizer slots and the step start at zero. The sizes the user did not set are read from
the checkpoint's variable shapes; a setting that contradicts them is an error. Only the
first run warm-starts: once the model directory has checkpoints of its own, a rerun of the
same command resumes from them and ``saved_model`` is not read again.

What was loaded, what starts fresh and why is printed and recorded in
``<model_dir>/warm_start.json``.

Both backends share the plan, in upstream's variable names. The torch backend reads a
transformers ``saved_model`` directly (convert/to_tf.map_weights gives its weights in those
names, no TensorFlow needed) and loads the plan with pretrain/torch_backend/warm_start.py; a
TF-v1 checkpoint needs TensorFlow to be read, whichever backend trains. TensorFlow is imported
only where a TF checkpoint or graph is touched.
"""
import dataclasses
import importlib.util
import os

from model.checkpoint_reader import CheckpointVariables, encoder_shapes, is_training_state, resolve_checkpoint
from pretrain import layout, vocab_extension
from util import vocab_identity
from util.errors import UserInputError
from util.files import read_json, write_json

RECORD_NAME = "warm_start.json"
CONVERTED_DIR = "converted_from_transformers"  # in the model dir: a transformers saved_model as a TF checkpoint
# Sizes read off the discriminator's shapes -> which dimensions of the named variable they are.
DISCRIMINATOR_SIZES = {"vocab_size": (0,), "embedding_size": (1,), "hidden_size": (0, 1),
                       "num_hidden_layers": (), "intermediate_size": (1,), "max_position_embeddings": (0,),
                       "type_vocab_size": (0,)}
IN_MODEL_OVERRIDES = ("max_position_embeddings", "type_vocab_size")  # BertConfig fields without a top-level hparam


def checkpoint_prefix(saved_model, saved_generator=None, work_dir=None, untied_generator_embeddings=False):
    """The TF checkpoint prefix to warm-start from, given ``saved_model`` (and ``saved_generator``).

    ``saved_model`` is a checkpoint prefix or a directory (its newest checkpoint), or a
    transformers ELECTRA discriminator directory (``saved_generator``: its generator, optional),
    which is converted once into ``work_dir``/converted_from_transformers by convert/to_tf.py.
    """
    path = os.fspath(saved_model).rstrip("/")
    stripped = path
    for suffix in (".index", ".meta"):
        stripped = stripped[: -len(suffix)] if stripped.endswith(suffix) else stripped
    if not (layout.exists(path) or layout.exists(stripped + ".index")):
        raise UserInputError(f"saved_model {saved_model} does not exist")
    if layout.isdir(path) and is_transformers_dir(path):
        return _converted(path, saved_generator, work_dir, untied_generator_embeddings)
    if saved_generator:
        raise UserInputError(f"saved_generator {saved_generator}: only a transformers saved_model takes a "
                             f"separate generator; the TF checkpoint {saved_model} holds its own")
    return resolve_checkpoint(path)[0]


def _converted(discriminator_dir, generator_dir, work_dir, untied_generator_embeddings):
    """The checkpoint convert/to_tf.py writes from a transformers pair; reused when already there."""
    if generator_dir and not layout.isdir(generator_dir):
        raise UserInputError(f"saved_generator {generator_dir} does not exist")
    prefix = os.path.join(work_dir, CONVERTED_DIR, "model.ckpt")
    recorded = os.path.join(work_dir, CONVERTED_DIR, "pretrain_config.json")
    if layout.exists(prefix + ".index"):  # to_tf renames its directory into place whole
        # Reused only in the layout asked for now: following the advice to untie means converting again.
        untied = read_json(recorded, "converted config").get("untied_generator_embeddings") \
            if layout.exists(recorded) and not layout.is_remote(recorded) else untied_generator_embeddings
        if bool(untied) == bool(untied_generator_embeddings):
            print(f"warm start: reusing {prefix}, converted from {discriminator_dir}", flush=True)
            return prefix
    from convert.to_tf import WARM_START_WORDS, format_report, transformers_to_tf  # torch, transformers: only here

    print(f"warm start: converting the transformers directories to a TF checkpoint at {prefix}", flush=True)
    report = transformers_to_tf(discriminator_dir, generator_dir, prefix,
                                untied_generator_embeddings=untied_generator_embeddings,
                                overwrite=layout.exists(prefix + ".index"), words=WARM_START_WORDS)
    print(format_report(report), flush=True)
    return prefix


def is_transformers_dir(path):
    has_config = layout.exists(os.path.join(path, "config.json"))
    return has_config and not layout.glob(os.path.join(path, "*.index"))


def tensorflow_installed():
    return importlib.util.find_spec("tensorflow") is not None


def source_variables(config, backend="tf"):
    """(variables, prefix, resuming) the sizes come from, or None without ``saved_model``.

    On a rerun the model directory's own newest checkpoint: it has the same names and shapes,
    and is there even when ``saved_model`` has moved since.
    """
    if not config.saved_model:
        return None
    own = layout.latest_checkpoint(config.model_dir, backend)  # each backend resumes from its own kind
    if own and backend == "torch":
        from pretrain.torch_backend.checkpoint import checkpoint_variables

        return checkpoint_variables(own[1]), own[1], True
    if own:
        return CheckpointVariables(own[1]), own[1], True
    path = os.fspath(config.saved_model).rstrip("/")
    torch_checkpoints = layout.torch_checkpoints(path) if layout.isdir(path) else []
    if torch_checkpoints and backend == "torch":  # another torch run's model dir: its newest checkpoint
        from pretrain.torch_backend.checkpoint import checkpoint_variables

        return checkpoint_variables(torch_checkpoints[-1][1]), torch_checkpoints[-1][1], False
    beside = layout.latest_checkpoint(path, "tf") if torch_checkpoints else None
    if torch_checkpoints and (beside is None or beside[2] < torch_checkpoints[-1][0]):
        # A TF checkpoint converted beside the newest torch one (convert/torch_tf.py) is read instead.
        raise UserInputError(f"saved_model {config.saved_model} holds torch checkpoints, which the TF backend does "
                             "not read: warm-start with --backend torch, or write a TF one beside the newest "
                             f"(python pytorch_convert.py --tf_ckpt_path {config.saved_model} --to_tf_model_dir "
                             f"{config.saved_model})")
    if backend == "torch" and layout.isdir(path) and is_transformers_dir(path):
        from model.checkpoint_reader import transformers_variables

        if config.saved_generator and not layout.isdir(config.saved_generator):
            raise UserInputError(f"saved_generator {config.saved_generator} does not exist")
        return (transformers_variables(path, config.saved_generator, config.untied_generator_embeddings),
                path, False)
    if not tensorflow_installed():
        if not layout.exists(path) and not layout.exists(path + ".index"):
            raise UserInputError(f"saved_model {config.saved_model} does not exist")
        raise UserInputError(f"saved_model {config.saved_model} is a TF-v1 checkpoint, which only TensorFlow reads, "
                             "and TensorFlow is not installed: convert it where it is (python pytorch_convert.py "
                             "--tf_ckpt_path CKPT --pt_discriminator_path D --pt_generator_path G) and give the "
                             "transformers directories as saved_model (D) and saved_generator (G)")
    prefix = checkpoint_prefix(config.saved_model, config.saved_generator, config.model_dir,
                               config.untied_generator_embeddings)
    return CheckpointVariables(prefix), prefix, False


def apply_architecture(config, variables):
    """Set every size the user left unset from the checkpoint; returns {size: where it came from}."""
    variables.check_is_electra()
    origin = {}
    disc = encoder_shapes(variables, "electra", "electra")
    for key, (value, name, shape) in disc.items():
        if key == "vocab_size":  # checked against the run's vocab later, with a pointer to --extend
            if "vocab_size" in config.user_set and config.vocab_size != value:
                _contradiction(config, variables, key, config.vocab_size, name, shape, DISCRIMINATOR_SIZES[key])
            origin[key] = f"{value} (from {name} {_fmt(shape)})"
            continue
        current = (config.model_hparam_overrides.get(key) if key in IN_MODEL_OVERRIDES else getattr(config, key))
        if key in config.user_set and current != value:
            _contradiction(config, variables, key, current, name, shape, DISCRIMINATOR_SIZES[key])
        if key in IN_MODEL_OVERRIDES:
            config.model_hparam_overrides[key] = value
        else:
            setattr(config, key, value)
        origin[key] = f"{value} ({'set in hparams' if key in config.user_set else f'from {name} {_fmt(shape)}'})"
    origin["num_attention_heads"] = _heads(config, variables)
    origin.update(_generator(config, variables, disc))
    return origin


def _generator(config, variables, disc):
    """Generator sizes (fractions of the discriminator's) and layout from the checkpoint."""
    origin = {}
    if any(n.startswith("generator/encoder/") for n in variables.shapes):
        untied_embeddings = "generator/embeddings/word_embeddings" in variables
        if "untied_generator_embeddings" not in config.user_set:
            config.untied_generator_embeddings = untied_embeddings
        gen = encoder_shapes(variables, "generator", "generator" if untied_embeddings else "electra")
        for key, size in (("generator_hidden_size", "hidden_size"), ("generator_layers", "num_hidden_layers")):
            value, name, shape = gen[size]
            fraction = value / disc[size][0]
            wanted = int(round(disc[size][0] * getattr(config, key)))
            if key in config.user_set and wanted != value:
                if size == "num_hidden_layers":
                    raise UserInputError(f"{config._source}: {key} {getattr(config, key)} ({wanted} generator layers) "
                                         f"contradicts {variables.prefix}: its generator has {value} layers, the "
                                         f"last {name}")
                raise UserInputError(f"{config._source}: {key} {getattr(config, key)} (generator hidden size {wanted}) "
                                     f"contradicts {variables.prefix}: variable {name} has shape {_fmt(shape)} "
                                     f"there, the config needs {_fmt(_implied(shape, (0, 1), wanted))}")
            setattr(config, key, fraction)
            origin[key] = (f"{_times(fraction)} the discriminator's {size} "
                           f"({'set in hparams' if key in config.user_set else f'from {name} {_fmt(shape)}'})")
        if untied_embeddings and config.untied_generator_embeddings:  # its own table, at its own width
            value, name, shape = gen["embedding_size"]
            key = "generator_embedding_size"
            if key in config.user_set and config.generator_embedding_size not in (None, value):
                _contradiction(config, variables, key, config.generator_embedding_size, name, shape, (1,))
            config.generator_embedding_size = value
            origin[key] = f"{value} ({'set in hparams' if key in config.user_set else f'from {name} {_fmt(shape)}'})"
    elif "generator_predictions/output_bias" in variables and "untied_generator" not in config.user_set:
        config.untied_generator = False  # the checkpoint's generator is the discriminator itself
        origin["untied_generator"] = "false: the checkpoint has generator_predictions but no generator/ encoder"
    return origin


def _heads(config, variables):
    """Heads are not in any shape: the user's, a config beside the checkpoint, or upstream's rule."""
    if "num_attention_heads" in config.user_set:
        return f"{config.num_attention_heads} (set in hparams)"
    directory = getattr(variables, "directory", None) or os.path.dirname(variables.prefix)
    for name, keys in (("pretrain_config.json", ("bert_config", "num_attention_heads")),
                       ("config.json", ("num_attention_heads",))):
        path = os.path.join(directory, name)
        if not layout.is_remote(path) and os.path.exists(path):
            value = read_json(path, "model config")
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, int) and value > 0:
                config.num_attention_heads = value
                return f"{value} (from {'.'.join(keys)} in {path})"
    config.num_attention_heads = max(1, config.hidden_size // 64)
    return (f"{config.num_attention_heads} (hidden_size // 64, upstream ELECTRA's rule: no pretrain_config.json or "
            "config.json beside the checkpoint; set num_attention_heads if it was trained with other heads)")


def _contradiction(config, variables, key, user_value, name, shape, dims):
    if not dims:  # a layer count: no dimension of one shape
        raise UserInputError(f"{config._source}: {key} {user_value} contradicts {variables.prefix}: it has "
                             f"{variables.layer_count('electra')} layers, the last {name}")
    raise UserInputError(f"{config._source}: {key} {user_value} contradicts {variables.prefix}: variable {name} "
                         f"has shape {_fmt(shape)} there, {key} {user_value} needs "
                         f"{_fmt(_implied(shape, dims, user_value))}")


def _implied(shape, dims, value):
    return [value if d in dims else s for d, s in enumerate(shape)]


def source_vocab(config, variables, prefix):
    """The vocab ``saved_model`` was trained with: the vocab.txt in its directory (a transformers
    directory, a model dir, a released checkpoint's folder), else the vocab_file its
    pretrain_config.json records; None when there is none to compare with."""
    directory = getattr(variables, "directory", None) or os.path.dirname(prefix)
    if os.path.basename(directory) == layout.TORCH_CHECKPOINT_DIR:  # another torch run's model dir
        directory = os.path.dirname(directory)
    path = os.fspath(config.saved_model).rstrip("/")
    for candidate in ([path] if layout.isdir(path) else []) + [directory]:
        if not layout.is_remote(candidate):
            found = vocab_identity.vocab_beside(candidate)
            if found:
                return found
    return None


def check_vocab(config, variables, tokenizer, prefix=None):
    """The run's vocab must be the checkpoint's, token for token (or its recorded extension), and have
    exactly one row per checkpoint embedding row."""
    beside = source_vocab(config, variables, prefix or variables.prefix)
    if beside:
        vocab_identity.check_vocab_of_model(tokenizer.vocab_file, beside, f"saved_model {config.saved_model}")
    else:
        print(f"note: saved_model {config.saved_model} has no vocab.txt beside it (nor one its pretrain_config.json "
              f"names): {tokenizer.vocab_file} is checked against its size only", flush=True)
    rows = variables.shapes["electra/embeddings/word_embeddings"][0]
    if tokenizer.vocab_size > rows:
        raise UserInputError(f"{tokenizer.vocab_file}: {tokenizer.vocab_size} tokens, more than the {rows} rows of "
                             f"electra/embeddings/word_embeddings in {variables.prefix}: a checkpoint's vocab cannot "
                             "grow; build_vocab.py --extend writes new tokens into its [unusedN] slots instead")
    if tokenizer.vocab_size < rows:
        raise UserInputError(f"{tokenizer.vocab_file}: {tokenizer.vocab_size} tokens, fewer than the {rows} rows of "
                             f"electra/embeddings/word_embeddings in {variables.prefix}: use the vocab the "
                             "checkpoint was trained with (or one build_vocab.py --extend made from it)")


def model_variable_shapes(config):
    """name -> shape of every model variable the config builds (in a scratch graph, nothing run)."""
    import tensorflow.compat.v1 as tf

    from model.electra_model import PretrainingModel

    with tf.Graph().as_default():
        features = {k: tf.zeros([1, config.max_seq_length], tf.int32)
                    for k in ("input_ids", "input_mask", "segment_ids")}
        PretrainingModel(config, features, is_training=True)
        return {v.op.name: v.shape.as_list() for v in tf.global_variables() if not is_training_state(v.op.name)}


@dataclasses.dataclass
class WarmStart:
    """What a warm start loads, and the record of it."""

    prefix: str
    loaded: list  # model variable names, the same in the checkpoint
    fresh: dict  # model variable name -> why it starts from its initializer
    not_used: list  # checkpoint variables the model has no place for
    extension: tuple = None  # (new ids, their base pieces, vocab_extension.json) or None
    variables: object = None  # where the values are read from (model.checkpoint_reader)
    record: dict = dataclasses.field(default_factory=dict)

    def scaffold_fn(self):
        """For TPUEstimatorSpec: loads the checkpoint, then (once, never on a restore) the new-token rows."""
        import tensorflow.compat.v1 as tf

        tf.train.init_from_checkpoint(self.prefix, {name: name for name in self.loaded})
        if not self.extension:
            return tf.train.Scaffold()
        ids, pieces, _ = self.extension
        variables = {v.op.name: v for v in tf.global_variables()}
        ops = [vocab_extension.mean_rows_op(variables[name], ids, pieces)
               for name in vocab_extension.TOKEN_TABLES if name in self.loaded]
        # init_fn runs right after the variables are initialised, and only when nothing was restored.
        return tf.train.Scaffold(init_fn=lambda scaffold, session: session.run(ops))


def plan(config, prefix, variables, tokenizer, origin, backend="tf"):
    """The WarmStart for this config; a variable whose shape differs from the model's is an error."""
    from configure_pretraining import generator_config

    if backend == "torch":
        from pretrain.torch_backend.warm_start import model_variable_shapes as torch_shapes

        model = torch_shapes(config)
    else:
        model = model_variable_shapes(config)
    loaded, fresh = [], {}
    has_generator = "generator_predictions/output_bias" in variables
    gen = generator_config(config)
    for name, shape in model.items():
        if name not in variables:
            fresh[name] = _why_fresh(name, has_generator, gen)
        elif variables.shapes[name] != shape:
            raise UserInputError(f"{prefix}: variable {name} has shape {_fmt(variables.shapes[name])} in the "
                                 f"checkpoint, the model needs {_fmt(shape)}")
        else:
            loaded.append(name)
    extension = vocab_extension.read_extension(tokenizer, variables.shapes["electra/embeddings/word_embeddings"][0])
    warm = WarmStart(prefix, loaded, fresh, sorted(set(variables.shapes) - set(loaded)), extension, variables)
    warm.record = {
        "saved_model": config.saved_model, "saved_generator": config.saved_generator, "checkpoint": prefix,
        # The base's own sizes (a model card names them): the run's, with the rows the base's vocab had.
        "base_sizes": dict(_base_sizes(config), vocab_size=variables.shapes["electra/embeddings/word_embeddings"][0]),
        "sizes_from": origin, "loaded": loaded, "fresh": fresh, "not_used": warm.not_used,
        "optimizer_slots": "start at zero" + ("" if variables.has_optimizer_slots
                                              else " (the checkpoint has none, as released ones)"),
        "global_step": {"starts_at": 0, "checkpoint_had": variables.global_step},
        "vocab_extension": None if not extension else {
            "file": extension[2], "new_tokens": len(extension[0]),
            "tables": [n for n in vocab_extension.TOKEN_TABLES if n in loaded],
            "rule": "each new token's row = the mean of its base_pieces' rows in the checkpoint"},
    }
    return warm


def _base_sizes(config):
    from configure_pretraining import generator_config

    bert = config.bert_config()
    sizes = {"hidden_size": bert.hidden_size, "num_hidden_layers": bert.num_hidden_layers,
             "embedding_size": bert.embedding_size}
    if config.electra_objective and config.untied_generator and not config.uniform_generator:
        gen = generator_config(config)
        sizes.update(generator_hidden_size=gen.hidden_size, generator_num_hidden_layers=gen.num_hidden_layers)
    return sizes


def _why_fresh(name, has_generator, gen):
    if name.startswith(("generator/", "generator_predictions/")) and not has_generator:
        return (f"the checkpoint has no generator: it starts fresh at the configured size (hidden {gen.hidden_size}, "
                f"{gen.num_hidden_layers} layers) and needs steps to catch up with the loaded discriminator")
    return "not in the checkpoint"


def report(warm, model_dir, write):
    """Print what the warm start does and (if ``write``) record it in <model_dir>/warm_start.json."""
    r = warm.record
    print(f"warm start from {warm.prefix}: {len(warm.loaded)} model variables loaded", flush=True)
    for key, where in sorted(r["sizes_from"].items()):
        print(f"  {key}: {where}", flush=True)
    reasons = {}
    for name, why in warm.fresh.items():
        reasons.setdefault(why, []).append(name)
    if not reasons:
        print("  fresh: nothing (every model variable was in the checkpoint)", flush=True)
    for why, names in reasons.items():
        print(f"  fresh: {len(names)} variables ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}): {why}",
              flush=True)
    if warm.not_used:
        print(f"  not used: {len(warm.not_used)} checkpoint variables ({', '.join(warm.not_used[:3])}"
              f"{', ...' if len(warm.not_used) > 3 else ''}): the config builds no such variable", flush=True)
    had = r["global_step"]["checkpoint_had"]
    print(f"  optimizer slots {r['optimizer_slots']}; global_step starts at 0 (the checkpoint's: "
          f"{'none' if had is None else had})", flush=True)
    if r["vocab_extension"]:
        ext = r["vocab_extension"]
        print(f"  vocab extension {ext['file']}: {ext['new_tokens']} new tokens start as the mean of their base "
              f"pieces in {', '.join(ext['tables'])}", flush=True)
    if write:
        path = os.path.join(model_dir, RECORD_NAME)
        print(f"  recorded in {path}", flush=True)
        if layout.is_remote(path):
            import json

            import tensorflow as tf

            with tf.io.gfile.GFile(path, "w") as f:
                f.write(json.dumps(r, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        else:
            write_json(path, r)


def _times(fraction):
    """A size fraction as a factor: 1.0×, 0.75×, 0.333333× (a bare "1" read as a count)."""
    text = f"{fraction:.6g}"
    return (text if "." in text or "e" in text else text + ".0") + "×"


def _fmt(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def load(config, backend="tf"):
    """Before validation: resolve saved_model and take the sizes from it.

    Returns (variables, prefix, resuming, origin), or None without ``saved_model``.
    """
    found = source_variables(config, backend)
    if found is None:
        return None
    variables, prefix, resuming = found
    origin = apply_architecture(config, variables)
    return variables, prefix, resuming, origin
