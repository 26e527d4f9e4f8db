"""A model directory's tokenizer on the Rust ``tokenizers`` library alone: no transformers import.

An onnxruntime predictor (finetune.inference.Predictor with ``onnx_path``) should start in
well under a second and install without torch or transformers. Its tokenizer is the Rust
backend transformers itself would drive, built here the way util.hf_tokenizer's classes build
it, and called through the part of transformers' ``tokenizer(...)`` interface the tasks use
(pairs, truncation, words already split, offsets, strided overflow, ``word_ids``,
``sequence_ids``), so the features are the same ids (tests/util/test_rust_tokenizer.py):

- ``wordpiece``: transformers' BERT conversion (BertNormalizer with Chinese-character
  spacing and the recorded casing, accents kept; BertPreTokenizer; WordPiece over vocab.txt,
  a repeated token at its last line, words over 100 characters [UNK]);
- ``mecab_wordpiece``: util.tokenization_mecab_electra's backend with its mecab pre-tokenizer.
Both compose NFC and drop invisible characters first (util/text_normalization.py), and the
five special tokens are matched whole, before normalisation, as transformers adds them.
"""
from util.tokenization import read_tokenizer_config, resolve_vocab_path
from util.vocab_file import SPECIAL_TOKENS, VocabFile

STRATEGIES = {True: "longest_first", "longest_first": "longest_first", "only_first": "only_first",
              "only_second": "only_second"}


def _wordpiece_backend(ids, do_lower_case, chinese_chars):
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    from util.text_normalization import nfc_first

    backend = Tokenizer(WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = nfc_first(normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=chinese_chars, strip_accents=False, lowercase=do_lower_case))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


class Encoded(dict):
    """transformers' BatchEncoding as the tasks read it: keys, and word_ids/sequence_ids per row."""

    def __init__(self, data, encodings):
        super().__init__(data)
        self.encodings = encodings

    def word_ids(self, index=0):
        return self.encodings[index].word_ids

    def sequence_ids(self, index=0):
        return self.encodings[index].sequence_ids


class RustTokenizer:
    """``tokenizer(text, text_pair, ...)`` over a Rust backend, returning what transformers' fast
    tokenizers return (without padding or tensors, which prediction does not ask for)."""

    def __init__(self, backend, ids, tokenizer_type, do_lower_case, name_or_path):
        from tokenizers import AddedToken

        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
        self.backend = backend
        self.vocab = ids
        self.tokenizer_type = tokenizer_type
        self.runs_mecab = tokenizer_type == "mecab_wordpiece"  # finetune.text.does_mecab
        self.init_kwargs = {"tokenizer_type": tokenizer_type, "do_lower_case": do_lower_case}
        self.name_or_path = name_or_path
        self.pad_token_id, self.unk_token_id = ids["[PAD]"], ids["[UNK]"]
        self.cls_token_id, self.sep_token_id = ids["[CLS]"], ids["[SEP]"]

    def num_special_tokens_to_add(self, pair=False):
        return 3 if pair else 2

    def convert_ids_to_tokens(self, ids):
        return [self.backend.id_to_token(i) for i in ids]

    def __call__(self, text, text_pair=None, add_special_tokens=True, truncation=False, max_length=None,
                 stride=0, is_split_into_words=False, return_offsets_mapping=False,
                 return_overflowing_tokens=False, **unused):
        batched = isinstance(text, (list, tuple)) and (not is_split_into_words or
                                                       (bool(text) and isinstance(text[0], (list, tuple))))
        texts = list(text) if batched else [text]
        pairs = (list(text_pair) if batched else [text_pair]) if text_pair is not None else None
        if truncation and max_length:
            self.backend.enable_truncation(max_length, stride=stride, strategy=STRATEGIES[truncation])
        else:
            self.backend.no_truncation()
        inputs = list(zip(texts, pairs)) if pairs is not None else texts
        results = self.backend.encode_batch(inputs, is_pretokenized=is_split_into_words,
                                            add_special_tokens=add_special_tokens)
        rows, samples = [], []
        for i, encoding in enumerate(results):
            group = [encoding] + (list(encoding.overflowing) if return_overflowing_tokens else [])
            rows += group
            samples += [i] * len(group)
        data = {"input_ids": [e.ids for e in rows], "token_type_ids": [e.type_ids for e in rows],
                "attention_mask": [e.attention_mask for e in rows]}
        if return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in rows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = samples
        if not batched and not return_overflowing_tokens:
            data = {k: v[0] for k, v in data.items()}
        return Encoded(data, rows)


def load_rust_tokenizer(directory, do_lower_case=None):
    """The RustTokenizer of a model or vocab directory (its tokenizer_config.json decides the kind
    and casing; ``do_lower_case`` overrides the casing, as the fine-tuning config does)."""
    vocab_file, directory = resolve_vocab_path(directory)
    recorded = read_tokenizer_config(directory)
    kind = recorded.get("tokenizer_type", "wordpiece")
    lower = bool(recorded.get("do_lower_case", False) if do_lower_case is None else do_lower_case)
    if kind == "mecab_wordpiece":
        from util.tokenization_mecab_electra import mecab_backend, read_vocab_ids, use_mecab

        ids = read_vocab_ids(vocab_file)
        VocabFile(vocab_file)  # one-line errors for a vocab that is not UTF-8 or lacks special tokens
        backend = use_mecab(mecab_backend(ids, lower), ids)
    else:
        ids = VocabFile(vocab_file).ids
        backend = _wordpiece_backend(ids, lower, bool(recorded.get("tokenize_chinese_chars", True)))
    return RustTokenizer(backend, ids, kind, lower, directory)
