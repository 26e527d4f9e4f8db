"""Reading a TF ELECTRA checkpoint: where it is, its model variables, and the sizes their shapes hold.

Shared by conversion (convert/) and warm-started pre-training (pretrain/warm_start.py), so
both find checkpoints and read sizes the same way. Variable names are upstream ELECTRA's
(model/modeling.py): the discriminator under ``electra/``, the generator's encoder under
``generator/``. Paths go through ``tf.io.gfile`` so a ``gs://`` checkpoint works as a local one.
"""
import os
import re

from util.errors import UserInputError

# Training state that is not part of the model: optimizer slots (our AdamWeightDecay's
# adam_m/adam_v, tf.train.Adam's Adam/Adam_1 and beta powers), the step counter and the
# loss-scale variables of mixed-precision training.
_SKIP_LAST = {"adam_m", "adam_v", "Adam", "Adam_1", "beta1_power", "beta2_power", "global_step",
              "good_steps", "current_loss_scale", "loss_scale"}


def is_training_state(name):
    return name.split("/")[-1] in _SKIP_LAST or "loss_scale" in name


def resolve_checkpoint(path, note=print):
    """A model directory (-> its newest intact checkpoint) or a checkpoint prefix -> (prefix, model_dir).

    A local checkpoint is checked first (pretrain/checkpoint_state.py): in a directory, damaged
    newer checkpoints or a damaged ``checkpoint`` state file are passed over with a ``note`` line
    naming each damaged file; a damaged checkpoint asked for by its prefix is one error line.
    """
    import tensorflow as tf

    from pretrain import checkpoint_state

    path = os.fspath(path).rstrip("/")
    if "://" not in path and os.path.isdir(path):
        choice = checkpoint_state.newest_intact(path)
        if choice is None:
            raise UserInputError(f"{path}: no TF checkpoint (*.index) in this directory")
        for line in choice.notes:
            note(line)
        return choice.prefix, path
    if tf.io.gfile.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None or not tf.io.gfile.exists(prefix + ".index"):
            # The `checkpoint` state file may name absolute paths of another machine.
            candidates = tf.io.gfile.glob(os.path.join(path, "*.index"))
            if not candidates:
                raise UserInputError(f"{path}: no TF checkpoint (*.index) in this directory")
            prefix = max(candidates, key=_step_of)[: -len(".index")]
        return prefix, path
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    path = re.sub(r"\.data-\d+-of-\d+$", "", path)
    if not tf.io.gfile.exists(path + ".index"):
        raise UserInputError(f"{path}: neither a model directory nor a checkpoint prefix "
                             f"({path}.index not found)")
    if "://" not in path:
        checkpoint_state.check_prefix(path)
    return path, os.path.dirname(path if "://" in path else os.path.abspath(path))


def _step_of(index_path):
    import tensorflow as tf

    match = re.search(r"-(\d+)\.index$", index_path)
    return (int(match.group(1)) if match else -1, tf.io.gfile.stat(index_path).mtime_nsec)


class CheckpointVariables:
    """Names, shapes and values of the model variables in a checkpoint (training state dropped)."""

    def __init__(self, prefix):
        import tensorflow as tf

        self.prefix = prefix
        try:
            self._reader = tf.train.load_checkpoint(prefix)
            shapes = self._reader.get_variable_to_shape_map()
        except (tf.errors.OpError, ValueError) as e:
            raise UserInputError(f"{prefix}: cannot read TF checkpoint ({str(e).splitlines()[0]})") from None
        self.shapes = {name: list(shape) for name, shape in shapes.items() if not is_training_state(name)}
        self.all_names = frozenset(shapes)  # training state (Adam slots, global_step) included
        # That training state by itself: what an exact continuation needs beside the model variables.
        self.training_state = {name: list(shape) for name, shape in shapes.items() if is_training_state(name)}
        self.global_step = int(self.get("global_step")) if "global_step" in shapes else None
        self.has_optimizer_slots = any(n.endswith(("/adam_m", "/adam_v", "/Adam", "/Adam_1")) for n in shapes)

    def __contains__(self, name):
        return name in self.shapes

    def get(self, name):
        import tensorflow as tf

        try:
            return self._reader.get_tensor(name)
        except (tf.errors.OpError, IndexError, ValueError) as e:
            # The index lists every variable, so a data file cut short (an interrupted copy of
            # the model dir) only shows here; TF reports it as an IndexError.
            raise UserInputError(f"{self.prefix}: cannot read TF checkpoint, variable {name} "
                                 f"({str(e).splitlines()[0]}); copy the checkpoint files again") from None

    def layer_count(self, scope):
        layers = {int(m.group(1)) for n in self.shapes
                  for m in [re.match(rf"{re.escape(scope)}/encoder/layer_(\d+)/", n)] if m}
        return max(layers) + 1 if layers else 0

    def check_is_electra(self):
        """One line naming what was found when this is not an ELECTRA checkpoint (BERT, ...)."""
        if "electra/embeddings/word_embeddings" in self.shapes:
            return
        scopes = sorted({name.split("/")[0] for name in self.shapes})
        found = ", ".join(scopes[:6]) + (", ..." if len(scopes) > 6 else "")
        if any(n.startswith("bert/") for n in self.shapes):
            examples = [n for n in ("bert/embeddings/word_embeddings", "cls/predictions/output_bias")
                        if n in self.shapes]
            raise UserInputError(f"{self.prefix}: a BERT checkpoint ({', '.join(examples) or found}), not an "
                                 "ELECTRA one: no electra/embeddings/word_embeddings")
        raise UserInputError(f"{self.prefix}: not an ELECTRA checkpoint: no electra/embeddings/word_embeddings; "
                             f"its variables are under {found or 'nothing'}")


class ArrayVariables(CheckpointVariables):
    """The same questions answered from arrays in memory, in upstream's names: a transformers
    pair read without TensorFlow (``transformers_variables``), or a torch checkpoint's weights.

    ``directory`` is where the files beside the weights are (vocab, pretrain_config.json, config.json).
    """

    def __init__(self, prefix, arrays, directory, global_step=None, has_optimizer_slots=False):
        self.prefix, self.directory, self._arrays = prefix, directory, arrays
        self.shapes = {name: list(array.shape) for name, array in arrays.items() if not is_training_state(name)}
        self.all_names = frozenset(arrays)
        self.training_state = {name: list(array.shape) for name, array in arrays.items() if is_training_state(name)}
        self.global_step, self.has_optimizer_slots = global_step, has_optimizer_slots

    def get(self, name):
        return self._arrays[name]


def transformers_variables(discriminator_dir, generator_dir=None, untied_generator_embeddings=False):
    """A transformers ELECTRA pair as ArrayVariables, through convert/to_tf's table (no TensorFlow)."""
    from convert import hf_directory
    from convert.to_tf import WARM_START_WORDS as WORDS
    from convert.to_tf import architecture, map_weights

    disc = hf_directory.load(discriminator_dir, "discriminator", "saved_model", WORDS)
    gen = hf_directory.load(generator_dir, "generator", "saved_generator", WORDS) if generator_dir else None
    arrays, dropped = map_weights(disc, gen, architecture(disc, gen, untied_generator_embeddings, WORDS))
    for name, kept, lost in dropped:  # as convert/to_tf.py says them for the TF backend's conversion
        print(f"warm start: {name} is written from {kept}; {lost} differs and is dropped (upstream keeps one "
              f"table; to keep both, {WORDS['untie']})", flush=True)
    return ArrayVariables(os.fspath(discriminator_dir).rstrip("/"), arrays, os.fspath(discriminator_dir))


def encoder_shapes(variables, scope, emb_scope, missing_hint=""):
    """The sizes one encoder's variable shapes hold (every BertConfig size but the heads and activation).

    Each value comes with the variable it was read from, so a disagreement can name it:
    ``{size: (value, variable name, shape)}``.
    """
    def shape(name):
        if name not in variables:
            raise UserInputError(f"{variables.prefix}: variable {name} is missing, so the model "
                                 f"sizes cannot be read off the checkpoint{missing_hint}")
        return variables.shapes[name]

    words = f"{emb_scope}/embeddings/word_embeddings"
    query = f"{scope}/encoder/layer_0/attention/self/query/kernel"
    ffn = f"{scope}/encoder/layer_0/intermediate/dense/kernel"
    positions = f"{emb_scope}/embeddings/position_embeddings"
    types = f"{emb_scope}/embeddings/token_type_embeddings"
    layers = variables.layer_count(scope)
    last = f"{scope}/encoder/layer_{max(layers - 1, 0)}/attention/self/query/kernel"
    return {
        "vocab_size": (shape(words)[0], words, shape(words)),
        "embedding_size": (shape(words)[1], words, shape(words)),
        "hidden_size": (shape(query)[1], query, shape(query)),
        "num_hidden_layers": (layers, last, shape(last)),
        "intermediate_size": (shape(ffn)[1], ffn, shape(ffn)),
        "max_position_embeddings": (shape(positions)[0], positions, shape(positions)),
        "type_vocab_size": (shape(types)[0], types, shape(types)),
    }
