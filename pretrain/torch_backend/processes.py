"""This process's place among torchrun's: rank, world size, device, and the few collectives the loop needs.

Started plainly (``python run_pretraining.py``) it is rank 0 of 1 and no process group is made.
Under ``torchrun`` the group is gloo on CPU and NCCL on CUDA, one GPU per local rank.
"""
import os

import torch
import torch.distributed as dist


class Processes:
    """This process's place among torchrun's: rank, world size and device."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            dist.init_process_group("nccl" if cuda else "gloo")
        self.is_main = self.rank == 0

    def mean(self, values):
        """The ranks' mean of a 1-d float tensor (itself in one process)."""
        if self.world > 1:
            dist.all_reduce(values)
            values /= self.world
        return values

    def gather(self, obj):
        """[every rank's obj] (on every rank)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def first(self, obj):
        """Rank 0's obj, on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def close(self):
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
