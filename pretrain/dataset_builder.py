"""Turns a directory of cleaned text and a vocab into ELECTRA pretraining TFRecords.

Examples are built as upstream ELECTRA's ``build_pretraining_dataset.py`` builds them: the
sentences (lines) of a document are accumulated up to a target length, split at a
sentence boundary into segments A and B, and written as ``[CLS] A [SEP] B [SEP]``.

The corpus is cut into chunks: byte ranges of at most ``chunk_bytes`` (plus the rest of a
document, when one ends nearby), so one huge file parallelises like many small ones and
no process holds more than a chunk. Each chunk draws its randomness from
``(seed, file, offset)`` and its examples are written in chunk order, so the output
depends on the inputs, the seed and ``chunk_bytes`` only: the same bytes for any
``num_processes``.
"""
import array
import collections
import contextlib
import dataclasses
import itertools
import os
import random

from util import dir_lock, disk_space, signals
from util.errors import UserInputError
from util.files import list_files, write_json
from util.tokenization import KoTokenizer

from pretrain import data_quality, dataset_writer, raw_corpus
from pretrain.example_builder import ExampleBuilder  # noqa: F401 (built here; tests import it from here)

MIN_SEQ_LENGTH = 8
MAX_SEQ_LENGTH = 4096
# How far past a chunk's nominal end to look for a blank line (a document boundary)
# before settling for a line boundary inside a document.
BOUNDARY_SCAN_BYTES = 1 << 20
# Sentences tokenized per call into the Rust tokenizer.
TOKENIZE_BATCH = 8192
# Distinct words remembered per process (~50 MB) before the cache keeps only the current batch's.
WORD_CACHE_SIZE = 200_000


@dataclasses.dataclass
class DatasetOptions:
    corpus_dir: str
    vocab_file: str
    output_dir: str
    max_seq_length: int = 128
    num_processes: int = 1
    blanks_separate_docs: bool = True
    do_lower_case: bool = None  # None: what tokenizer_config.json beside the vocab says
    tokenizer_type: str = None  # None: likewise
    force_tokenizer_type: bool = False  # tokenizer_type even where the vocab records another
    num_out_files: int = 100
    seed: int = 12345
    chunk_bytes: int = 4 << 20
    progress: bool = True
    record_io: str = "protobuf"  # or "tensorflow": the same bytes (pretrain/dataset_writer.py)
    pack: bool = False  # documents share examples, RoBERTa's FULL-SENTENCES (pretrain/example_builder.py)

    def validate(self):
        if not MIN_SEQ_LENGTH <= self.max_seq_length <= MAX_SEQ_LENGTH:
            raise UserInputError(f"--max_seq_length {self.max_seq_length}: must be between "
                                 f"{MIN_SEQ_LENGTH} and {MAX_SEQ_LENGTH}")
        if self.num_processes < 1:
            raise UserInputError(f"--num_processes {self.num_processes}: must be at least 1")
        if self.record_io not in dataset_writer.RECORD_IO:
            raise UserInputError(f"record_io {self.record_io!r}: must be one of {', '.join(dataset_writer.RECORD_IO)}")
        if self.num_out_files < 1:
            raise UserInputError(f"--num_out_files {self.num_out_files}: must be at least 1")
        import resource

        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64  # every shard is open at once
        if open_files > 0 and self.num_out_files > open_files:
            raise UserInputError(f"--num_out_files {self.num_out_files}: more than the {open_files} files "
                                 "a process may open here (raise `ulimit -n`)")
        if self.chunk_bytes < 1:
            raise UserInputError(f"chunk_bytes {self.chunk_bytes}: must be at least 1")
        corpus = os.path.realpath(self.corpus_dir)
        output = os.path.realpath(self.output_dir)
        if output == corpus or output.startswith(corpus + os.sep):
            raise UserInputError(f"--output_dir {self.output_dir} is inside --corpus_dir "
                                 f"{self.corpus_dir}: a rerun would read the shards as text")
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise UserInputError(f"--output_dir {self.output_dir} exists and is not a directory")


Chunk = collections.namedtuple("Chunk", "path name start end starts_document")
ChunkResult = collections.namedtuple(
    "ChunkResult", "examples documents sentences tokens unk_tokens filled_positions unk_strings nbytes")
COUNTS = ("documents", "sentences", "tokens", "unk_tokens", "filled_positions")
END_OF_CHUNK = object()  # in a chunk's events: what is accumulated becomes an example, packed or not


def _next_boundary(f, position, size, blanks_separate_docs):
    """The first line start at or after ``position``; after a blank line if one is near.

    Returns (offset, whether a document starts there).
    """
    if position >= size:
        return size, True
    f.seek(position)
    f.readline()
    line_start = f.tell()
    if not blanks_separate_docs:
        return line_start, False
    while f.tell() - line_start < BOUNDARY_SCAN_BYTES:
        line = f.readline()
        if not line:
            return size, True
        if not line.strip():
            return f.tell(), True
    return line_start, False


def plan_chunks(files, corpus_dir, chunk_bytes, blanks_separate_docs):
    """Yield the chunks of every file in order; opening each file here names an unreadable one early."""
    for path in files:
        try:
            f = open(path, "rb")
            size = os.fstat(f.fileno()).st_size
        except OSError as e:
            raise UserInputError(f"{path}: cannot read ({e.strerror})") from None
        name = os.path.relpath(path, corpus_dir)
        with f:
            start, starts_document = 0, True
            while start < size:
                end, next_starts = _next_boundary(f, start + chunk_bytes, size, blanks_separate_docs)
                yield Chunk(path, name, start, end, starts_document)
                start, starts_document = end, next_starts


def _read_lines(chunk):
    with open(chunk.path, "rb") as f:
        f.seek(chunk.start)
        data = f.read(chunk.end - chunk.start)
    if chunk.start == 0 and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        with open(chunk.path, "rb") as f:  # count the lines before the chunk a block at a time
            for offset in range(0, chunk.start, 1 << 20):
                line += f.read(min(1 << 20, chunk.start - offset)).count(b"\n")
        raise UserInputError(f"{chunk.path}:{line}: not UTF-8 ({e.reason})") from None
    return text.split("\n")


class WordCachedEncoder:
    """KoTokenizer.encode_batch, tokenizing each distinct space-separated word only once.

    BERT's normaliser works character by character and its pre-tokenizer splits at every
    space, so WordPiece never looks across a space: a sentence's ids are its words' ids in
    order. Text repeats words, so many are found in the cache; the new ones go to the Rust
    tokenizer in long pre-tokenized inputs (cheaper than many short ones). The cache holds
    each word's ids packed as int32 bytes, so a sentence is one bytes join instead of a
    Python int per token. It pays off on formal text; on comments full of one-off
    spellings it gains little (docs/benchmarks.md).
    tests/pretrain/test_dataset_builder.py checks the ids equal KoTokenizer.encode_batch's.
    """

    def __init__(self, tokenizer, cache_size=WORD_CACHE_SIZE, words_per_input=512):
        self.tokenizer = tokenizer
        self.cache_size = cache_size
        self.words_per_input = words_per_input
        self._cache = {}

    def encode_batch(self, sentences):
        tokenizer = self.tokenizer
        if tokenizer.tokenizer_type != "wordpiece":
            # The published mecab tokenization caches per eojeol itself (util/mecab_wordpiece.py).
            return tokenizer.encode_batch(sentences)
        split = [s.split(" ") for s in sentences]
        cache = self._cache
        batch_words = set(itertools.chain.from_iterable(split))
        missing = batch_words.difference(cache)
        if len(cache) + len(missing) > self.cache_size:
            # Keep only the words this batch uses: the frequent ones survive, the memory stays bounded.
            cache = self._cache = {w: cache[w] for w in batch_words.difference(missing)}
        if missing:
            cache.update(self._encode_words(sorted(missing)))
        lookup, join = cache.__getitem__, b"".join
        return [array.array("i", join(map(lookup, words))).tolist() for words in split]

    def _encode_words(self, words):
        step = self.words_per_input
        groups = [words[i:i + step] for i in range(0, len(words), step)]
        # Pre-tokenized input: each word is normalised and split on its own, as within a
        # sentence, and word_ids says which word each piece came from (in order).
        encodings = self.tokenizer.backend.encode_batch(groups, is_pretokenized=True, add_special_tokens=False)
        for group, encoding in zip(groups, encodings):
            packed = array.array("i", encoding.ids).tobytes()
            pieces_per_word = collections.Counter(encoding.word_ids)
            end = 0
            for index, word in enumerate(group):
                start, end = end, end + 4 * pieces_per_word[index]
                yield word, packed[start:end]


class ChunkProcessor:
    """Tokenizes one chunk in batches and builds its serialized examples (runs in a worker)."""

    def __init__(self, tokenizer, max_seq_length, blanks_separate_docs, seed, record_io="protobuf", pack=False):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.blanks_separate_docs = blanks_separate_docs
        self.seed = seed
        self.pack = pack
        self._encoder = WordCachedEncoder(tokenizer)
        self._serialize = dataset_writer.example_serializer(record_io)

    def __call__(self, chunk):
        builder = ExampleBuilder(self.max_seq_length, random.Random(f"{self.seed}:{chunk.name}:{chunk.start}"),
                                 self.pack, self.tokenizer.sep_id)
        examples = []
        counts = collections.Counter()
        unk_strings = collections.Counter()
        # None marks a document boundary; the first sentence of a document is counted.
        new_document = chunk.starts_document
        events, num_sentences = [], 0
        for line in _read_lines(chunk):
            line = line.strip()
            if line:
                events.append(line)
                num_sentences += 1
                if new_document:
                    counts["documents"] += 1
                    new_document = False
            elif self.blanks_separate_docs:
                if events and events[-1] is not None:
                    events.append(None)
                new_document = True
            if num_sentences >= TOKENIZE_BATCH:
                self._replay(events, builder, examples, counts, unk_strings)
                events, num_sentences = [], 0
        events.append(END_OF_CHUNK)
        self._replay(events, builder, examples, counts, unk_strings)
        return ChunkResult(examples, *(counts[field] for field in COUNTS),
                           data_quality.top_unk_strings(unk_strings, data_quality.UNK_KEPT_PER_CHUNK),
                           chunk.end - chunk.start)

    def _replay(self, events, builder, examples, counts, unk_strings):
        ids = iter(self._encoder.encode_batch([e for e in events if isinstance(e, str)]))
        unk = self.tokenizer.unk_id
        with_unk = []
        for event in events:
            segments = None
            if event is None:
                segments = builder.end_document()
            elif event is END_OF_CHUNK:
                segments = builder.flush()
            else:
                token_ids = next(ids)
                if token_ids:  # a line of control characters tokenizes to nothing
                    counts["sentences"] += 1
                    counts["tokens"] += len(token_ids)
                    unknown = token_ids.count(unk)
                    if unknown:
                        counts["unk_tokens"] += unknown
                        with_unk.append(event)
                    segments = builder.add_sentence(token_ids)
            if segments is not None:
                first, second = segments
                # [CLS] A [SEP], and B [SEP] when there is a B: the positions that are not padding.
                counts["filled_positions"] += len(first) + 2 + (len(second) + 1 if second else 0)
                features = dataset_writer.example_features(
                    first, second, self.max_seq_length, self.tokenizer.cls_id, self.tokenizer.sep_id)
                examples.append(self._serialize(*features))
        # Only the sentences with an [UNK] are looked at again, so a fitting vocab costs nothing here.
        for strings in self.tokenizer.unk_strings(with_unk):
            unk_strings.update(strings)


_worker_processor = None


def _init_worker(processor_args, parent_pid):
    global _worker_processor
    signals.as_worker(parent_pid)  # Ctrl-C is the parent's to handle; end with the parent
    # The processes are the parallelism; Rust threads in each would only contend for the cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _worker_processor = ChunkProcessor(*processor_args)


def _process_in_worker(chunk):
    return _worker_processor(chunk)


def _ordered_results(chunks, processor_args, num_processes):
    """Chunk results in chunk order; at most 2 chunks per process are in flight, so memory stays flat."""
    if num_processes == 1:
        processor = ChunkProcessor(*processor_args)
        for chunk in chunks:
            yield chunk, processor(chunk)
        return
    import concurrent.futures
    import multiprocessing

    # fork: workers inherit the imported modules (protobuf, the tokenizer; TensorFlow when it
    # writes the records) instead of importing them again.
    with concurrent.futures.ProcessPoolExecutor(
            num_processes, mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker, initargs=(processor_args, os.getpid())) as pool:
        pending = collections.deque()
        try:
            for chunk in chunks:
                pending.append((chunk, pool.submit(_process_in_worker, chunk)))
                if len(pending) >= 2 * num_processes:
                    chunk, future = pending.popleft()
                    yield chunk, future.result()
            while pending:
                chunk, future = pending.popleft()
                yield chunk, future.result()
        except BaseException:  # an interrupt, a failed chunk: not waiting for the chunks in flight
            signals.stop_workers(pool)
            raise
        finally:
            for _, future in pending:
                future.cancel()


def build_dataset(options):
    """Write the shards and stats.json for ``options``; return the stats.

    The output dir is locked while this runs (a second build there is a one-line error), and
    a full disk is one line: the shards are still temporaries then, and are removed.
    """
    options.validate()
    files = list_files(options.corpus_dir)
    raw_corpus.refuse_raw_corpus(files, options)
    tokenizer = KoTokenizer.from_vocab(options.vocab_file, options.tokenizer_type, options.do_lower_case,
                                       flag=None if options.force_tokenizer_type else "--tokenizer_type",
                                       override="add --force_tokenizer_type")
    # Open every file now, so an unreadable one fails before anything is written.
    for path in files:
        try:
            open(path, "rb").close()
        except OSError as e:
            raise UserInputError(f"{path}: cannot read ({e.strerror})") from None
    total_bytes = sum(os.path.getsize(path) for path in files)
    with dir_lock.hold(options.output_dir, "--output_dir"), \
            disk_space.reporting_full_disk(options.output_dir, "--output_dir"):
        return _write_dataset(options, files, tokenizer, total_bytes)


def _write_dataset(options, files, tokenizer, total_bytes):
    from tqdm import tqdm

    if options.record_io == "tensorflow":
        import tensorflow as tf  # noqa: F401  (imported before forking, see _ordered_results)

    try:
        dataset_writer.clear_output_dir(options.output_dir)
    except OSError as e:
        raise UserInputError(f"--output_dir {options.output_dir}: cannot write ({e.strerror})") from None
    chunks = plan_chunks(files, options.corpus_dir, options.chunk_bytes, options.blanks_separate_docs)
    processor_args = (tokenizer, options.max_seq_length, options.blanks_separate_docs, options.seed,
                      options.record_io, options.pack)
    totals = collections.Counter()
    unk_strings = collections.Counter()
    with dataset_writer.ShardWriter(options.output_dir, options.num_out_files, options.record_io) as writer, \
            tqdm(total=total_bytes, unit="B", unit_scale=True, desc="building examples",
                 disable=not options.progress) as bar, \
            contextlib.closing(_ordered_results(chunks, processor_args, options.num_processes)) as results:
        for chunk, result in results:
            for example in result.examples:
                writer.write(example)
            for field in COUNTS:
                totals[field] += getattr(result, field)
            unk_strings.update(result.unk_strings)
            if len(unk_strings) > data_quality.UNK_KEPT:
                unk_strings = data_quality.top_unk_strings(unk_strings, data_quality.UNK_KEPT)
            totals["examples"] += len(result.examples)
            bar.update(result.nbytes)
            bar.set_postfix(documents=totals["documents"], examples=totals["examples"], refresh=False)
        if not totals["examples"]:
            raise UserInputError(f"corpus directory has no text: {options.corpus_dir}")
        writer.commit()

    stats = {
        "documents": totals["documents"],
        "sentences": totals["sentences"],
        "tokens": totals["tokens"],
        "examples": totals["examples"],
        "unk_rate": totals["unk_tokens"] / totals["tokens"],
        # [[text, count]], most frequent first: what the vocab lacks (pretrain/data_quality.py).
        "unk_top": [list(pair) for pair in data_quality.top_unk_strings(unk_strings, data_quality.UNK_TOP).items()],
        "filled_positions": totals["filled_positions"],
        "fill_rate": totals["filled_positions"] / (totals["examples"] * options.max_seq_length),
        "vocab_sha256": tokenizer.vocab_sha256,
        "vocab_size": tokenizer.vocab_size,
        "tokenizer_type": tokenizer.tokenizer_type,
        "do_lower_case": tokenizer.do_lower_case,
        "max_seq_length": options.max_seq_length,
        "num_out_files": options.num_out_files,
        "shards": writer.manifest,
        # What the text came from, by name and size under corpus_dir (a model card names them).
        "sources": {os.path.relpath(path, options.corpus_dir): os.path.getsize(path) for path in files},
        # Absolute paths: run_pretraining.py may look for the vocab from another directory.
        # record_io is left out: both ways write the same dataset.
        "args": {**{k: v for k, v in dataclasses.asdict(options).items() if k not in ("progress", "record_io")},
                 **{k: os.path.abspath(getattr(options, k)) for k in ("corpus_dir", "vocab_file", "output_dir")},
                 "tokenizer_type": tokenizer.tokenizer_type, "do_lower_case": tokenizer.do_lower_case},
    }
    write_json(os.path.join(options.output_dir, dataset_writer.STATS_NAME), stats)
    return stats
