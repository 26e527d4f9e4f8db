"""The PyTorch backend's pretraining batches, read from the same TFRecord shards as the TF backend.

The order follows pretrain/input_pipeline.input_fn_builder:

- this rank's part of the files (``shard_plan``: whole files when there are at least as many
  files as ranks, else every ``world_size``-th record of every file);
- the files repeated forever; when training, each pass over them in a new random order
  (tf.data shuffles the repeated file stream with a buffer of one pass instead, which lets a
  file come round again before the others have; a fresh permutation per pass keeps every
  pass a whole epoch);
- ``cycle_length`` files read at once, one record from each in turn (tf.data's interleave,
  same slot rules), so with ``is_training=False`` the records come in exactly the order of
  the TF pipeline's;
- when training, a shuffle buffer of 1000 records;
- fixed batches (the remainder is never cut short: the stream is endless).

The batches are a function of ``seed``: pass ``e`` over the files takes its order from a numpy
generator seeded with ``(seed, rank, e)``, and the shuffle buffer draws from one seeded with
``(seed, rank)``. Two generators, so the order records enter the buffer does not depend on the
buffer. ``state_dict()`` says where the next batch comes from: the pass and how far into its
file order, for each open file its byte offset and record count, the shuffle buffer as (file,
byte offset) pairs, and the buffer generator's state. ``load_state_dict()`` reopens the files at those offsets and reads
the buffer's records back (1000 small reads), so resuming costs the same at any step and
continues with exactly the batches an uninterrupted run would have read.

``prefetch_batches=N`` builds up to N batches ahead on a thread, so reading overlaps the
training step (torch releases the GIL in its kernels; worth it on a GPU). The batches are
the same; ``state_dict()`` then gives the state after the last batch handed out, not after
the last one built.
"""
import hashlib
import os
import queue
import threading

import numpy as np
import torch

from pretrain import tfrecords
from pretrain.input_pipeline import FEATURES, shard_plan
from util.errors import UserInputError

SHUFFLE_BUFFER = 1000
STATE_VERSION = 1


class _Slot:
    """One file being read in the interleave cycle."""

    def __init__(self, file_index, path, offset=0, record_index=0):
        self.file_index, self.path = file_index, path
        self.offset, self.record_index = offset, record_index
        self._file = tfrecords.open_file(path)
        self._file.seek(offset)

    def next_record(self):
        """(offset, data) of the next record, or None at the end of the file."""
        data, next_offset = tfrecords.read_record(self._file, self.path, self.offset)
        if data is None:
            return None
        offset, self.offset = self.offset, next_offset
        self.record_index += 1
        return offset, data

    def close(self):
        self._file.close()


class PretrainingBatches:
    """Endless batches of ``dict(input_ids, input_mask, segment_ids)``, int64 tensors of shape
    ``[batch_size, max_seq_length]``, for rank ``rank`` of ``world_size``."""

    def __init__(self, files, batch_size, max_seq_length, rank=0, world_size=1, seed=0, is_training=True,
                 cycle_length=2, shuffle_buffer=SHUFFLE_BUFFER, prefetch_batches=0):
        if not files:
            raise UserInputError("no TFRecord files to read")
        if not 0 <= rank < world_size:
            raise UserInputError(f"rank {rank} is not in 0..{world_size - 1}")
        if batch_size < 1:
            raise UserInputError(f"batch_size must be at least 1, got {batch_size}")
        self.all_files = list(files)
        self.files, record_shard = shard_plan(self.all_files, world_size, rank)
        self.record_stride, self.record_start = record_shard or (1, 0)
        self.batch_size, self.max_seq_length = batch_size, max_seq_length
        self.rank, self.world_size, self.seed, self.is_training = rank, world_size, seed, is_training
        self.cycle_length = min(cycle_length, len(self.files))
        self.shuffle_buffer = shuffle_buffer if is_training else 0
        self._identity = {"files_sha256": _names_digest(self.all_files), "num_files": len(self.all_files),
                          "rank": rank, "world_size": world_size, "seed": seed, "is_training": is_training,
                          "cycle_length": self.cycle_length, "shuffle_buffer": self.shuffle_buffer}
        self._rng = np.random.Generator(np.random.PCG64([seed, rank]))
        self._epoch = -1  # passes over the files begun
        self._order, self._next_file = [], 0
        self._slots = [None] * self.cycle_length
        self._cycle_index = 0
        self._buffer = []  # (file_index, offset, data)
        self._records_since_epoch_start = 0
        self.prefetch_batches = prefetch_batches
        self._producer = None  # (thread, stop event) while batches are built ahead
        self._handed_out_state = None  # then: the state after the last batch handed out

    # --- the record stream --------------------------------------------------------------

    def _next_file_index(self):
        if self._next_file == len(self._order):
            if self._epoch >= 0 and self._records_since_epoch_start == 0:
                if self.record_stride == 1:
                    raise UserInputError(f"no records in {', '.join(self.files)}")
                raise UserInputError(f"no records for rank {self.rank} of {self.world_size}: it reads records "
                                     f"{self.record_start}, {self.record_start + self.record_stride}, ... of "
                                     f"{', '.join(self.files)}, and none has that many; use fewer processes")
            self._epoch += 1
            self._records_since_epoch_start = 0
            self._order, self._next_file = self._file_order(self._epoch), 0
        index = self._order[self._next_file]
        self._next_file += 1
        return index

    def _file_order(self, epoch):
        if not self.is_training:
            return list(range(len(self.files)))
        return [int(i) for i in np.random.default_rng([self.seed, self.rank, epoch]).permutation(len(self.files))]

    def _next_interleaved(self):
        """(file_index, offset, data) of the next record, in tf.data interleave's order: one
        record from each slot in turn; an empty slot opens the next file; a slot whose file
        ends is closed and the turn passes to the next slot."""
        while True:
            slot = self._slots[self._cycle_index]
            if slot is None:
                index = self._next_file_index()
                self._slots[self._cycle_index] = _Slot(index, self.files[index])
                continue
            record_index = slot.record_index
            record = slot.next_record()
            if record is None:
                slot.close()
                self._slots[self._cycle_index] = None
                self._cycle_index = (self._cycle_index + 1) % self.cycle_length
                continue
            if record_index % self.record_stride != self.record_start:
                continue  # another rank's record (record-level sharding): same slot, same turn
            self._cycle_index = (self._cycle_index + 1) % self.cycle_length
            self._records_since_epoch_start += 1
            return (slot.file_index,) + record

    def _next_record(self):
        if not self.shuffle_buffer:
            return self._next_interleaved()
        while len(self._buffer) < self.shuffle_buffer:
            self._buffer.append(self._next_interleaved())
        # The stream is endless, so the buffer stays full: take a random slot and refill it.
        i = int(self._rng.integers(len(self._buffer)))
        record, self._buffer[i] = self._buffer[i], self._next_interleaved()
        return record

    def _next_batch(self):
        rows = {name: np.empty((self.batch_size, self.max_seq_length), dtype=np.int64) for name in FEATURES}
        for row in range(self.batch_size):
            file_index, offset, data = self._next_record()
            example = tfrecords.parse_int64_example(data, FEATURES, self.max_seq_length,
                                                    self.files[file_index], offset)
            for name in FEATURES:
                rows[name][row] = example[name]
        return {name: torch.from_numpy(values) for name, values in rows.items()}

    def __iter__(self):
        """Batches from where the last iterator left off (a new iterator takes over from an old one)."""
        self._stop_prefetching()
        if not self.prefetch_batches:
            while True:
                yield self._next_batch()
        yield from self._prefetching()

    def _prefetching(self):
        self._handed_out_state = self._live_state()
        handoff, stop = queue.Queue(self.prefetch_batches), threading.Event()

        def put(item):
            while not stop.is_set():
                try:
                    return handoff.put(item, timeout=0.1)
                except queue.Full:
                    pass

        def produce():
            try:
                while not stop.is_set():
                    put((self._next_batch(), self._live_state()))
            except BaseException as e:  # raised to the consumer where that batch would have come
                put((None, e))

        thread = threading.Thread(target=produce, name="PretrainingBatches", daemon=True)
        producer = self._producer = (thread, stop)
        thread.start()
        try:
            while True:
                batch, state = handoff.get()
                if batch is None:
                    raise state
                self._handed_out_state = state
                yield batch
        finally:
            if self._producer is producer:  # not yet taken over by a newer iterator
                self._stop_prefetching()

    def _stop_prefetching(self, restore=True):
        """Stop building ahead and go back to just after the last batch handed out."""
        if self._producer is None:
            return
        thread, stop = self._producer
        stop.set()
        thread.join()
        self._producer = None
        if restore:
            self._restore(self._handed_out_state)

    # --- resume -------------------------------------------------------------------------

    def state_dict(self):
        """Where the next batch comes from; JSON-serialisable."""
        return self._handed_out_state if self._producer is not None else self._live_state()

    def _live_state(self):
        return dict(self._identity, version=STATE_VERSION, epoch=self._epoch,
                    next_file=self._next_file, cycle_index=self._cycle_index,
                    records_since_epoch_start=self._records_since_epoch_start,
                    slots=[None if s is None else [s.file_index, s.offset, s.record_index] for s in self._slots],
                    buffer=[[index, offset] for index, offset, _ in self._buffer],
                    rng=self._rng.bit_generator.state)

    def load_state_dict(self, state):
        if state.get("version") != STATE_VERSION:
            raise UserInputError(f"data position of version {state.get('version')!r}, expected {STATE_VERSION}")
        for key, value in self._identity.items():
            if state.get(key) != value:
                raise UserInputError(f"the saved data position has {key} {state.get(key)!r} but this run has "
                                     f"{value!r}; resume with the same dataset, seed and number of processes")
        self._stop_prefetching(restore=False)
        self._restore(state)

    def _restore(self, state):
        self._close_files()
        self._epoch, self._next_file = state["epoch"], state["next_file"]
        self._order = self._file_order(self._epoch) if self._epoch >= 0 else []
        self._cycle_index = state["cycle_index"]
        self._records_since_epoch_start = state["records_since_epoch_start"]
        self._slots = [None if s is None else _Slot(s[0], self.files[s[0]], s[1], s[2]) for s in state["slots"]]
        self._buffer = [(index, offset, tfrecords.read_record_at(self.files[index], offset))
                        for index, offset in state["buffer"]]
        self._rng.bit_generator.state = state["rng"]

    def close(self):
        self._stop_prefetching(restore=False)
        self._close_files()

    def _close_files(self):
        for slot in self._slots:
            if slot is not None:
                slot.close()
        self._slots = [None] * self.cycle_length


def _names_digest(files):
    names = "\n".join(os.path.basename(f) for f in files)
    return hashlib.sha256(names.encode("utf-8")).hexdigest()
