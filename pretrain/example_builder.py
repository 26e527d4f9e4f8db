"""A document's tokenized sentences -> ELECTRA's ``[CLS] A [SEP] B [SEP]`` segments, as upstream builds them.

Sentences are accumulated up to a target length and split at a sentence boundary into segment A
and segment B. Upstream closes an example at the end of every document, so a corpus of short
documents (one comment or chat turn a line) gives examples that are mostly padding.

``pack`` (``build_pretraining_dataset.py --pack``) is RoBERTa's FULL-SENTENCES: the end of a
document no longer closes the example; the next document's sentences fill it up to the target
length, and a ``[SEP]`` between the two documents marks where one ends (RoBERTa's extra separator
token). Sentences stay whole, as in FULL-SENTENCES: one that does not fit starts the next example,
where upstream cuts the sentence that overflows and drops the rest. Where A ends, or B ends, at a
document boundary the segment's own ``[SEP]`` is that mark.
So in a packed example A and B may come from different documents, and a segment may hold more
than one (``[CLS] d1 [SEP] d2 [SEP] d3 [SEP]``); ELECTRA has no next-sentence objective, so
nothing in training reads B as following A. Only the end of a chunk of the corpus closes an
example then (pretrain/dataset_builder.py).
"""
# Upstream's values: 10% of examples get one long segment (like classification inputs)
# and 5% a random, shorter target length, so the model also sees short inputs.
SINGLE_SEGMENT_PROB = 0.1
SHORT_TARGET_PROB = 0.05


class ExampleBuilder:
    """Accumulates tokenized sentences into (segment A, segment B) pairs."""

    def __init__(self, max_length, rng, pack=False, sep_id=None):
        if pack and sep_id is None:
            raise ValueError("packing needs the [SEP] id that separates documents")
        self._max_length = max_length
        self._rng = rng
        self._pack = pack
        self._sep_id = sep_id
        self._sentences = []
        self._ends_document = []  # per sentence: a document ends after it (packing only)
        self._length = 0
        self._target_length = max_length

    def add_sentence(self, token_ids):
        """Add one sentence; return an example's segments when the target length is reached.

        Upstream adds the sentence that reaches the target and cuts what does not fit. Packing
        keeps sentences whole: one that would not fit beside [CLS] and two [SEP] closes the
        example and starts the next (only a sentence longer than an example is cut).
        """
        if self._pack and self._length and self._length + len(token_ids) > self._target_length - 3:
            segments = self._create_example()
            self._append(token_ids)
            return segments
        self._append(token_ids)
        if self._length >= self._target_length:
            return self._create_example()
        return None

    def _append(self, token_ids):
        self._sentences.append(token_ids)
        self._ends_document.append(False)
        self._length += len(token_ids)

    def end_document(self):
        """The end of a document: upstream flushes what is left of it (documents never share an
        example); packing marks the boundary and keeps filling."""
        if not self._length:
            return None
        if not self._pack:
            return self._create_example()
        self._ends_document[-1] = True
        self._length += 1  # the [SEP] between this document and the next
        if self._length >= self._target_length - 3:
            return self._create_example()
        return None

    def flush(self):
        """The end of the text at hand (a chunk of the corpus): whatever is accumulated is an example."""
        return self._create_example() if self._length else None

    def _create_example(self):
        if self._rng.random() < SINGLE_SEGMENT_PROB:
            first_target = 100000
        else:
            first_target = (self._target_length - 3) // 2  # room for [CLS] and two [SEP]
        first, second = [], []
        first_units, second_units = [], []
        for sentence, ends in zip(self._sentences, self._ends_document):
            # A sentence goes to A while A is empty or it fits; the first sentence that
            # overflows A goes there half the time, so split points vary.
            if (not first or len(first) + len(sentence) < first_target
                    or (not second and len(first) < first_target and self._rng.random() < 0.5)):
                first += sentence
                first_units.append(ends)
            else:
                second += sentence
                second_units.append(ends)
        if self._pack:
            first = self._separated(first_units)
            second = self._separated(second_units, start=len(first_units))
        first = first[:self._max_length - 2]
        second = second[:max(0, self._max_length - len(first) - 3)]

        self._sentences = []
        self._ends_document = []
        self._length = 0
        if self._rng.random() < SHORT_TARGET_PROB:
            self._target_length = self._rng.randint(5, self._max_length)
        else:
            self._target_length = self._max_length
        return first, second

    def _separated(self, ends, start=0):
        """The segment's sentences with a [SEP] after each one that ends a document, but the last
        (the segment's own [SEP] follows it)."""
        tokens = []
        for n, ends_document in enumerate(ends):
            tokens += self._sentences[start + n]
            if ends_document and n < len(ends) - 1:
                tokens.append(self._sep_id)
        return tokens
