"""Pre-trains an ELECTRA model (generator + discriminator) on TFRecords from build_pretraining_dataset.py.

    python run_pretraining.py --data_dir DIR --model_name NAME [--hparams JSON_OR_FILE]
                              [--backend tf|torch] [--use_tpu] [--mixed_precision]
                              [--distribution none|mirrored|multi_worker] [--num_gpus N]
    torchrun --nproc_per_node N run_pretraining.py --backend torch ...

See docs/pretraining.md for every argument and hyperparameter, and "Choosing a backend".
"""
import argparse
import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# PyTorch's OpenMP threads spin while they wait for each other; where other work shares the cores
# a spinning thread keeps its descheduled sibling off them. Measured on the torch backend's
# train_step at the learning-parity size (Small width, 4 layers, seq 64, batch 32, fp32) with 2
# threads on a 2-core AMD EPYC at load ~7: 4.9 examples/s spinning, 17.0 waiting passively.
# OpenMP reads this once, when torch loads: it must be set before.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True,
                        help="directory with pretrain_data.tfrecord* (or pretrain_tfrecords/pretrain_data.tfrecord*)")
    parser.add_argument("--model_name", required=True,
                        help="model name; the model dir is DATA_DIR/models/NAME, or NAME itself if it is a path")
    parser.add_argument("--hparams", action="append", default=[],
                        help="JSON dict of hyperparameters, or the path of a .json file; repeat it to layer "
                             "overrides on a file (later values win)")
    parser.add_argument("--backend", choices=["tf", "torch"],
                        help="tf: TF1 graph under TPUEstimator (TPU, mirrored/multi_worker); torch: the PyTorch "
                             "loop (GPUs, torchrun). Default: tf where TensorFlow is installed, else torch")
    parser.add_argument("--use_tpu", action="store_true", help="train on Cloud TPU (tpu_name etc. in --hparams)")
    parser.add_argument("--mixed_precision", action="store_true",
                        help="float16 on GPU (with loss scaling), bfloat16 on TPU and CPUs (AVX-512 BF16)")
    parser.add_argument("--distribution", choices=["none", "mirrored", "multi_worker"],
                        help="mirrored: every local GPU; multi_worker: the machines in TF_CONFIG (docs/scaling.md)")
    parser.add_argument("--num_gpus", type=int, help="GPUs per machine (default: every visible GPU)")
    args = parser.parse_args(argv)

    import configure_pretraining
    from pretrain import backend

    chosen, why = backend.choose(args.backend)
    hparams, source = configure_pretraining.merge_hparams(args.hparams)
    if args.use_tpu:
        hparams["use_tpu"] = True
    if args.mixed_precision:
        hparams["mixed_precision"] = True
    if args.distribution:
        hparams["distribution"] = args.distribution
    if args.num_gpus is not None:
        hparams["num_gpus"] = args.num_gpus
    config = configure_pretraining.PretrainingConfig(args.model_name, args.data_dir, source=source, **hparams)
    flags = {key: f"--{key}" for key in ("use_tpu", "distribution", "num_gpus") if getattr(args, key) not in (None, False)}
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 alone logs
        print(f"backend {chosen}: {why}", flush=True)
    backend.check_hparams(config, chosen, flags)
    if chosen == "torch":
        from pretrain.torch_backend import train

        return train.main(config)
    return train_tf(config)


def train_tf(config):
    import tensorflow.compat.v1 as tf

    from pretrain import checkpoint_space, distribution, training
    from util import dir_lock, disk_space
    from util.devices import pretraining_devices
    from util.files import check_dir_can_be_made

    # Our step logs replace the Estimator's; TF1 deprecation notices are noise here.
    tf.logging.set_verbosity(tf.logging.ERROR)
    check_dir_can_be_made(config.model_dir, "model dir")
    # Before anything is written: a GPU request on a machine without one is one error line.
    print(pretraining_devices(config), flush=True)
    # One run per model dir (the chief's: multi_worker's other workers write there too);
    # a full disk is one line, and a checkpoint cut short is cleared so the last one resumes.
    lock = dir_lock.hold(config.model_dir, "model dir") if distribution.is_chief(config) else contextlib.nullcontext()
    with lock, disk_space.reporting_full_disk(config.model_dir, "model dir",
                                              kept=lambda: checkpoint_space.clear_failed_save(config.model_dir)):
        training.train_or_eval(config)

if __name__ == "__main__":
    from util.errors import run_cli

    run_cli(main)
