"""serve.py: fine-tuned models behind HTTP (FastAPI on uvicorn), one JSON endpoint per model.

    python serve.py --model nsmc=ckpt/finetune/nsmc_small_v1/best_model [--onnx nsmc=FILE] \
        [--model korsts=DIR ...] [--host 127.0.0.1] [--port 8000] [--device cpu] [--threads N]

Routes:
- ``GET /health``: 200 while the process serves (liveness);
- ``GET /ready``: 200 once every model is loaded, 503 before (readiness);
- ``GET /models``: each model's task, kind, labels, runtime and batching counts;
- ``POST /models/<name>/predict`` with ``{"inputs": [item, ...]}``: items as the Python API
  takes them (a text, ``[text_a, text_b]``, or ``{"context", "question"}``); the answer is
  ``{"model": name, "predictions": [...]}``, one record per item in order, each with the
  item as read (normalised, as predict.py echoes it) and its prediction, or ``{"error": ...}``
  for an item the model cannot read (Predictor.check: the CLI's checks). A body that is not
  ``{"inputs": [...]}`` is a 422 with one ``error`` line; an unknown model a 404.

Concurrent requests to one model are predicted together (finetune/batcher.py). Models load in
the background after the port is open, so /health answers at once and /ready says when to
send traffic; a model that cannot load ends the server with one ``error:`` line and status 1.
"""
import argparse
import asyncio
import logging
import os
import sys
import threading

from finetune.inputs import BadInput, echo
from util.errors import UserInputError

logger = logging.getLogger("serve")
MAX_ITEMS = 1024  # items in one request


class Models:
    """The loaded models by name, filled by a background thread."""

    def __init__(self, specs, options):
        self.specs, self.options = specs, options
        self.loaded, self.batchers, self.error = {}, {}, None
        self.ready = threading.Event()

    def load(self):
        from finetune.batcher import Batcher
        from finetune.inference import Predictor

        try:
            for name, (model_dir, onnx_path) in self.specs.items():
                predictor = Predictor(model_dir, onnx_path=onnx_path, threads=self.options.threads,
                                      batch_size=self.options.batch_size, max_seq_len=self.options.max_seq_len,
                                      device=self.options.device)
                self.loaded[name] = predictor
                self.batchers[name] = Batcher(predictor, self.options.max_batch_items,
                                              self.options.max_wait_ms / 1000, name)
                logger.warning("model %s ready (%s, %s)", name, predictor.info.kind, "onnxruntime" if onnx_path
                               else "PyTorch")
            self.ready.set()
        except UserInputError as e:
            self.error = str(e)
        except Exception as e:  # a loader's own error: one line all the same
            self.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

    def describe(self, name):
        info = self.loaded[name].info
        return {"name": name, "task": info.settings.task, "kind": info.kind, "labels": info.labels,
                "pair_input": info.pair_input, "runtime": "onnxruntime" if self.specs[name][1] else "PyTorch",
                "max_seq_len": self.loaded[name].max_seq_len, "batching": dict(self.batchers[name].stats)}


def create_app(models):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="Dialog-KoELECTRA models", docs_url=None, redoc_url=None)

    def refuse(status, message):
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        if models.ready.is_set():
            return {"ready": True, "models": sorted(models.loaded)}
        body = {"ready": False, "loaded": sorted(models.loaded)}
        if models.error:
            body["error"] = models.error
        return JSONResponse(body, status_code=503)

    @app.get("/models")
    def listing():
        return {"models": [models.describe(name) for name in sorted(models.loaded)]}

    @app.post("/models/{name}/predict")
    async def predict(name: str, request: Request):
        if name not in models.specs:
            return refuse(404, f"no model {name!r} here (models: {', '.join(sorted(models.specs))})")
        if name not in models.batchers:
            return refuse(503, f"model {name!r} is still loading; GET /ready says when")
        try:
            body = await request.json()
        except ValueError as e:
            return refuse(422, f"the request body is not JSON ({str(e).splitlines()[0]})")
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            return refuse(422, 'expected a JSON object {"inputs": [item, ...]}')
        if len(inputs) > MAX_ITEMS:
            return refuse(413, f"{len(inputs)} inputs in one request; send at most {MAX_ITEMS}")
        predictor = models.loaded[name]
        records, items, slots = [], [], []
        for item in inputs:
            try:
                checked = predictor.check(tuple(item) if isinstance(item, list) else item)
            except BadInput as e:
                records.append({"error": str(e)})
                continue
            records.append(echo(checked))
            items.append(checked)
            slots.append(len(records) - 1)
        if items:
            results = await asyncio.wrap_future(models.batchers[name].submit(items))
            for slot, result in zip(slots, results):
                records[slot].update(result)
        return {"model": name, "predictions": records}

    return app


def parse_pairs(values, flag):
    pairs = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UserInputError(f"{flag} {value}: expected NAME=PATH")
        if name in pairs:
            raise UserInputError(f"{flag} {value}: {name} is given twice")
        pairs[name] = path
    return pairs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Serve fine-tuned models over HTTP (JSON), one endpoint per model.")
    p.add_argument("--model", action="append", required=True, metavar="NAME=DIR",
                   help="a fine-tuned directory served as /models/NAME/predict (repeat for more models)")
    p.add_argument("--onnx", action="append", metavar="NAME=FILE",
                   help="run model NAME from this ONNX file with onnxruntime (python -m convert.onnx_export)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N, or an onnxruntime provider")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per model (default: the runtime's)")
    p.add_argument("--batch_size", type=int, default=32, help="items per forward pass")
    p.add_argument("--max_batch_items", type=int, default=256, help="items gathered from concurrent requests")
    p.add_argument("--max_wait_ms", type=float, default=5.0,
                   help="how long a batch waits for more concurrent requests (milliseconds)")
    p.add_argument("--max_seq_len", type=int, default=None, help="default: each model's own")
    args = p.parse_args(argv)
    models = parse_pairs(args.model, "--model")
    onnx = parse_pairs(args.onnx, "--onnx")
    unknown = sorted(set(onnx) - set(models))
    if unknown:
        raise UserInputError(f"--onnx {unknown[0]}=...: no --model {unknown[0]}=DIR to go with it")
    for name in models:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise UserInputError(f"--model {name}=...: a name is letters, digits, - and _ (it is part of the URL)")
    args.specs = {name: (path, onnx.get(name)) for name, path in models.items()}
    return args


def main(argv=None):
    os.environ.setdefault("USE_TF", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import uvicorn

    models = Models(args.specs, args)
    server = uvicorn.Server(uvicorn.Config(create_app(models), host=args.host, port=args.port, log_level="warning",
                                           access_log=False))

    def load_then_announce():
        models.load()
        if models.error:
            server.should_exit = True
            return
        print(f"serving {', '.join(sorted(models.loaded))} on http://{args.host}:{args.port}", file=sys.stderr,
              flush=True)

    threading.Thread(target=load_then_announce, daemon=True, name="load-models").start()
    server.run()
    for batcher in models.batchers.values():
        batcher.close()
    if models.error:
        raise UserInputError(models.error)
    return 0
