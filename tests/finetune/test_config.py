import os
import shutil

import pytest

from finetune.config import load_config, parse_overrides
from util.errors import UserInputError

from finetune_helpers import SAMPLE_DIR

# The key set and values of Dialog-KoELECTRA's finetune/conf/nsmc/electra-small.yaml.
ORIGINAL_NSMC_YAML = """\
task: nsmc_small_v1
train_file: {data}/ratings_train.txt
test_file: {data}/ratings_test.txt
dev_file:
config_dir: {conf}
data_dir: {data}
ckpt_dir: {ckpt}
mecab: false
evaluate_test_during_training: true
eval_all_checkpoints: true
save_optimizer: false
do_lower_case: false
do_train: true
do_eval: true
max_seq_len: 128
num_train_epochs: 10
weight_decay: 0.0
gradient_accumulation_steps: 1
adam_epsilon: 1e-8
warmup_proportion: 0
max_steps: -1
max_grad_norm: 1.0
no_cuda: false
model_type: electra-small
model_name_or_path: {model}
seed: 42
train_batch_size: 32
eval_batch_size: 64
logging_steps: 100
save_steps: 100
learning_rate: 5e-5
"""


def original_yaml(tmp_path, model):
    """The original YAML, pointed at our sample reviews laid out under NSMC's file names."""
    data = tmp_path / "nsmc"
    data.mkdir()
    for split in ("train", "test"):
        shutil.copy(os.path.join(SAMPLE_DIR, f"sample_reviews_{split}.txt"), data / f"ratings_{split}.txt")
    path = tmp_path / "electra-small.yaml"
    path.write_text(ORIGINAL_NSMC_YAML.format(data=data, conf=tmp_path, ckpt=tmp_path / "model",
                                              model=model), encoding="utf-8")
    return str(path)


def test_original_yaml_loads_with_types_coerced(tmp_path, tiny_model_dir):
    config = load_config(original_yaml(tmp_path, tiny_model_dir))
    assert config.task == "nsmc_small_v1"
    # YAML 1.1 reads "1e-8" as a string; the config must hold the number.
    assert config.adam_epsilon == 1e-8 and isinstance(config.adam_epsilon, float)
    assert config.learning_rate == 5e-5 and isinstance(config.learning_rate, float)
    assert config.warmup_proportion == 0.0 and isinstance(config.warmup_proportion, float)
    assert config.dev_file is None
    assert config.train_file == str(tmp_path / "nsmc" / "ratings_train.txt")
    # Added keys take defaults; an original YAML samples at random as the originals (no length grouping).
    assert config.bf16 is False and config.group_by_length is False and config.save_total_limit == 3


def test_relative_paths(tmp_path, write_yaml, tiny_model_dir):
    data = tmp_path / "data" / "nsmc"
    data.mkdir(parents=True)
    (data / "ratings_train.txt").write_text("id\tdocument\tlabel\n1\t좋다\t1\n", encoding="utf-8")
    conf = tmp_path / "conf" / "nsmc"
    conf.mkdir(parents=True)
    path = conf / "run.yaml"
    path.write_text(f"task: nsmc\ndata_dir: ../../data/nsmc\ntrain_file: ratings_train.txt\n"
                    f"ckpt_dir: ../../ckpt\ndo_eval: false\nmodel_name_or_path: {tiny_model_dir}\n",
                    encoding="utf-8")
    config = load_config(str(path))
    assert config.data_dir == str(data)
    assert config.train_file == str(data / "ratings_train.txt")
    assert config.ckpt_dir == str(tmp_path / "ckpt")


def test_unknown_key_names_line_and_suggests(write_yaml, tiny_model_dir):
    path = write_yaml({"task": "nsmc", "model_name_or_path": tiny_model_dir,
                       "train_file": os.path.join(SAMPLE_DIR, "sample_reviews_train.txt"), "lerning_rate": 1e-4})
    with pytest.raises(UserInputError) as e:
        load_config(path)
    assert str(e.value) == f"{path}:4: unknown key 'lerning_rate' (did you mean 'learning_rate'?)"


def test_missing_file_names_key_and_line(write_yaml, tiny_model_dir):
    path = write_yaml({"task": "nsmc", "model_name_or_path": tiny_model_dir, "data_dir": SAMPLE_DIR,
                       "train_file": "nope.txt"})
    with pytest.raises(UserInputError, match=r"run\.yaml:4: train_file not found: .*nope\.txt"):
        load_config(path)


def test_bad_value_type(write_yaml, tiny_model_dir):
    path = write_yaml({"task": "nsmc", "model_name_or_path": tiny_model_dir, "do_train": False,
                       "test_file": os.path.join(SAMPLE_DIR, "sample_reviews_test.txt"), "train_batch_size": "many"})
    with pytest.raises(UserInputError, match=r"run\.yaml:5: train_batch_size must be an integer"):
        load_config(path)


def test_malformed_yaml_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: nsmc\nlearning_rate: [1e-4\nseed: 3\n", encoding="utf-8")
    with pytest.raises(UserInputError, match=r"bad\.yaml:\d+: malformed YAML"):
        load_config(str(path))


def test_do_train_without_train_file(write_yaml, tiny_model_dir):
    path = write_yaml({"task": "nsmc", "model_name_or_path": tiny_model_dir,
                       "test_file": os.path.join(SAMPLE_DIR, "sample_reviews_test.txt")})
    with pytest.raises(UserInputError, match="do_train is true but train_file is empty"):
        load_config(path)


def test_nni_and_command_line_overrides(tmp_path, tiny_model_dir):
    path = original_yaml(tmp_path, tiny_model_dir)
    config = load_config(path, nni_params={"learning_rate": 3e-5, "adam_epsilon": "1e-6"},
                         overrides=parse_overrides(["seed=3", "learning_rate=7e-5"]))
    assert config.adam_epsilon == 1e-6
    assert config.learning_rate == 7e-5  # the command line wins over NNI
    assert config.seed == 3
    with pytest.raises(UserInputError, match="NNI parameter: unknown key 'warmup' .*warmup_proportion"):
        load_config(path, nni_params={"warmup": 0.1})
