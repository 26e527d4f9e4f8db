"""transformers -> TF (convert/to_tf.py, pytorch_convert.py --to_tf) on models transformers itself creates."""
import json
import os

import numpy as np
import pytest
import torch

from tiny_checkpoint import bert_config, variable_shapes, write_vocab_dir

import pytorch_convert
from convert.checkpoint import CheckpointVariables
from convert.pipeline import convert_checkpoint
from convert.to_tf import output_prefix, transformers_to_tf
from util.errors import UserInputError

VOCAB = 120


def electra_config(cfg, architecture):
    from transformers import ElectraConfig

    return ElectraConfig(vocab_size=cfg["vocab_size"], embedding_size=cfg["embedding_size"],
                         hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["num_hidden_layers"],
                         num_attention_heads=cfg["num_attention_heads"], intermediate_size=cfg["intermediate_size"],
                         max_position_embeddings=cfg["max_position_embeddings"], layer_norm_eps=1e-12,
                         architectures=[architecture])


def save_hub_pair(directory, disc_cfg, gen_cfg=None, tied=True, seed=0, vocab=True):
    """Randomly initialised ElectraForPreTraining (+ ElectraForMaskedLM) saved with save_pretrained, as on the Hub.

    ``tied``: the generator gets the discriminator's embeddings, as a pair converted from one
    upstream checkpoint has them; otherwise each keeps its own random table."""
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    torch.manual_seed(seed)
    disc = ElectraForPreTraining(electra_config(disc_cfg, "ElectraForPreTraining"))
    paths = [os.path.join(directory, "disc")]
    disc.save_pretrained(paths[0])
    if vocab:
        write_vocab_dir(paths[0], disc_cfg["vocab_size"])
    if gen_cfg is not None:
        gen = ElectraForMaskedLM(electra_config(gen_cfg, "ElectraForMaskedLM"))
        if tied:
            gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
        paths.append(os.path.join(directory, "gen"))
        gen.save_pretrained(paths[1])
    return paths


def tiny_sizes():
    return bert_config(32, 2, 2, 16, VOCAB), bert_config(16, 2, 1, 16, VOCAB)


def logits(model_cls, directory, seed=1):
    model = model_cls.from_pretrained(directory, local_files_only=True).eval()
    rng = np.random.default_rng(seed)
    ids = torch.from_numpy(rng.integers(5, model.config.vocab_size, (3, 24)))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    types = torch.zeros_like(ids)
    types[:, 10:] = 1
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits


def assert_round_trip(hub_dirs, tf_dir, back_dir):
    """transformers -> TF -> transformers: the same logits, bit for bit, for both networks."""
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    convert_checkpoint(tf_dir, os.path.join(back_dir, "disc"),
                       os.path.join(back_dir, "gen") if len(hub_dirs) > 1 else None, log=lambda _: None)
    assert torch.equal(logits(ElectraForPreTraining, hub_dirs[0]),
                       logits(ElectraForPreTraining, os.path.join(back_dir, "disc")))
    if len(hub_dirs) > 1:
        assert torch.equal(logits(ElectraForMaskedLM, hub_dirs[1]),
                           logits(ElectraForMaskedLM, os.path.join(back_dir, "gen")))


def test_tiny_pair_writes_upstream_names_and_round_trips(tmp_path):
    disc_cfg, gen_cfg = tiny_sizes()
    hub = save_hub_pair(str(tmp_path / "hub"), disc_cfg, gen_cfg)
    report = transformers_to_tf(*hub, output_prefix(str(tmp_path / "tf")))

    prefix = str(tmp_path / "tf" / "model.ckpt")
    assert report["checkpoint"] == prefix and report["notes"] == [] and report["embeddings_replaced"] == []
    variables = CheckpointVariables(prefix)
    # The independent account of upstream's names in tiny_checkpoint, shapes included.
    assert variables.shapes == variable_shapes(disc_cfg, gen_cfg)
    assert sorted(os.listdir(tmp_path / "tf")) == ["checkpoint", "model.ckpt.data-00000-of-00001",
                                                   "model.ckpt.index", "pretrain_config.json",
                                                   "tokenizer_config.json", "vocab.txt"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary left
    recorded = json.load(open(tmp_path / "tf" / "pretrain_config.json"))
    assert recorded["bert_config"]["num_attention_heads"] == 2
    assert recorded["generator_bert_config"]["num_attention_heads"] == 1
    assert recorded["generator_hidden_size"] == 0.5 and recorded["untied_generator_embeddings"] is False
    assert all(r < 1e-4 for r in report["parity"]["max_relative_error"].values())
    assert len(report["parity"]["max_relative_error"]) == 2  # discriminator and generator
    # TF layout: kernels are [in, out], torch Linear weights [out, in].
    from transformers import ElectraForPreTraining

    hf = ElectraForPreTraining.from_pretrained(hub[0])
    np.testing.assert_array_equal(variables.get("electra/encoder/layer_1/intermediate/dense/kernel"),
                                  hf.electra.encoder.layer[1].intermediate.dense.weight.detach().numpy().T)
    assert_round_trip(hub, str(tmp_path / "tf"), str(tmp_path / "back"))


def test_differing_embeddings_write_the_discriminators_or_both_untied(tmp_path):
    disc_cfg, gen_cfg = tiny_sizes()
    hub = save_hub_pair(str(tmp_path / "hub"), disc_cfg, gen_cfg, tied=False)
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    disc_table = ElectraForPreTraining.from_pretrained(hub[0]).electra.embeddings.word_embeddings.weight
    gen_table = ElectraForMaskedLM.from_pretrained(hub[1]).electra.embeddings.word_embeddings.weight

    tied = transformers_to_tf(*hub, str(tmp_path / "tied" / "model.ckpt-0"))
    assert "electra/embeddings/word_embeddings" in tied["embeddings_replaced"]
    assert "electra/embeddings/position_embeddings" in tied["embeddings_replaced"]
    assert any("the discriminator's are written" in note for note in tied["notes"])
    variables = CheckpointVariables(str(tmp_path / "tied" / "model.ckpt-0"))
    assert not any(name.startswith("generator/embeddings/") for name in variables.shapes)
    np.testing.assert_array_equal(variables.get("electra/embeddings/word_embeddings"), disc_table.detach().numpy())
    # Parity compared the generator as written (with the discriminator's table) and passed.
    assert tied["parity"]["max_relative_error"]["generator MLM: PyTorch vs TF"] < 1e-4

    untied = transformers_to_tf(*hub, str(tmp_path / "untied" / "model.ckpt"), untied_generator_embeddings=True)
    assert untied["embeddings_replaced"] == [] and untied["notes"] == []
    variables = CheckpointVariables(str(tmp_path / "untied" / "model.ckpt"))
    assert variables.shapes == variable_shapes(disc_cfg, gen_cfg, untied_embeddings=True)
    np.testing.assert_array_equal(variables.get("generator/embeddings/word_embeddings"), gen_table.detach().numpy())
    assert json.load(open(tmp_path / "untied" / "pretrain_config.json"))["untied_generator_embeddings"] is True
    assert_round_trip(hub, str(tmp_path / "untied"), str(tmp_path / "back"))


def test_without_a_generator_only_the_discriminator_is_written(tmp_path):
    disc_cfg, _ = tiny_sizes()
    hub = save_hub_pair(str(tmp_path / "hub"), disc_cfg)
    report = transformers_to_tf(hub[0], None, str(tmp_path / "tf" / "model.ckpt"))
    assert report["generator"] is None
    assert any("fresh generator" in note and "catch up" in note for note in report["notes"])
    assert CheckpointVariables(str(tmp_path / "tf" / "model.ckpt")).shapes == variable_shapes(disc_cfg, None)
    assert json.load(open(tmp_path / "tf" / "pretrain_config.json"))["generator_bert_config"] is None
    assert_round_trip(hub, str(tmp_path / "tf"), str(tmp_path / "back"))


def test_output_prefix():
    assert output_prefix("out/koelectra") == os.path.join("out/koelectra", "model.ckpt")
    assert output_prefix("out/koelectra/") == os.path.join("out/koelectra", "model.ckpt")
    assert output_prefix("out/model.ckpt-0") == "out/model.ckpt-0"


def run(argv, capsys):
    """pytorch_convert.py as a user runs it: (exit code, stdout, stderr)."""
    from util.errors import run_cli

    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: pytorch_convert.main(argv))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_cli_errors_are_one_line(tmp_path, capsys):
    from transformers import BertConfig, BertModel

    disc_cfg, gen_cfg = tiny_sizes()
    hub = save_hub_pair(str(tmp_path / "hub"), disc_cfg, gen_cfg)
    BertModel(BertConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                         intermediate_size=32)).save_pretrained(tmp_path / "bert")
    other_vocab = save_hub_pair(str(tmp_path / "other"), disc_cfg, bert_config(16, 2, 1, 16, VOCAB + 8), tied=False)[1]
    out = str(tmp_path / "tf")
    cases = [
        (["--pt_discriminator_path", str(tmp_path / "nope")], f"--pt_discriminator_path {tmp_path / 'nope'}: no such directory"),
        (["--pt_discriminator_path", str(tmp_path / "bert")], "model_type 'bert' (BertModel) is not ELECTRA"),
        (["--pt_discriminator_path", hub[1]], "not the discriminator (ElectraForPreTraining); it is a generator, "
                                               "pass it as --pt_generator_path"),
        (["--pt_discriminator_path", hub[0], "--pt_generator_path", other_vocab],
         f"vocab_size {VOCAB + 8}, but the discriminator's is {VOCAB}"),
        (["--pt_discriminator_path", hub[0], "--onnx_path", "x.onnx"], "--onnx_path: only for TF -> transformers"),
        (["--pt_discriminator_path", hub[0], "--untied_generator_embeddings"], "needs a generator"),
    ]
    for argv, message in cases:
        code, stdout, stderr = run(["--to_tf", "--tf_ckpt_path", out] + argv, capsys)
        assert code == 1 and message in stderr and stderr.count("\n") == 1, stderr
        assert not os.path.exists(out)

    code, stdout, _ = run(["--to_tf", "--tf_ckpt_path", out, "--pt_discriminator_path", hub[0],
                           "--pt_generator_path", hub[1], "--seed", "3"], capsys)
    assert code == 0 and "parity on random inputs (seed 3" in stdout and f"wrote {out}/model.ckpt" in stdout
    code, _, stderr = run(["--to_tf", "--tf_ckpt_path", out, "--pt_discriminator_path", hub[0]], capsys)
    assert code == 1 and "already exists and is not empty; pass --overwrite" in stderr
    code, _, stderr = run(["--to_tf", "--tf_ckpt_path", hub[0], "--pt_discriminator_path", hub[0], "--overwrite"],
                          capsys)
    assert code == 1 and "holds the input" in stderr and os.path.isfile(os.path.join(hub[0], "config.json"))


def test_interrupted_conversion_leaves_the_previous_output(tmp_path, monkeypatch):
    disc_cfg, gen_cfg = tiny_sizes()
    hub = save_hub_pair(str(tmp_path / "hub"), disc_cfg, gen_cfg)
    prefix = str(tmp_path / "tf" / "model.ckpt")
    transformers_to_tf(hub[0], None, prefix)
    before = {name: open(os.path.join(tmp_path / "tf", name), "rb").read() for name in os.listdir(tmp_path / "tf")}

    def interrupted(*args, **kwargs):  # Ctrl-C after the checkpoint was written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr("convert.to_tf._verify", interrupted)
    with pytest.raises(KeyboardInterrupt):
        transformers_to_tf(*hub, prefix, overwrite=True)
    after = {name: open(os.path.join(tmp_path / "tf", name), "rb").read() for name in os.listdir(tmp_path / "tf")}
    assert after == before  # still the discriminator-only checkpoint, whole
    assert sorted(os.listdir(tmp_path)) == ["hub", "tf"]  # no temporary left beside it


def test_vocab_that_does_not_fit_the_embeddings_is_refused(tmp_path):
    disc_cfg, _ = tiny_sizes()
    hub = save_hub_pair(str(tmp_path / "hub"), disc_cfg)
    with open(os.path.join(hub[0], "vocab.txt"), "a", encoding="utf-8") as f:
        f.write("extra\n")
    with pytest.raises(UserInputError, match=rf"vocab.txt: {VOCAB + 1} lines, but the model's word embeddings "
                                             rf"have {VOCAB} rows"):
        transformers_to_tf(hub[0], None, str(tmp_path / "tf" / "model.ckpt"))
    assert sorted(os.listdir(tmp_path)) == ["hub"]


@pytest.mark.slow
def test_koelectra_small_v3_shape_round_trips(tmp_path):
    """KoELECTRA-Small-v3's sizes (vocab 35,000, 512 positions, embedding 128, hidden 256, 12 layers,
    4 heads; generator_hidden_size 1.0, so the generator is the same size) through TF and back."""
    disc_cfg = bert_config(256, 12, 4, 128, 35000, max_positions=512)
    gen_cfg = dict(disc_cfg)
    hub = save_hub_pair(str(tmp_path / "hub"), disc_cfg, gen_cfg)
    report = transformers_to_tf(*hub, str(tmp_path / "tf" / "model.ckpt"))
    assert report["notes"] == []
    recorded = json.load(open(tmp_path / "tf" / "pretrain_config.json"))
    assert (recorded["generator_hidden_size"], recorded["generator_layers"]) == (1.0, 1.0)
    assert recorded["generator_bert_config"] == recorded["bert_config"] == disc_cfg
    assert CheckpointVariables(str(tmp_path / "tf" / "model.ckpt")).shapes == variable_shapes(disc_cfg, gen_cfg)
    assert_round_trip(hub, str(tmp_path / "tf"), str(tmp_path / "back"))
