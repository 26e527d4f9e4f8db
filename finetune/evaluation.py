"""One evaluation pass: the model over a split's features, outputs back in feature order.

Batches are length-sorted (finetune/data.py) and padded per batch, so the outputs are put
back in feature order before the task turns them into predictions and metrics. Under
torchrun each rank evaluates a strided share; rank 0 gathers, scores and broadcasts the
metrics so every rank takes the same selection decision (finetune/distributed.py).
"""
import contextlib

import numpy as np
import torch

from finetune import data, distributed

SEQUENCE_KINDS = ("token_classification", "span_extraction", "dependency_parsing")


def autocast(config, device):
    if config.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if config.fp16:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def format_metrics(metrics):
    return " ".join(f"{k}={v:.2f}" for k, v in metrics.items() if isinstance(v, (int, float)))


def evaluate(model, task, split, config, pad_token_id, device, context, model_inputs):
    """(metrics, predictions, mean loss) of ``model`` on one split; predictions on rank 0 only."""
    model.eval()
    loader, batches = data.eval_loader(split.features, config.eval_batch_size, pad_token_id,
                                       config.num_workers, context.world_size, context.rank)
    chunks, loss_sum, has_loss = {}, 0.0, False
    with torch.no_grad(), autocast(config, device):
        for batch, indices in zip(loader, batches):
            result = model(**{k: v.to(device) for k, v in batch.items() if k in model_inputs})
            if getattr(result, "loss", None) is not None:
                loss_sum += float(result.loss) * len(indices)
                has_loss = True
            for key, value in result.items():
                if key != "loss" and torch.is_tensor(value):
                    chunks.setdefault(key, []).append((indices, value.float().cpu().numpy()))
    if context.distributed:
        chunks, loss_sum, has_loss = _gather_outputs((chunks, loss_sum, has_loss), len(split.features), context)
    metrics = predictions = loss = None
    if context.is_main:
        outputs = {k: _assemble(v, len(split.features), task.kind in SEQUENCE_KINDS) for k, v in chunks.items()}
        predictions = task.postprocess(outputs, split.features, split.examples)
        metrics = task.compute_metrics(predictions, split.examples)
        # The metric that selects the checkpoint first, in the log and in results.json (KLUE-STS's
        # correlations come Spearman first, but Pearson selects).
        metrics = {task.primary_metric: metrics[task.primary_metric], **metrics}
        loss = loss_sum / len(split.features) if has_loss else None
    metrics, loss = distributed.broadcast_object((metrics, loss), context)
    return metrics, predictions, loss


def _gather_outputs(local, count, context):
    """Every rank's (chunks, loss_sum, has_loss) merged on rank 0; (None, 0.0, False) elsewhere.

    The chunks keep their feature indices, so _assemble puts them in feature order; the
    shares are disjoint, and this checks that together they cover each feature exactly once.
    """
    gathered = distributed.gather_to_main(local, context)
    if not context.is_main:
        return None, 0.0, False
    chunks, loss_sum, has_loss = {}, 0.0, False
    for rank_chunks, rank_loss, rank_has_loss in gathered:
        for key, value in rank_chunks.items():
            chunks.setdefault(key, []).extend(value)
        loss_sum += rank_loss
        has_loss = has_loss or rank_has_loss
    covered = sorted(i for indices, _ in next(iter(chunks.values()), []) for i in indices)
    if covered != list(range(count)):
        raise RuntimeError(f"gathered evaluation covers {len(covered)} feature slots for {count} features")
    return chunks, loss_sum, has_loss


def _assemble(chunks, count, has_sequence_axis):
    """Batch outputs back in feature order; sequence outputs zero-padded to a common length."""
    first = chunks[0][1]
    if has_sequence_axis and first.ndim >= 2:
        width = max(a.shape[1] for _, a in chunks)
        out = np.zeros((count, width) + first.shape[2:], dtype=np.float32)
        for indices, array in chunks:
            out[indices, : array.shape[1]] = array
    else:
        out = np.zeros((count,) + first.shape[1:], dtype=np.float32)
        for indices, array in chunks:
            out[indices] = array
    return out
