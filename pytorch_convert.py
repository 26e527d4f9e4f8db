"""Convert a TF ELECTRA checkpoint into transformers directories (and ONNX), proving parity; or back.

    python pytorch_convert.py \
        --tf_ckpt_path model/ckpt/pretrain_ckpt_len_128_small \
        --pt_discriminator_path model/pytorch/dialog-koelectra-small-discriminator \
        --pt_generator_path model/pytorch/dialog-koelectra-small-generator

--tf_ckpt_path may also be a model directory of run_pretraining.py --backend torch (its newest
torch_checkpoints/step-<N>.pt): the same outputs, checked against the torch backend's network,
without TensorFlow.

With --to_tf the same flags are read the other way: the transformers directories are the input
and --tf_ckpt_path the checkpoint written (upstream ELECTRA's variable names).

--to_tf_model_dir / --to_torch_model_dir turn one backend's model directory into one the other
backend resumes at the same step (weights, Adam slots, step; convert/torch_tf.py):

    python pytorch_convert.py --tf_ckpt_path TORCH_MODEL_DIR --to_tf_model_dir TF_MODEL_DIR
    python pytorch_convert.py --tf_ckpt_path TF_MODEL_DIR --to_torch_model_dir TORCH_MODEL_DIR

See docs/conversion.md for every argument.
"""
import argparse
import os

from util.errors import UserInputError, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to_tf", action="store_true",
                        help="reverse direction: transformers directories -> TF checkpoint")
    parser.add_argument("--tf_ckpt_path", required=True,
                        help="model directory (its newest checkpoint, TF or torch backend's, is used), a checkpoint "
                             "prefix or a torch step-<N>.pt; with --to_tf the output: a directory (checkpoint "
                             "DIR/model.ckpt) or a prefix such as DIR/model.ckpt-0")
    parser.add_argument("--pt_discriminator_path",
                        help="output directory for the discriminator (ElectraForPreTraining); the input with "
                             "--to_tf; required unless --to_tf_model_dir/--to_torch_model_dir")
    parser.add_argument("--pt_generator_path", default=None,
                        help="output directory for the generator (ElectraForMaskedLM); optional; the input with "
                             "--to_tf (without one only the discriminator is written)")
    parser.add_argument("--untied_generator_embeddings", action="store_true",
                        help="--to_tf only: keep the generator's own embeddings (generator/embeddings) instead of "
                             "sharing the discriminator's, as upstream's untied_generator_embeddings")
    parser.add_argument("--onnx_path", default=None, help="also export the discriminator to this ONNX file")
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                        help="compare TF, PyTorch and onnxruntime logits on random inputs (default on)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the parity inputs (default: fresh)")
    parser.add_argument("--config_file", default=None,
                        help="pretraining config with bert_config/generator_bert_config "
                             "(default: <model dir>/pretrain_config.json; without one, sizes are "
                             "read from the variable shapes)")
    parser.add_argument("--vocab_dir", default=None,
                        help="vocab directory or vocab.txt (default: the model directory)")
    parser.add_argument("--num_attention_heads", type=int, default=None,
                        help="discriminator heads, only when there is no pretrain_config.json "
                             "(default hidden_size // 64, as upstream)")
    parser.add_argument("--generator_num_attention_heads", type=int, default=None,
                        help="generator heads, only when there is no pretrain_config.json")
    parser.add_argument("--hidden_act", default=None,
                        help="activation, only when there is no pretrain_config.json (default gelu)")
    parser.add_argument("--do_lower_case", action=argparse.BooleanOptionalAction, default=None,
                        help="override the casing recorded in the config / tokenizer_config.json")
    parser.add_argument("--tokenizer_type", choices=("wordpiece", "mecab_wordpiece"), default=None,
                        help="override the tokenizer type recorded in the config / tokenizer_config.json")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output directories/files")
    parser.add_argument("--to_tf_model_dir", default=None,
                        help="write the torch model directory --tf_ckpt_path as a TF model directory that "
                             "run_pretraining.py --backend tf resumes at the same step (the source directory itself: "
                             "the TF checkpoint goes beside the torch one)")
    parser.add_argument("--to_torch_model_dir", default=None,
                        help="write the TF model directory --tf_ckpt_path as a torch model directory that "
                             "run_pretraining.py --backend torch resumes at the same step (likewise)")
    args = parser.parse_args(argv)
    if args.to_tf_model_dir and args.to_torch_model_dir:
        parser.error("--to_tf_model_dir and --to_torch_model_dir: one direction at a time")
    if not (args.to_tf_model_dir or args.to_torch_model_dir or args.pt_discriminator_path):
        parser.error("the following arguments are required: --pt_discriminator_path")
    return args


# Flags of the TF -> transformers direction that mean nothing with --to_tf (their defaults).
FORWARD_ONLY = {"onnx_path": None, "config_file": None, "vocab_dir": None, "num_attention_heads": None,
                "generator_num_attention_heads": None, "hidden_act": None, "do_lower_case": None,
                "tokenizer_type": None}


def to_tf(args):
    from convert.to_tf import format_report, output_prefix, transformers_to_tf

    given = [f"--{name}" for name, default in FORWARD_ONLY.items() if getattr(args, name) != default]
    if given:
        raise UserInputError(f"{', '.join(given)}: only for TF -> transformers, not with --to_tf "
                             "(sizes, vocab and casing come from the transformers directories)")
    report = transformers_to_tf(args.pt_discriminator_path, args.pt_generator_path, output_prefix(args.tf_ckpt_path),
                                untied_generator_embeddings=args.untied_generator_embeddings,
                                overwrite=args.overwrite, verify=args.verify, seed=args.seed)
    print(format_report(report))


# Every flag but --tf_ckpt_path and --overwrite, at its default: what a model directory conversion takes.
MODEL_DIR_IGNORES = dict(FORWARD_ONLY, pt_discriminator_path=None, pt_generator_path=None, to_tf=False,
                         untied_generator_embeddings=False, verify=True, seed=None)


def to_model_dir(args):
    from convert.torch_tf import tf_to_torch, torch_to_tf

    flag = "--to_tf_model_dir" if args.to_tf_model_dir else "--to_torch_model_dir"
    given = [f"--{name}" for name, default in MODEL_DIR_IGNORES.items() if getattr(args, name) != default]
    if given:
        raise UserInputError(f"{', '.join(given)}: not with {flag}, which converts a whole model directory "
                             "(its config, vocab, weights, Adam slots and step) for the other backend")
    if args.to_tf_model_dir:
        torch_to_tf(args.tf_ckpt_path, args.to_tf_model_dir, overwrite=args.overwrite)
    else:
        tf_to_torch(args.tf_ckpt_path, args.to_torch_model_dir, overwrite=args.overwrite)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("USE_TF", "0")  # we run TF ourselves; transformers needs only PyTorch
    if args.to_tf_model_dir or args.to_torch_model_dir:
        return to_model_dir(args)
    if args.to_tf:
        return to_tf(args)
    if args.untied_generator_embeddings:
        raise UserInputError("--untied_generator_embeddings is for --to_tf (a TF checkpoint records its own layout)")
    from convert.pipeline import convert_checkpoint

    convert_checkpoint(
        args.tf_ckpt_path, args.pt_discriminator_path, args.pt_generator_path, args.onnx_path,
        verify=args.verify, config_file=args.config_file, vocab_dir=args.vocab_dir,
        num_attention_heads=args.num_attention_heads,
        generator_num_attention_heads=args.generator_num_attention_heads, hidden_act=args.hidden_act,
        do_lower_case=args.do_lower_case, tokenizer_type=args.tokenizer_type, overwrite=args.overwrite,
        seed=args.seed)


if __name__ == "__main__":
    run_cli(main)
