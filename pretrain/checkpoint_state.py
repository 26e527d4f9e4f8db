"""Which TF checkpoint of a model directory is whole, found without TensorFlow.

A TF-v1 checkpoint is ``<prefix>.index``, a table (LevelDB's SSTable layout) with an entry per
variable giving its shard, offset, size and crc32c, plus the shards ``<prefix>.data-NNNNN-of-
MMMMM``; the text file ``checkpoint`` names the newest prefix and the ones kept. A run killed
while its directory was being copied, or a full disk, leaves damage TensorFlow reports only as
a traceback, and only once it reads the part that is gone: a newest ``.data`` cut short
(``IndexError: Read less bytes than requested``, at the first variable read past the cut), a
deleted ``.index`` (``ValueError: The passed save_path is not a valid checkpoint``), an empty
or binary ``checkpoint`` (``ValueError: Invalid checkpoint state``, ``UnicodeDecodeError``).

``newest_intact(model_dir)`` reads the state file and every checkpoint's index, checks that
each shard is there and long enough for what the index lists (a stat per shard; ``full=True``
also checks every tensor's crc32c, reading all the data), and returns the newest checkpoint
that passes with a one-line note per damaged file; with none intact it raises a
UserInputError naming the newest damaged file and the fix. Conversion converts what it
returns; pretraining (either backend) calls it before it reads a step or restores, and
``write_state`` points the state file at the checkpoint it falls back to.
"""
import dataclasses
import glob
import os
import re
import struct

from util.errors import UserInputError

STATE_NAME = "checkpoint"
TABLE_MAGIC = 0xDB4775248B80FB57  # tensorflow/core/lib/io/format.h
FOOTER_BYTES = 48  # two block handles padded to 40 bytes, then the magic
BLOCK_TRAILER_BYTES = 5  # compression type, masked crc32c
_STATE_LINE = re.compile(r'^(model_checkpoint_path|all_model_checkpoint_paths):\s*"(.*)"\s*$')
_STATE_OTHER = re.compile(r"^(all_model_checkpoint_timestamps|last_preserved_timestamp):\s*[-+0-9.eE]+\s*$")
NUMERIC_DTYPES = {1, 2, 3, 4, 5, 6, 9, 10, 14, 17, 19, 22, 23}  # float32 ... bfloat16, half, uint32/64
COPY_AGAIN = "copy the checkpoint files again"


class Damaged(Exception):
    """One damaged file: ``path`` and why."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@dataclasses.dataclass
class Choice:
    """The checkpoint to use, and what was passed over on the way to it."""

    prefix: str
    step: int
    damaged: list  # [Damaged], newest first
    notes: list  # one line each, for the log


def _crc32c(data):
    import google_crc32c

    return google_crc32c.value(bytes(data))


def _unmask(masked):
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot << 15) | (rot >> 17)) & 0xFFFFFFFF


def _varint(data, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(data):
    """{field number: value} of a protobuf message's varint, fixed32 and length-delimited fields."""
    fields, pos = {}, 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = _varint(data, pos)
        elif wire == 5:
            fields[number] = struct.unpack_from("<I", data, pos)[0]
            pos += 4
        elif wire == 1:
            fields[number] = struct.unpack_from("<Q", data, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            fields.setdefault(number, data[pos:pos + length])
            pos += length
        else:
            raise ValueError(f"wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
    return fields


def _block(data, offset, size):
    """The (key, value) entries of one table block, its trailer's checksum verified."""
    end = offset + size
    if end + BLOCK_TRAILER_BYTES > len(data):
        raise ValueError("a block runs past the end of the file")
    kind, masked = struct.unpack_from("<BI", data, end)
    if kind != 0:
        raise ValueError(f"block compression {kind}, not the bundle writer's none")
    if _unmask(masked) != _crc32c(data[offset:end + 1]):
        raise ValueError("a block fails its checksum")
    block = data[offset:end]
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * restarts
    entries, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + length]))
        pos += length
    return entries


def read_index(prefix):
    """{variable name: BundleEntryProto fields} and the shard count of ``<prefix>.index``."""
    path = prefix + ".index"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise Damaged(path, "missing") from None
    except OSError as e:
        raise Damaged(path, f"cannot read ({e.strerror})") from None
    try:
        if len(data) < FOOTER_BYTES or struct.unpack_from("<Q", data, len(data) - 8)[0] != TABLE_MAGIC:
            raise ValueError("not a checkpoint index (no table footer: cut short?)")
        footer = data[len(data) - FOOTER_BYTES:]
        _, pos = _varint(footer, 0)  # the metaindex block: unused by checkpoints
        _, pos = _varint(footer, pos)
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        entries = {}
        for _, handle in _block(data, index_offset, index_size):
            offset, pos = _varint(handle, 0)
            size, _ = _varint(handle, pos)
            for key, value in _block(data, offset, size):
                entries[key.decode("utf-8")] = _proto_fields(value)
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        raise Damaged(path, f"not a readable checkpoint index ({e})") from None
    header = entries.pop("", None)
    if header is None:
        raise Damaged(path, "not a readable checkpoint index (no bundle header)")
    return entries, header.get(1, 1)


def check_checkpoint(prefix, full=False):
    """Raise Damaged for the first file of checkpoint ``prefix`` that is missing or cut short
    (``full``: or whose tensors fail their crc32c)."""
    entries, num_shards = read_index(prefix)
    ends = {}
    for name, entry in entries.items():
        shard = entry.get(3, 0)
        ends.setdefault(shard, []).append((entry.get(4, 0), entry.get(5, 0), entry.get(6), entry.get(1), name))
    for shard in range(num_shards):
        path = f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            raise Damaged(path, "missing") from None
        needed = max((offset + length for offset, length, *_ in ends.get(shard, [])), default=0)
        if size < needed:
            raise Damaged(path, f"cut short: {size:,} bytes, the index lists {needed:,}")
        if full:
            _check_crcs(path, ends.get(shard, []))


def _check_crcs(path, tensors):
    with open(path, "rb") as f:
        for offset, length, masked, dtype, name in sorted(tensors):
            if masked is None or dtype not in NUMERIC_DTYPES or not length:
                continue
            f.seek(offset)
            if _unmask(masked) != _crc32c(f.read(length)):
                raise Damaged(path, f"variable {name} fails its checksum (bytes changed on disk)")


def read_state(model_dir):
    """The prefixes the ``checkpoint`` state file lists, oldest first, the newest last; [] when
    there is no state file. Raises Damaged for one that is not the saver's text."""
    path = os.path.join(model_dir, STATE_NAME)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged(path, "binary, not the checkpoint state text TensorFlow writes") from None
    listed, newest = [], None
    for n, line in enumerate(text.splitlines(), 1):
        match = _STATE_LINE.match(line)
        if match:
            if match.group(1) == "model_checkpoint_path":
                newest = match.group(2)
            else:
                listed.append(match.group(2))
        elif line.strip() and not _STATE_OTHER.match(line):
            raise Damaged(path, f"line {n} is not checkpoint state text")
    if newest is None:
        raise Damaged(path, "empty" if not text.strip() else "names no model_checkpoint_path")
    if newest in listed:
        listed.remove(newest)
    return [p if os.path.isabs(p) else os.path.join(model_dir, p) for p in listed + [newest]]


def _step(prefix):
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def _prefixes_on_disk(model_dir):
    """Every prefix an .index or a .data shard is there for (a deleted .index leaves its shards)."""
    found = set()
    for path in glob.glob(os.path.join(glob.escape(model_dir), "*.index")):
        found.add(path[: -len(".index")])
    for path in glob.glob(os.path.join(glob.escape(model_dir), "*.data-[0-9]*-of-[0-9]*")):
        found.add(re.sub(r"\.data-\d+-of-\d+$", "", path))
    return found


def newest_intact(model_dir, full=False, fix=COPY_AGAIN):
    """The newest checkpoint of ``model_dir`` that reads in full, as a Choice, or None when the
    directory holds no TF checkpoint. One note per damaged file passed over; a UserInputError
    naming the newest damaged file and ``fix`` when nothing intact is left."""
    damaged, notes = [], []
    try:
        listed = read_state(model_dir)
    except Damaged as e:
        damaged.append(e)
        listed = []
    # The state file may name absolute paths of another machine: its names are taken here.
    local = [os.path.join(model_dir, os.path.basename(p)) for p in listed]
    on_disk = _prefixes_on_disk(model_dir) | set(local)
    if local:
        # As TensorFlow: the state file's newest, then older ones; a later one it does not list
        # is a save that failed (pretrain/checkpoint_space.py), never taken.
        newest = local[-1]
        candidates = [newest] + sorted((p for p in on_disk if p != newest and _step(p) <= _step(newest)),
                                       key=_step, reverse=True)
    else:  # no state file, or a damaged one: by step
        candidates = sorted(on_disk, key=_step, reverse=True)
    for prefix in candidates:
        try:
            check_checkpoint(prefix, full)
        except Damaged as e:
            damaged.append(e)
            continue
        for problem in damaged:
            notes.append(f"note: {problem.path} is damaged ({problem.reason}); using {os.path.basename(prefix)}, "
                         "the newest intact checkpoint")
        return Choice(prefix, _step(prefix), damaged, notes)
    if not damaged:
        return None
    if not candidates:  # a damaged state file, and not one checkpoint it could have named
        state = damaged[0]
        raise UserInputError(f"{state.path}: damaged checkpoint state file ({state.reason}), and no TF checkpoint "
                             f"in {model_dir}; remove it")
    # The newest checkpoint's damage is the one to name; a damaged state file alone says less.
    first = next((d for d in damaged if os.path.basename(d.path) != STATE_NAME), damaged[0])
    raise UserInputError(f"{first.path}: damaged checkpoint ({first.reason}), and no intact one in {model_dir}; "
                         f"{fix}")


def check_prefix(prefix, full=False):
    """A checkpoint asked for by its prefix: one line naming its damaged file, no other taken."""
    try:
        check_checkpoint(prefix, full)
    except Damaged as e:
        raise UserInputError(f"{e.path}: damaged checkpoint ({e.reason}); {COPY_AGAIN}, or give the model "
                             "directory to use its newest intact checkpoint") from None


def write_state(model_dir, prefix):
    """Point the ``checkpoint`` state file at ``prefix`` (and the intact ones before it), as the
    saver writes it, so a TF run resumes from it; for pretraining's fall back."""
    from util.files import atomic_write

    kept = [p for p in sorted(_prefixes_on_disk(model_dir), key=_step) if _step(p) <= _step(prefix)]
    intact = []
    for p in kept:
        try:
            check_checkpoint(p)
            intact.append(os.path.basename(p))
        except Damaged:
            pass
    with atomic_write(os.path.join(model_dir, STATE_NAME)) as f:
        f.write(f'model_checkpoint_path: "{os.path.basename(prefix)}"\n')
        f.writelines(f'all_model_checkpoint_paths: "{name}"\n' for name in intact)
