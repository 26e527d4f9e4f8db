"""Data-parallel fine-tuning under ``torchrun``: process group, batch sharding, gathering.

``torchrun --nproc_per_node N run_finetune.py ...`` starts N copies of the script with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set. Each copy trains a replica of the model
wrapped in ``DistributedDataParallel`` (gradients averaged by all-reduce after backward) on
its own share of every global batch. Without those variables (or with ``WORLD_SIZE=1``)
nothing here starts a process group and a run is exactly the single-process run.

Batches: ``train_batch_size`` is per process, as in transformers. Every epoch all ranks
draw the same length-grouped permutation from the same seed with the *global* batch
(``train_batch_size × world_size``) as the group size, cut it into global batches, and rank
r takes the r-th slice of each. So the examples of global batch k are the examples a single
process with batch ``train_batch_size × world_size`` would see at step k, and the averaged
gradient is the same. The last, short global batch is filled up by wrapping around to the
start of the epoch's order, so every rank runs the same number of batches (DDP needs every
rank in every all-reduce); at most ``world_size - 1`` examples are seen twice an epoch.

Evaluation: each rank runs its strided share of the length-sorted examples with the plain
(unwrapped) model, which has no collectives inside, so shares may differ in size by one
and nothing is padded or counted twice. The outputs, tagged with their feature indices,
are gathered to rank 0, which puts them back in feature order and computes the metrics;
rank 0 then broadcasts the metrics so every rank takes the same best-checkpoint decision.
"""
import dataclasses
import datetime
import logging
import math
import os

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

# How long a rank waits for the others in a collective before failing, instead of hanging.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclasses.dataclass(frozen=True)
class Context:
    """Where this process stands in the job; the default is a single process."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str = None

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def from_environment(env=None):
    """The Context torchrun's variables describe (not yet initialised)."""
    env = os.environ if env is None else env
    world_size = int(env.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return Context()
    return Context(world_size, int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0")))


def init(context, use_cuda):
    """Join the process group torchrun set up: NCCL on GPUs, gloo on CPUs. Returns the Context."""
    if not context.distributed:
        return context
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(context.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    logger.info("rank %d of %d (local rank %d), backend %s", context.rank, context.world_size,
                context.local_rank, backend)
    return dataclasses.replace(context, backend=backend)


def current():
    """The Context of an initialised process group, or the single-process Context."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return Context()
    return Context(dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")),
                   dist.get_backend())


def shutdown():
    """Leave the process group (safe to call when none was started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(context, use_cuda):
    if use_cuda:
        return torch.device("cuda", context.local_rank) if context.distributed else torch.device("cuda")
    return torch.device("cpu")


def wrap_model(model, context, device):
    """The model DDP trains (the model itself in a single process)."""
    if not context.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def broadcast_object(obj, context, src=0):
    """``obj`` from rank ``src`` on every rank (picklable objects)."""
    if not context.distributed:
        return obj
    box = [obj if context.rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_to_main(obj, context):
    """The list of every rank's ``obj`` on rank 0 (in rank order), None elsewhere."""
    if not context.distributed:
        return [obj]
    gathered = [None] * context.world_size if context.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def sum_over_ranks(value, context, device):
    """The sum of a number over all ranks, on every rank."""
    if not context.distributed:
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item()


def train_batches(lengths, batch_size, world_size, rank, generator, group_by_length=True):
    """This rank's batches (index lists) for one epoch; see the module docstring.

    ``generator`` must be seeded alike on every rank.
    """
    count = len(lengths)
    global_batch = batch_size * world_size
    if group_by_length:
        from transformers.trainer_pt_utils import get_length_grouped_indices

        order = get_length_grouped_indices(lengths, global_batch, generator=generator)
    else:
        order = torch.randperm(count, generator=generator).tolist()
    batches = []
    for start in range(0, count, global_batch):
        chunk = order[start : start + global_batch]
        per_rank = math.ceil(len(chunk) / world_size)
        chunk = chunk + [order[i % count] for i in range(per_rank * world_size - len(chunk))]
        batches.append(chunk[rank * per_rank : (rank + 1) * per_rank])
    return batches


def eval_share(order, world_size, rank):
    """This rank's part of an evaluation order: every world_size-th index, starting at rank."""
    return order[rank::world_size]
