"""Export a transformers Electra model (pretraining discriminator or fine-tuned head) to ONNX.

Uses the TorchScript exporter (``dynamo=False``): the dynamo exporter needs onnxscript and
onnx >= 1.19, which do not import beside TensorFlow 2.15. Batch and sequence axes are
dynamic; the graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64)
and returns ``logits`` — or ``start_logits`` and ``end_logits`` for a question-answering head.
A KLUE-DP parser (finetune/dp_model.py) also takes ``word_starts`` and ``word_ends`` (each
word's first and last sub-token, entry 0 the root) and returns ``heads``, ``relations`` and
their probabilities per word: its word pooling is a gather, so the whole parser exports.

A fine-tuned directory (``best_model/`` or ``checkpoint-N/``) exports from the command line,
with the same PyTorch-vs-onnxruntime parity check ``pytorch_convert.py`` prints:

    python -m convert.onnx_export --model_dir ckpt/finetune/nsmc_small_v1/best_model [--onnx_path FILE]
"""
import argparse
import os
import tempfile

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17  # LayerNormalization is a single op from opset 17
QA_OUTPUTS = ("start_logits", "end_logits")
PARSER_INPUTS = ("word_starts", "word_ends")
PARSER_OUTPUTS = ("heads", "relations", "head_probabilities", "relation_probabilities")


def is_parser(model):
    return type(model).__name__.endswith("ForDependencyParsing")


def input_names(model):
    return list(INPUT_NAMES) + (list(PARSER_INPUTS) if is_parser(model) else [])


def output_names(model):
    """The graph's outputs: both span logits for question answering, the parse for a parser, else ``logits``."""
    if is_parser(model):
        return list(PARSER_OUTPUTS)
    return list(QA_OUTPUTS) if type(model).__name__.endswith("ForQuestionAnswering") else ["logits"]


def _outputs_only(model, names):
    """Wrap a transformers model so the traced graph returns exactly ``names``."""
    import torch

    inputs = input_names(model)

    class OutputsOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            out = self.model(**dict(zip(inputs, args)), return_dict=True)
            return tuple(out[name] for name in names) if len(names) > 1 else out[names[0]]

    return OutputsOnly()


def parser_word_positions(attention_mask):
    """(word_starts, word_ends) int64 [B, 1 + words] for test inputs: the root at [CLS], then
    words of two sub-tokens (one for an odd last) between [CLS] and [SEP], padded with -100."""
    import numpy as np

    lengths = np.asarray(attention_mask).sum(axis=1)
    rows = [list(range(1, max(int(n) - 1, 2), 2)) for n in lengths]
    width = 1 + max(len(r) for r in rows)
    starts = np.full((len(rows), width), -100, dtype=np.int64)
    ends = np.full((len(rows), width), -100, dtype=np.int64)
    for i, (row, n) in enumerate(zip(rows, lengths)):
        last = max(int(n) - 2, 1)
        starts[i, :1 + len(row)] = [0] + row
        ends[i, :1 + len(row)] = [0] + [min(s + 1, last) for s in row]
    return starts, ends


def _per_token(model):
    """Whether logits have a sequence axis (pretraining, MLM, token classification, QA)."""
    name = type(model).__name__
    return not (name.endswith("ForSequenceClassification") or name.endswith("ForMultipleChoice"))


def export_onnx(model, path, opset=OPSET, per_token=None):
    """Write ``model`` as ONNX to ``path`` (atomically) and return the path.

    ``model`` is a transformers model taking input_ids / attention_mask / token_type_ids:
    ElectraForPreTraining, ElectraForMaskedLM, ElectraForSequenceClassification (also
    regression), ElectraForTokenClassification, or ElectraForQuestionAnswering (outputs
    ``start_logits`` and ``end_logits``). ``per_token`` says whether logits have a sequence
    axis; by default it is decided from the model class (False only for
    *ForSequenceClassification / *ForMultipleChoice).
    """
    import torch

    path = os.fspath(path)
    if per_token is None:
        per_token = _per_token(model)
    names, inputs = output_names(model), input_names(model)
    was_training = model.training
    model.eval()
    # Dummy inputs with padding, so the mask path is traced with real values.
    batch, seq_length = 2, 7
    input_ids = torch.randint(5, model.config.vocab_size, (batch, seq_length), dtype=torch.long)
    attention_mask = torch.ones(batch, seq_length, dtype=torch.long)
    attention_mask[1, 4:] = 0
    token_type_ids = torch.zeros(batch, seq_length, dtype=torch.long)
    args = [input_ids, attention_mask, token_type_ids]
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    for name in names:
        axes[name] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
    if is_parser(model):
        args += [torch.from_numpy(a) for a in parser_word_positions(attention_mask.numpy())]
        axes.update({name: {0: "batch", 1: "words"} for name in PARSER_INPUTS + PARSER_OUTPUTS})
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(_outputs_only(model, names), tuple(args), tmp,
                              input_names=inputs, output_names=names,
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
                              dynamo=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        model.train(was_training)
    return path


def onnx_session(path, threads=None, providers=None):
    """An onnxruntime session with full graph optimisation, on the CPU unless ``providers`` say otherwise."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(os.fspath(path), options, providers=providers or ["CPUExecutionProvider"])


def run_onnx_outputs(session, input_ids, attention_mask, token_type_ids, **extra):
    """Every output of a session, by name, for int arrays [B, T] (only the inputs the graph
    declares are fed: a BERT-style graph may have dropped token_type_ids); ``extra`` are
    further inputs by name (a parser's ``word_starts``/``word_ends``)."""
    import numpy as np

    feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids, **extra}
    wanted = {i.name for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {k: np.asarray(v, dtype=np.int64) for k, v in feeds.items() if k in wanted})
    return dict(zip(names, values))


def run_onnx(session, input_ids, attention_mask, token_type_ids):
    """Logits from a session for int arrays [B, T] (a QA graph's start logits come first)."""
    outputs = run_onnx_outputs(session, input_ids, attention_mask, token_type_ids)
    return outputs.get("logits", next(iter(outputs.values())))


# -- fine-tuned directories -------------------------------------------------------------------

def load_finetuned(model_dir):
    """The head a fine-tuned directory was saved with (from config.json's ``architectures``)."""
    import transformers

    from util.errors import UserInputError

    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise UserInputError(f"{model_dir}: no config.json; pass a fine-tuned model directory "
                             "(ckpt_dir/<task>/best_model)")
    from finetune.models import model_load_errors

    with model_load_errors(model_dir):
        config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    architecture = (config.architectures or [""])[0]
    heads = ("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering")
    if architecture == "ElectraForDependencyParsing":  # this project's KLUE-DP head, not a transformers class
        from finetune.dp_model import ElectraForDependencyParsing as model_class
    elif architecture.endswith(heads):
        model_class = getattr(transformers, architecture)
    else:
        raise UserInputError(f"{model_dir}: config.json says {architecture or 'no architecture'}, not a "
                             "fine-tuned head (sequence classification/regression, token classification, "
                             "question answering or dependency parsing)")
    with model_load_errors(model_dir):
        return model_class.from_pretrained(model_dir, local_files_only=True).eval()


def parity_check(model, onnx_path, seed=None):
    """PyTorch vs onnxruntime on random padded inputs, one ParityResult per output; and the seed."""
    import torch

    from convert.parity import ParityResult, random_inputs, relative_error

    config = model.config
    *arrays, seed = random_inputs(config.vocab_size, config.max_position_embeddings,
                                  getattr(config, "type_vocab_size", 2), seed=seed)
    extra = dict(zip(PARSER_INPUTS, parser_word_positions(arrays[1]))) if is_parser(model) else {}
    with torch.no_grad():
        feeds = {name: torch.from_numpy(a) for name, a in list(zip(INPUT_NAMES, arrays)) + list(extra.items())}
        reference = model(**feeds)
    ort = run_onnx_outputs(onnx_session(onnx_path), *arrays, **extra)
    results = []
    for name in output_names(model):
        expected = reference[name].numpy()
        results.append(ParityResult(f"{name}: onnxruntime vs PyTorch", relative_error(ort[name], expected),
                                    expected.shape))
    return results, seed


def export_finetuned(model_dir, onnx_path=None, seed=None, overwrite=False, log=print):
    """Export a fine-tuned directory, check parity, and put the file in place only if it passed."""
    from convert import parity
    from convert.onnx_binding import binding_metadata, write_metadata
    from util.errors import UserInputError
    from util.files import discard, put_in_place, temp_dir_beside

    onnx_path = onnx_path or os.path.join(model_dir, "model.onnx")
    if os.path.exists(onnx_path) and not overwrite:
        raise UserInputError(f"{onnx_path}: ONNX file already exists; pass --overwrite to replace it")
    model = load_finetuned(model_dir)
    names = output_names(model)
    tmp_dir = temp_dir_beside(onnx_path)
    try:
        tmp = export_onnx(model, os.path.join(tmp_dir, "model.onnx"))
        # The file names the directory it came from (convert/onnx_binding.py); loading checks it.
        write_metadata(tmp, binding_metadata(model_dir))
        log(f"onnx: exported {type(model).__name__} -> {', '.join(names)} (dynamic batch and sequence axes)")
        results, used_seed = parity_check(model, tmp, seed)
        log(parity.report(results, used_seed))
        failed = [r.name for r in results if not r.ok]
        if failed:
            raise UserInputError(f"{model_dir}: parity check failed for {', '.join(failed)}; nothing written")
        put_in_place(tmp, onnx_path)
        log(f"wrote {onnx_path}")
    finally:
        discard(tmp_dir)
    return onnx_path, results


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export a fine-tuned model directory to ONNX, checking parity.")
    parser.add_argument("--model_dir", required=True, help="a fine-tuned directory (best_model/ or checkpoint-N/)")
    parser.add_argument("--onnx_path", default=None, help="output file (default: <model_dir>/model.onnx)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the parity inputs (default: fresh)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing ONNX file")
    args = parser.parse_args(argv)
    export_finetuned(args.model_dir, args.onnx_path, args.seed, args.overwrite)


if __name__ == "__main__":
    os.environ.setdefault("USE_TF", "0")
    from util.errors import run_cli

    run_cli(main)
