"""The optimizer of every fine-tuning run (Dialog-KoELECTRA's), and the seeding before it."""
import random

import numpy as np
import torch


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model, config):
    """AdamW; biases and LayerNorm weights get no weight decay."""
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names

    decayed = {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS)
               if "bias" not in n and "LayerNorm" not in n and "layer_norm" not in n}
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if n in decayed], "weight_decay": config.weight_decay},
        {"params": [p for n, p in params if n not in decayed], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate, eps=config.adam_epsilon)
