"""experiments/parity_step.py's "torch" side: the PyTorch backend on the same fixed batches, TF-free.

It starts from ``<work>/init/variables.npz`` (the initial variables a TF side restored and wrote
out, under upstream's names) or, when no TF side ran first, writes its own there. The masked
positions, the [MASK]ed input and the generator's samples come from ``<work>/batches.npz``;
dropout is off by the hparams. It writes ``<work>/step_<label>.npz`` with the same names as a TF
side: the first batch's three losses and their gradients per TF variable, then after each step
the losses, every variable, its Adam slots and ``global_step``.
"""
import os

import numpy as np

GROUPS = ("mlm_loss", "disc_loss", "total_loss")


def build(vocab_file, hparams):
    from configure_pretraining import PretrainingConfig
    from pretrain.torch_backend.model import ElectraPretrainer
    from util.tokenization import KoTokenizer

    config = PretrainingConfig("step", os.path.dirname(vocab_file), vocab_file=vocab_file, **hparams)
    config.validate()
    config.attach_vocab(KoTokenizer.from_vocab(vocab_file, "wordpiece", False))
    return config, ElectraPretrainer(config)


def run_torch_side(vocab_file, hparams, work, label, steps, lr="schedule", other=None, seed=0):
    """``lr``: ``schedule`` (our TF graph's), ``ahead`` (one step ahead) or ``as_run`` (the rates in ``other``,
    the TF side's npz, recorded from the tensor its update read)."""
    import torch

    from pretrain.torch_backend import masking
    from pretrain.torch_backend.model import tf_variable_names
    from pretrain.torch_backend.optim import build_optimizer, build_scheduler, clip_by_global_norm
    from pretrain.torch_backend.tf_checkpoint import load_tf_checkpoint_into, tf_checkpoint_arrays

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    config, model = build(vocab_file, hparams)
    model.train()  # dropout probabilities are 0 in the parity hparams: train mode changes nothing else
    init = os.path.join(work, "init", "variables.npz")
    if os.path.exists(init):
        with np.load(init) as variables:
            load_tf_checkpoint_into(model, variables, source=init)
    else:
        os.makedirs(os.path.dirname(init), exist_ok=True)
        np.savez(init, **tf_checkpoint_arrays(model))

    data = np.load(os.path.join(work, "batches.npz"))
    batch = lambda s: {k: torch.from_numpy(data[k][s]) for k in data.files}  # noqa: E731
    names = tf_variable_names(model)
    params = dict(model.named_parameters())
    out = {}

    first = batch(0)
    own = masking.mask(first["input_ids"].long(), first["input_mask"], config.mask_prob,
                       config.max_predictions_per_seq, config.mask_id, config.special_ids,
                       torch.Generator().manual_seed(seed), config.mask_with_replacement)
    out["own_mask_counts"] = own.weights.sum(-1).numpy()

    def losses(b):
        result = model(b["input_ids"], b["input_mask"], b["segment_ids"], fixed=b)
        mlm, total = result["mlm_loss"], result["total_loss"]
        # As the TF sides compute it, so the same variables have a gradient (the generator's: ~0).
        return mlm, (total - config.gen_weight * mlm) / config.disc_weight, total

    values = losses(first)
    out.update({f"first/{g}": v.detach().numpy() for g, v in zip(GROUPS, values)})
    for group, loss in zip(GROUPS, values):
        if not loss.requires_grad:  # the uniform generator's MLM loss is a constant: no gradient at all
            continue
        grads = torch.autograd.grad(loss, list(params.values()), retain_graph=True, allow_unused=True)
        for (name, _), grad in zip(params.items(), grads):
            if grad is not None:  # a loss that does not reach a variable: left out, as on the TF sides
                tf, transpose = names[name]
                out[f"grad/{group}/{tf}"] = grad.numpy().T if transpose else grad.numpy()

    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, lr_ahead=lr == "ahead")
    used = np.load(other) if lr == "as_run" else None
    for s in range(steps):
        if used is not None:
            for group in optimizer.param_groups:
                group["lr"] = float(used[f"step{s}/lr"])
        out[f"step{s}/lr"] = np.float32(optimizer.param_groups[0]["lr"])
        values = losses(batch(s % len(data["input_ids"])))
        out[f"step{s}/losses"] = np.array([float(v.detach()) for v in values], np.float32)
        values[2].backward()
        clip_by_global_norm(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        out.update({f"step{s}/var/{k}": v for k, v in tf_checkpoint_arrays(model, optimizer).items()})
        out[f"step{s}/var/global_step"] = np.int64(s + 1)
    path = os.path.join(work, f"step_{label}.npz")
    with open(path + ".tmp", "wb") as f:
        np.savez(f, **out)
    os.replace(path + ".tmp", path)
