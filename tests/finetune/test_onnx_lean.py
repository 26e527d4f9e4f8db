"""predict.py --onnx needs only onnxruntime, tokenizers and numpy: shown in a fresh interpreter.

The fine-tuned NSMC model is exported; a new process runs predict.py's main with --onnx on real
reviews and then lists which heavy packages it imported. torch and transformers were about 4 s
of the 5-7 s start-up and had to be installed for an ONNX deployment.
"""
import json
import os
import subprocess
import sys

import pytest

from convert.onnx_export import export_finetuned
from finetune.inference import Predictor

from finetune_helpers import ROOT
from serving_models import nsmc_reviews

HEAVY = ("torch", "transformers", "tensorflow", "sklearn", "scipy", "seqeval", "yaml", "safetensors", "onnx",
         "pandas", "accelerate")
SCRIPT = r"""
import json, sys
from finetune.predict_cli import main
status = main(sys.argv[1:])
heavy = sorted(m for m in json.loads(os.environ["HEAVY"]) if m in sys.modules)
print(json.dumps({"status": status, "heavy": heavy, "onnxruntime": "onnxruntime" in sys.modules}), file=sys.stderr)
"""


@pytest.mark.parametrize("name", ["nsmc", "ner"])
def test_the_onnx_path_imports_no_torch_or_transformers(name, nsmc_model, ner_model, tmp_path):
    model = nsmc_model if name == "nsmc" else ner_model
    onnx_path, _ = export_finetuned(model, str(tmp_path / "model.onnx"), log=lambda _: None)
    if name == "nsmc":
        items = nsmc_reviews(40)
    else:
        with open(os.path.join(os.path.dirname(__file__), "fixtures_ner_qa", "klue_ner.tsv"), encoding="utf-8") as f:
            import re

            items = [re.sub(r"<([^:<>]+):[A-Z]{2}>", r"\1", line.split("\t", 1)[1].strip())
                     for line in f if line.startswith("## klue")]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(items) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    env = dict(os.environ, HEAVY=json.dumps(HEAVY), PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", "import os\n" + SCRIPT, "--model_dir", model, "--onnx", onnx_path,
                           "--input", str(source), "--output", str(out), "--threads", "1"],
                          capture_output=True, cwd=ROOT, env=env, timeout=600)
    report = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert report == {"status": 0, "heavy": [] if name == "nsmc" else report["heavy"], "onnxruntime": True}, \
        done.stderr.decode()
    assert not {"torch", "transformers", "tensorflow"} & set(report["heavy"])
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = Predictor(model, threads=1).predict(items)  # PyTorch, transformers' tokenizer
    assert len(records) == len(items)
    for record, want in zip(records, expected):
        if name == "nsmc":
            assert record["label"] == want["label"]
            assert record["probabilities"] == pytest.approx(want["probabilities"], abs=1e-4)
        else:
            assert record["entities"] == want["entities"]
