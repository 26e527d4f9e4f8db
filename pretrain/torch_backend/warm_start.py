"""The warm-start plan (pretrain/warm_start.py, in upstream's TF names) carried out on the torch model.

Variables the plan loads take the source's values; those it starts fresh keep the model's own
initialisation; the rows of a vocab extension's new tokens become the mean of their base
pieces' rows, as the TF backend's scaffold sets them. Optimizer slots and the step start at
zero, as there.
"""
import torch

from pretrain import vocab_extension


def model_variable_shapes(config):
    """TF name -> shape of every model variable the config builds (on the meta device: nothing allocated)."""
    from pretrain.torch_backend.model import ElectraPretrainer, tf_variable_names

    with torch.device("meta"):
        model = ElectraPretrainer(config)
    params = dict(model.named_parameters())
    return {tf: list(params[name].shape[::-1] if transpose else params[name].shape)
            for name, (tf, transpose) in tf_variable_names(model).items()}


def load_into(model, warm):
    """Set ``model``'s weights as the WarmStart ``warm`` says."""
    from pretrain.torch_backend.tf_checkpoint import load_tf_checkpoint_into, tf_checkpoint_arrays

    arrays = tf_checkpoint_arrays(model)  # every variable, as initialised: what the fresh ones keep
    for name in warm.loaded:
        arrays[name] = warm.variables.get(name)
    if warm.extension:
        ids, pieces, _ = warm.extension
        for name in vocab_extension.TOKEN_TABLES:
            if name in warm.loaded:
                arrays[name] = vocab_extension.mean_rows(arrays[name], ids, pieces)
    load_tf_checkpoint_into(model, arrays, source=warm.prefix)
