"""Serve fine-tuned models over HTTP: one JSON endpoint per model, batching, health and readiness.

    python serve.py --model nsmc=ckpt/finetune/nsmc_small_v1/best_model --port 8000
    curl -s localhost:8000/models/nsmc/predict -d '{"inputs": ["정말 재밌어요", "시간 아깝다"]}'
    python serve.py --model nsmc=DIR --onnx nsmc=DIR/model.onnx   # onnxruntime: no torch import

See finetune/server.py and docs/inference.md.
"""
import sys

from util.errors import run_cli

if __name__ == "__main__":
    from finetune.server import main

    sys.exit(run_cli(main))
