"""Round trips: tiny TF checkpoints of every layout -> transformers dirs that load and agree."""
import json
import os

import numpy as np
import pytest

from tiny_checkpoint import bert_config, make_model_dir

from convert.pipeline import convert_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = 150

LAYOUTS = {
    # ELECTRA-Small's shape: embedding < hidden, generator a fraction of the discriminator,
    # generator sharing the discriminator's embeddings through its own embeddings_project.
    "small_like": dict(disc=bert_config(32, 2, 2, 16, VOCAB), gen=bert_config(16, 2, 1, 16, VOCAB),
                       disc_output_name="dense_prediction"),
    # Dialog-KoELECTRA-Small's shape: generator fraction 1 with embedding < hidden, so the
    # generator has its own generator/embeddings_project over the shared embeddings.
    "dialog_koelectra_like": dict(disc=bert_config(32, 2, 2, 16, VOCAB), gen=bert_config(32, 2, 2, 16, VOCAB)),
    # Base-like: embedding == hidden, no projections; generator fraction 1 (Dialog-KoELECTRA's).
    "equal_sizes": dict(disc=bert_config(32, 2, 2, 32, VOCAB), gen=bert_config(32, 2, 2, 32, VOCAB)),
    # untied_generator_embeddings: generator/embeddings/* of the generator's own width.
    "untied_embeddings": dict(disc=bert_config(32, 2, 2, 16, VOCAB), gen=bert_config(24, 1, 2, 24, VOCAB),
                              untied_embeddings=True),
    # untied_generator=False: the generator is the discriminator's encoder plus the MLM head.
    "shared_encoder": dict(disc=bert_config(32, 2, 2, 16, VOCAB), gen=bert_config(32, 2, 2, 16, VOCAB),
                           untied_generator=False),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_round_trip_loads_in_transformers_and_matches_tf(tmp_path, layout):
    from transformers import AutoModel, AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining

    spec = LAYOUTS[layout]
    model_dir = make_model_dir(str(tmp_path / "model"), **spec)
    out = tmp_path / "out"
    results = convert_checkpoint(model_dir, str(out / "disc"), str(out / "gen"), log=lambda _: None)
    assert [r.name for r in results] == ["discriminator: PyTorch vs TF", "generator MLM: PyTorch vs TF"]
    assert all(r.error < 1e-4 for r in results), results

    disc, gen = spec["disc"], spec["gen"]
    d = ElectraForPreTraining.from_pretrained(out / "disc", local_files_only=True)
    g = ElectraForMaskedLM.from_pretrained(out / "gen", local_files_only=True)
    for model, cfg in ((d, disc), (g, gen)):
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "embedding_size", "vocab_size", "max_position_embeddings"):
            assert getattr(model.config, key) == cfg[key], (key, model.config)
        assert hasattr(model.electra, "embeddings_project") == (cfg["embedding_size"] != cfg["hidden_size"])
    base = AutoModel.from_pretrained(out / "disc", local_files_only=True)
    assert type(base).__name__ == "ElectraModel"
    assert np.array_equal(base.embeddings.word_embeddings.weight.detach().numpy(),
                          d.electra.embeddings.word_embeddings.weight.detach().numpy())
    # The generator's output layer is its (tied) input embedding table, after the reload too.
    assert g.generator_lm_head.weight.data_ptr() == g.electra.embeddings.word_embeddings.weight.data_ptr()
    for directory in ("disc", "gen"):
        tokenizer = AutoTokenizer.from_pretrained(out / directory, local_files_only=True)
        assert tokenizer.model_max_length == disc["max_position_embeddings"]
        assert tokenizer.vocab_size == VOCAB
    assert sorted(os.listdir(out)) == ["disc", "gen"]  # no temporary leftovers
    recorded = json.load(open(out / "disc" / "parity.json"))
    assert recorded["max_relative_error"] == {r.name: r.error for r in results}


def test_upstream_checkpoint_without_config_sizes_read_from_shapes(tmp_path):
    """A released upstream/Dialog-KoELECTRA TF checkpoint: no pretrain_config.json, dense_1 naming."""
    disc, gen = bert_config(128, 2, 2, 64, VOCAB), bert_config(128, 1, 2, 64, VOCAB)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen, with_config=False)
    messages = []
    results = convert_checkpoint(model_dir, str(tmp_path / "disc"), str(tmp_path / "gen"), log=messages.append)
    assert all(r.ok for r in results)
    assert any("num_attention_heads is not stored" in m and "= 2" in m for m in messages), messages
    config = json.load(open(tmp_path / "gen" / "config.json"))
    assert (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"],
            config["num_attention_heads"], config["embedding_size"]) == (128, 1, 512, 2, 64)


def test_heads_flag_for_checkpoints_without_config(tmp_path):
    disc, gen = bert_config(32, 1, 4, 16, VOCAB), bert_config(16, 1, 2, 16, VOCAB)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen, with_config=False)
    convert_checkpoint(model_dir, str(tmp_path / "disc"), str(tmp_path / "gen"), num_attention_heads=4,
                       generator_num_attention_heads=2, verify=False, log=lambda _: None)
    assert json.load(open(tmp_path / "disc" / "config.json"))["num_attention_heads"] == 4
    assert json.load(open(tmp_path / "gen" / "config.json"))["num_attention_heads"] == 2


def test_checkpoint_prefix_and_discriminator_only(tmp_path):
    disc, gen = bert_config(32, 1, 2, 16, VOCAB), bert_config(16, 1, 1, 16, VOCAB)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen)
    results = convert_checkpoint(os.path.join(model_dir, "model.ckpt-7"), str(tmp_path / "disc"),
                                 log=lambda _: None)
    assert [r.name for r in results] == ["discriminator: PyTorch vs TF"]
    assert not (tmp_path / "gen").exists()


def test_existing_output_is_refused_then_replaced_with_overwrite(tmp_path):
    from util.errors import UserInputError

    disc, gen = bert_config(32, 1, 2, 16, VOCAB), bert_config(16, 1, 1, 16, VOCAB)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen)
    target = tmp_path / "disc"
    target.mkdir()
    (target / "old.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="already exists"):
        convert_checkpoint(model_dir, str(target), verify=False, log=lambda _: None)
    assert os.listdir(target) == ["old.txt"]
    convert_checkpoint(model_dir, str(target), verify=False, overwrite=True, log=lambda _: None)
    assert "old.txt" not in os.listdir(target) and "model.safetensors" in os.listdir(target)
    assert sorted(os.listdir(tmp_path)) == ["disc", "model"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_of_the_wrong_kind_is_named_even_with_overwrite(tmp_path, overwrite):
    """A file where a model directory goes (or a directory where the ONNX file goes) is not an
    old output: the message says what it is, and --overwrite does not replace it."""
    from util.errors import UserInputError

    disc, gen = bert_config(32, 1, 2, 16, VOCAB), bert_config(16, 1, 1, 16, VOCAB)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    a_dir = tmp_path / "onnx_dir"
    a_dir.mkdir()
    with pytest.raises(UserInputError, match=rf"^--pt_discriminator_path {a_file} is a file, not a directory$"):
        convert_checkpoint(model_dir, str(a_file), verify=False, overwrite=overwrite, log=lambda _: None)
    with pytest.raises(UserInputError, match=rf"^--pt_generator_path {a_file} is a file, not a directory$"):
        convert_checkpoint(model_dir, str(tmp_path / "disc"), str(a_file), verify=False, overwrite=overwrite,
                           log=lambda _: None)
    with pytest.raises(UserInputError, match=rf"^--onnx_path {a_dir} is a directory, not a file$"):
        convert_checkpoint(model_dir, str(tmp_path / "disc"), onnx_path=str(a_dir), verify=False,
                           overwrite=overwrite, log=lambda _: None)
    assert a_file.read_text() == "keep me" and sorted(os.listdir(tmp_path)) == ["model", "notes.txt", "onnx_dir"]


def test_command_line_prints_parity_and_writes_onnx(tmp_path, capsys):
    """The script in-process (the subprocess path is covered by test_pretraining_integration)."""
    import pytorch_convert
    from util.errors import run_cli

    disc, gen = bert_config(32, 2, 2, 16, VOCAB), bert_config(16, 1, 1, 16, VOCAB)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen)
    out = tmp_path / "pytorch"
    run_cli(lambda: pytorch_convert.main([
        "--tf_ckpt_path", model_dir, "--pt_discriminator_path", str(out / "disc"),
        "--pt_generator_path", str(out / "gen"), "--onnx_path", str(out / "disc.onnx")]))
    stdout = capsys.readouterr().out
    for name in ("discriminator: PyTorch vs TF", "discriminator: onnxruntime vs TF",
                 "discriminator: onnxruntime vs PyTorch", "generator MLM: PyTorch vs TF"):
        line = next(l for l in stdout.splitlines() if name in l)
        assert line.split()[-1] == "ok" and float(line.split()[-3]) < 1e-4, line
    assert sorted(os.listdir(out)) == ["disc", "disc.onnx", "gen"]

    # A user mistake is one line on stderr and exit status 1, with nothing written.
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: pytorch_convert.main(["--tf_ckpt_path", str(tmp_path / "nowhere"),
                                              "--pt_discriminator_path", str(tmp_path / "other")]))
    assert exit_info.value.code == 1
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("error: ") and "nowhere" in stderr[0]
    assert not (tmp_path / "other").exists()


@pytest.mark.slow
def test_electra_small_sized_checkpoint_converts_with_parity(tmp_path):
    """Dialog-KoELECTRA-Small's full size (vocab 40000, 12 layers, generator fraction 1), ONNX included."""
    small = dict(bert_config(256, 12, 4, 128, 40000, max_positions=512), intermediate_size=1024)
    model_dir = make_model_dir(str(tmp_path / "model"), small, dict(small), with_config=False, scale=0.05)
    results = convert_checkpoint(model_dir, str(tmp_path / "disc"), str(tmp_path / "gen"),
                                 str(tmp_path / "disc.onnx"), log=lambda _: None)
    assert len(results) == 4 and all(r.ok for r in results), results
