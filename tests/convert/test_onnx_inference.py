"""The onnxruntime helper on Korean text gives the logits PyTorch gives for the same tokens."""
import numpy as np
import pytest

from tiny_checkpoint import bert_config, make_model_dir

from convert import onnx_inference
from convert.parity import relative_error, torch_logits
from convert.pipeline import convert_checkpoint

TEXTS = ["가나다 라마바", "고노 도로모보 소오 조초코토포호 가", "하"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("infer")
    model_dir = make_model_dir(str(tmp / "model"), bert_config(32, 2, 2, 16, 120), bert_config(16, 1, 1, 16, 120))
    convert_checkpoint(model_dir, str(tmp / "disc"), onnx_path=str(tmp / "disc.onnx"), verify=False,
                       log=lambda _: None)
    return tmp


def test_logits_on_korean_text_match_pytorch(converted):
    from transformers import ElectraForPreTraining

    model = onnx_inference.OnnxElectra(str(converted / "disc.onnx"), str(converted / "disc"))
    logits, enc = model.logits(TEXTS)
    assert logits.shape == enc["input_ids"].shape and enc["attention_mask"].min() == 0  # padded batch
    assert model.tokenizer.convert_ids_to_tokens(enc["input_ids"][2][:3]) == ["[CLS]", "하", "[SEP]"]
    torch_model = ElectraForPreTraining.from_pretrained(converted / "disc", local_files_only=True).eval()
    expected = torch_logits(torch_model, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    assert relative_error(logits, expected) < 1e-4


def test_command_line_prints_token_probabilities(converted, capsys):
    onnx_inference.main(["--onnx_path", str(converted / "disc.onnx"), "--tokenizer_dir", str(converted / "disc"),
                         TEXTS[0]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == TEXTS[0]
    pairs = [p.rsplit(":", 1) for p in lines[1].split()]
    assert [t for t, _ in pairs] == ["[CLS]", "가", "##나", "##다", "라", "##마", "##바", "[SEP]"]
    assert all(0.0 <= float(p) <= 1.0 for _, p in pairs)


def test_missing_onnx_file_is_a_user_error(converted):
    from util.errors import UserInputError

    with pytest.raises(UserInputError, match="ONNX file not found"):
        onnx_inference.OnnxElectra(str(converted / "nope.onnx"), str(converted / "disc"))
