"""Fine-tune and evaluate a local transformers encoder on a Korean benchmark task.

    python run_finetune.py --config_file conf/nsmc/electra-small.yaml [--do_nni] [--do_reinit]

The YAML uses Dialog-KoELECTRA's keys (see docs/finetuning.md). Outputs go to
``ckpt_dir/<task>/``: best_model/, results.json, predictions_<split>.jsonl, tensorboard/.

Data-parallel on several GPUs or machines, unchanged (see docs/scaling.md):

    torchrun --nproc_per_node N run_finetune.py --config_file ...
"""
import argparse
import contextlib
import logging
import os

os.environ.setdefault("USE_TF", "0")
# Should anything import TensorFlow after all, its C++ INFO lines (oneDNN, cpu_feature_guard) stay out.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from util.errors import UserInputError, run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_file", required=True, help="YAML file with the run's settings")
    parser.add_argument("--do_nni", "--nni", dest="do_nni", action="store_true",
                        help="take hyperparameters from the NNI experiment and report scores to it")
    parser.add_argument("--do_reinit", "--reinit", dest="do_reinit", action="store_true",
                        help="re-initialise the top encoder layer before training")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a YAML key (repeatable); paths are relative to the current directory")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if os.path.isdir(args.config_file):  # finetune.config would open it and print a traceback
        raise UserInputError(f"--config_file {args.config_file} is a directory; give a YAML file "
                             "such as conf/nsmc/electra-small.yaml")

    from finetune import distributed

    context = distributed.from_environment()  # torchrun's WORLD_SIZE / RANK / LOCAL_RANK, if any
    prefix = f"[rank {context.rank}] " if context.distributed else ""
    logging.basicConfig(level=logging.INFO if context.is_main else logging.WARNING,
                        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")

    from tqdm.contrib.logging import logging_redirect_tqdm

    from finetune import nni_glue, tasks
    from finetune.config import load_config, parse_overrides
    from finetune.trainer import run as run_logged

    def run(*run_args):
        # Log lines go through tqdm.write, so they never cut a progress bar in half.
        with logging_redirect_tqdm():
            return run_logged(*run_args)

    overrides = parse_overrides(args.overrides)
    if args.do_nni:
        overrides["do_nni"] = True
    if args.do_reinit:
        overrides["do_reinit"] = True
    extra = tasks.task_config_defaults()
    if not context.distributed:
        nni_params = nni_glue.next_parameters() if args.do_nni else None
        config = load_config(args.config_file, nni_params=nni_params, overrides=overrides, extra_defaults=extra)
        with holding_output_dir(config):
            return report(run(config))

    import torch

    # The YAML's no_cuda picks the backend; NNI parameters come after the group exists.
    config = load_config(args.config_file, overrides=overrides, extra_defaults=extra)
    context = distributed.init(context, torch.cuda.is_available() and not config.no_cuda)
    try:
        if args.do_nni:
            # Only rank 0 is NNI's trial; the others train with the parameters it received.
            nni_params = distributed.broadcast_object(nni_glue.next_parameters() if context.is_main else None,
                                                      context)
            config = load_config(args.config_file, nni_params=nni_params, overrides=overrides, extra_defaults=extra)
        # Rank 0 holds the lock for the group: the other ranks write nothing there.
        with holding_output_dir(config) if context.is_main else contextlib.nullcontext():
            results = run(config, context)
        if context.is_main:
            report(results)
    finally:
        distributed.shutdown()


def holding_output_dir(config):
    """One run at a time in ckpt_dir/<task>/: a second is a one-line error naming the first's PID."""
    from finetune.trainer import output_dir_for
    from util.dir_lock import hold
    from util.files import check_dir_can_be_made

    output_dir = output_dir_for(config)
    check_dir_can_be_made(output_dir, f"{config.where('ckpt_dir')}: ckpt_dir")
    return hold(output_dir, "output dir")


def report(results):
    from finetune.selection import summary_lines

    for line in summary_lines(results):
        print(line)


if __name__ == "__main__":
    run_cli(main)
