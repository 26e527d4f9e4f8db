"""Upstream ELECTRA's optimizer in PyTorch: model/optimization.py without TensorFlow.

``AdamWeightDecay`` is BERT/ELECTRA's: Adam without bias correction, epsilon 1e-6, the decay
added to the update (not to the gradient), and no decay for variables whose TF name holds
``LayerNorm``, ``layer_norm`` or ``bias``. Its state keeps upstream's slot names, ``adam_m``
and ``adam_v``. The learning rate decays polynomially to 0 over ``num_train_steps`` and is
scaled by a linear warmup; step ``s`` (counted from 0) uses the rate at ``s``, as our TF train
op does. Upstream's train op reads it one step ahead (its step increment races the update), which
``lr_ahead`` reproduces. Gradients are clipped to a global norm of 1.0 first, as TF's
``clip_by_global_norm``.

    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    out["total_loss"].backward()
    clip_by_global_norm(model.parameters(), 1.0)
    optimizer.step(); scheduler.step(); optimizer.zero_grad(set_to_none=True)
"""
import re

import torch

EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")  # as model/optimization.py, on TF names


def learning_rate(step, config, lr_ahead=False):
    """The rate for optimizer step ``step``: polynomial decay to 0, times the warmup fraction."""
    step = step + 1 if lr_ahead else step
    done = min(step, config.num_train_steps) / config.num_train_steps
    lr = config.learning_rate * (1.0 - done) ** config.lr_decay_power
    if config.num_warmup_steps > 0:
        lr *= min(1.0, step / config.num_warmup_steps)
    return lr


class AdamWeightDecay(torch.optim.Optimizer):
    """Adam with decoupled weight decay and no bias correction (upstream's AdamWeightDecayOptimizer)."""

    def __init__(self, params, lr, weight_decay_rate=0.0, beta_1=0.9, beta_2=0.999, epsilon=1e-6):
        defaults = dict(lr=lr, weight_decay_rate=weight_decay_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, b1, b2, eps, decay = (group[k] for k in ("lr", "beta_1", "beta_2", "epsilon", "weight_decay_rate"))
            # A parameter the loss does not reach gets no slots and no decay (as TF).
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for param in params:
                state = self.state[param]
                if not state:
                    state["adam_m"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["adam_v"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            grads = [p.grad.float() for p in params]
            m = [self.state[p]["adam_m"] for p in params]
            v = [self.state[p]["adam_v"] for p in params]
            # Per tensor the ops of m.mul_(b1).add_(g, alpha=1 - b1); v.mul_(b2).addcmul_(g, g, value=1 - b2);
            # update = m / (sqrt(v) + eps) + decay * param; param -= lr * update: one call over the list
            # each (torch._foreach_*, one fused kernel launch per op on a GPU).
            torch._foreach_mul_(m, b1)
            torch._foreach_add_(m, grads, alpha=1.0 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1.0 - b2)
            update = torch._foreach_sqrt(v)
            torch._foreach_add_(update, eps)
            update = torch._foreach_div(m, update)
            if decay:
                torch._foreach_add_(update, torch._foreach_mul(params, decay))
            torch._foreach_mul_(update, lr)
            torch._foreach_sub_(params, update)
        return loss


def build_optimizer(model, config):
    """AdamWeightDecay over the model's parameters, decay excluded by their TF names."""
    from pretrain.torch_backend.model import tf_variable_names

    names = tf_variable_names(model)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        excluded = any(re.search(pattern, names[name][0]) for pattern in EXCLUDE_FROM_WEIGHT_DECAY)
        (no_decay if excluded else decay).append(param)
    groups = [{"params": decay, "weight_decay_rate": config.weight_decay_rate},
              {"params": no_decay, "weight_decay_rate": 0.0}]
    return AdamWeightDecay(groups, lr=config.learning_rate)


def build_scheduler(optimizer, config, lr_ahead=False):
    """A LambdaLR whose step ``s`` sets each group's rate to ``learning_rate(s, config)``."""
    peak = config.learning_rate
    for group in optimizer.param_groups:
        group["lr"] = peak
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate(s, config, lr_ahead) / peak)


def clip_by_global_norm(parameters, clip_norm=1.0):
    """Scale every gradient by clip_norm / max(global norm, clip_norm), as tf.clip_by_global_norm.

    Unlike torch.nn.utils.clip_grad_norm_ there is no 1e-6 added to the norm. A table the model
    marked as reached only by lookups (``tf_lookup_sq_norm``, model.Embeddings.count_lookup_rows)
    counts as TF counts its sparse gradient: row by looked-up row; the mark is used up here.
    Returns the norm before clipping (non-finite when a gradient is; every gradient then becomes
    NaN, as in TF).
    """
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return torch.tensor(0.0)
    squares = []
    for p in params:
        counted = getattr(p, "tf_lookup_sq_norm", None)
        squares.append(counted if counted is not None else (p.grad.float() * p.grad.float()).sum())
        p.tf_lookup_sq_norm = None
    norm = torch.sqrt(sum(squares))
    scale = clip_norm * torch.minimum(1.0 / norm, torch.tensor(1.0 / clip_norm, device=norm.device))
    scale = scale + (norm - norm)  # NaN when the norm is not finite, as TF's
    for p in params:
        p.grad.mul_(scale.to(p.grad.dtype))
    return norm
