"""An ONNX file is bound to the fine-tuned directory it was exported from.

The Question Pair model's head has the NSMC model's shape (logits [batch, 2]), so its ONNX
file passed every shape check and gave NSMC other answers with exit status 0. Now the export
records a hash of the weights and of the label map, and loading refuses a file whose record
is not the directory's, in one line.
"""
import json
import shutil

import pytest

from convert.onnx_export import export_finetuned
from finetune.inference import Predictor
from finetune.predict_cli import main
from util.errors import UserInputError

from serving_models import nsmc_reviews


@pytest.fixture(scope="module")
def nsmc_onnx(nsmc_model, tmp_path_factory):
    path, _ = export_finetuned(nsmc_model, str(tmp_path_factory.mktemp("onnx") / "nsmc.onnx"), log=lambda _: None)
    return path


def test_the_export_records_its_model_and_loading_checks_it(nsmc_model, nsmc_onnx):
    import onnxruntime as ort

    from convert.onnx_binding import model_fingerprint

    meta = ort.InferenceSession(nsmc_onnx, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    fingerprint = model_fingerprint(nsmc_model)
    assert {k: meta[k] for k in fingerprint} == fingerprint and len(fingerprint["weights_sha256"]) == 64
    reviews = nsmc_reviews(20)
    torch_labels = [p["label"] for p in Predictor(nsmc_model, threads=1).predict(reviews)]
    assert [p["label"] for p in Predictor(nsmc_model, onnx_path=nsmc_onnx, threads=1).predict(reviews)] == torch_labels


def test_an_onnx_file_of_another_model_with_the_same_head_is_refused(nsmc_model, pair_model, tmp_path, capsys):
    other, _ = export_finetuned(pair_model, str(tmp_path / "pair.onnx"), log=lambda _: None)
    with pytest.raises(UserInputError, match=r"pair\.onnx was exported from another model: its weights "
                                             r"\(sha256 [0-9a-f]{12}\) are not .* \(sha256 [0-9a-f]{12}\); "):
        Predictor(nsmc_model, onnx_path=other)
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("\n".join(nsmc_reviews(3)) + "\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="exported from another model"):  # predict.py: one error: line
        main(["--model_dir", nsmc_model, "--onnx", other, "--input", str(reviews)])
    assert capsys.readouterr().out == ""


def test_the_same_weights_under_another_label_map_are_refused(nsmc_model, nsmc_onnx, tmp_path):
    relabelled = tmp_path / "relabelled"
    shutil.copytree(nsmc_model, relabelled)
    config = json.loads((relabelled / "config.json").read_text(encoding="utf-8"))
    config["id2label"], config["label2id"] = {"0": "positive", "1": "negative"}, {"positive": 0, "negative": 1}
    (relabelled / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(UserInputError, match=r"nsmc\.onnx was exported under another label map"):
        Predictor(str(relabelled), onnx_path=nsmc_onnx)


def test_an_onnx_file_without_the_record_is_refused(nsmc_model, tmp_path):
    from convert.onnx_export import export_onnx, load_finetuned

    bare = export_onnx(load_finetuned(nsmc_model), str(tmp_path / "bare.onnx"))  # no record of its model
    with pytest.raises(UserInputError, match=r"bare\.onnx records no model it was exported from; export it again"):
        Predictor(nsmc_model, onnx_path=bare)
