"""ONNX export: onnxruntime agrees with PyTorch for any batch size and sequence length."""
import pytest

from tiny_checkpoint import bert_config, make_model_dir

from convert.onnx_export import export_onnx, onnx_session, run_onnx
from convert.parity import random_inputs, relative_error, torch_logits
from convert.pipeline import convert_checkpoint

VOCAB = 150


@pytest.fixture(scope="module")
def discriminator_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onnx")
    model_dir = make_model_dir(str(tmp / "model"), bert_config(32, 2, 2, 16, VOCAB), bert_config(16, 1, 1, 16, VOCAB))
    convert_checkpoint(model_dir, str(tmp / "disc"), verify=False, log=lambda _: None)
    return tmp / "disc"


def test_discriminator_onnx_matches_pytorch_on_dynamic_shapes(discriminator_dir, tmp_path):
    from transformers import ElectraForPreTraining

    model = ElectraForPreTraining.from_pretrained(discriminator_dir, local_files_only=True).eval()
    path = export_onnx(model, tmp_path / "disc.onnx")
    session = onnx_session(path)
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    for batch, length in ((1, 5), (3, 40), (8, 17)):
        *inputs, _ = random_inputs(VOCAB, 40, batch_size=batch, seq_length=length)
        ort = run_onnx(session, *inputs)
        assert ort.shape == (batch, length)
        assert relative_error(ort, torch_logits(model, *inputs)) < 1e-4


def test_sequence_classifier_export_for_fine_tuned_models(discriminator_dir, tmp_path):
    import torch
    from transformers import ElectraForSequenceClassification

    torch.manual_seed(0)
    model = ElectraForSequenceClassification.from_pretrained(
        discriminator_dir, num_labels=3, local_files_only=True).eval()
    session = onnx_session(export_onnx(model, tmp_path / "cls.onnx"))
    for batch, length in ((1, 9), (5, 33)):
        *inputs, _ = random_inputs(VOCAB, 40, batch_size=batch, seq_length=length)
        ort = run_onnx(session, *inputs)
        assert ort.shape == (batch, 3)
        assert relative_error(ort, torch_logits(model, *inputs)) < 1e-4


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_export_leaves_no_file_on_failure_and_keeps_training_mode(discriminator_dir, tmp_path):
    from transformers import ElectraForPreTraining

    model = ElectraForPreTraining.from_pretrained(discriminator_dir, local_files_only=True).train()
    with pytest.raises(Exception):
        export_onnx(model, tmp_path / "bad.onnx", opset=1)  # no exporter supports opset 1
    assert list(tmp_path.iterdir()) == []
    assert model.training


@pytest.mark.parametrize("head", ["regression", "token", "qa"])
def test_every_fine_tuned_head_exports_with_dynamic_axes(discriminator_dir, tmp_path, head):
    import numpy as np
    import torch
    from transformers import (ElectraForQuestionAnswering, ElectraForSequenceClassification,
                              ElectraForTokenClassification)

    from convert.onnx_export import output_names, run_onnx_outputs

    torch.manual_seed(0)
    model = {"regression": lambda: ElectraForSequenceClassification.from_pretrained(
                 discriminator_dir, num_labels=1, problem_type="regression", local_files_only=True),
             "token": lambda: ElectraForTokenClassification.from_pretrained(
                 discriminator_dir, num_labels=13, local_files_only=True),
             "qa": lambda: ElectraForQuestionAnswering.from_pretrained(
                 discriminator_dir, local_files_only=True)}[head]().eval()
    session = onnx_session(export_onnx(model, tmp_path / f"{head}.onnx"))
    assert [o.name for o in session.get_outputs()] == output_names(model)
    for batch, length in ((1, 6), (4, 31)):
        *inputs, _ = random_inputs(VOCAB, 40, batch_size=batch, seq_length=length)
        ort = run_onnx_outputs(session, *inputs)
        with torch.no_grad():
            reference = model(*(torch.from_numpy(np.asarray(a)) for a in inputs))
        for name in output_names(model):
            expected = reference[name].numpy()
            assert ort[name].shape == expected.shape
            assert relative_error(ort[name], expected) < 1e-4


def test_export_finetuned_checks_parity_and_refuses_pretraining_heads(discriminator_dir, tmp_path):
    from transformers import ElectraForTokenClassification

    from convert.onnx_export import export_finetuned
    from util.errors import UserInputError

    with pytest.raises(UserInputError, match="not a fine-tuned head"):
        export_finetuned(str(discriminator_dir), str(tmp_path / "disc.onnx"), log=lambda _: None)
    ElectraForTokenClassification.from_pretrained(discriminator_dir, num_labels=5, local_files_only=True) \
        .save_pretrained(tmp_path / "ner")
    printed = []
    path, results = export_finetuned(str(tmp_path / "ner"), log=printed.append)
    assert path == str(tmp_path / "ner" / "model.onnx") and [r.name for r in results] == \
        ["logits: onnxruntime vs PyTorch"]
    assert results[0].ok and any("must be < 0.0001" in line for line in printed)
    with pytest.raises(UserInputError, match="already exists"):
        export_finetuned(str(tmp_path / "ner"), log=lambda _: None)
