#!/usr/bin/env python3
"""Our model served the way a Python user would serve it: FastAPI + uvicorn + PyTorch.

It loads an `rnn` .safetensors model into `torch_rnn.Net` (nn.Embedding -> nn.RNN -> nn.Linear),
the PyTorch network that bench/run.py trains: the embedding is our input weights transposed
(Wxh · onehot(i) is column i of Wxh), the RNN's input weights are the identity, and the
recurrent and output weights are ours. It answers the same protocol as `rnn serve`:

    POST /v1/models/NAME:predict  {"instances": ["text", ...]}
        -> {"predictions": [{"label": L, "probs": {label: p, ...}}, ...]}
    GET  /healthz

one request at a time per request, as a plain FastAPI handler does (no batching across
requests). It listens on 127.0.0.1 only.

    python torch_serve.py MODEL.safetensors --name spam --port 8081 [--threads N]
"""

import argparse
import json
import os
import sys

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from safetensors import safe_open
from safetensors.torch import load_file

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing torch_rnn.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_rnn import Net, collate  # noqa: E402


class Instances(BaseModel):
    """The request body."""

    instances: list[str]


def load(path):
    """(net, vocab {token: id}, labels, tokens 'word'|'char', max_len or None) of a model file."""
    meta = safe_open(path, "pt").metadata()
    if meta.get("cell", "rnn") != "rnn":
        raise SystemExit(f"{path}: only the rnn cell is supported here, not {meta['cell']}")
    vocab = {token: i for i, token in enumerate(json.loads(meta["vocab"]))}
    labels = json.loads(meta["labels"])
    state = load_file(path)
    w_ih = state["rnn.weight_ih_l0"]  # [H, V]
    hidden = w_ih.shape[0]
    net = Net(len(vocab), hidden, len(labels))
    with torch.no_grad():
        net.emb.weight.copy_(w_ih.t())
        net.rnn.weight_ih_l0.copy_(torch.eye(hidden))
        net.rnn.bias_ih_l0.copy_(state["rnn.bias_ih_l0"])
        net.rnn.weight_hh_l0.copy_(state["rnn.weight_hh_l0"])
        net.rnn.bias_hh_l0.copy_(state["rnn.bias_hh_l0"])
        net.out.weight.copy_(state["fc.weight"])
        net.out.bias.copy_(state["fc.bias"])
    net.eval()
    max_len = int(meta["max_len"]) if meta.get("max_len") else None
    return net, vocab, labels, meta.get("tokens", "word"), max_len


def make_app(path, name):
    """The FastAPI application serving the model at `path` as `name`."""
    net, vocab, labels, tokens, max_len = load(path)
    app = FastAPI()

    def encode(text):
        pieces = list(text) if tokens == "char" else text.lower().split()
        ids = [vocab.get(t, 0) for t in pieces[:max_len]]
        return torch.tensor(ids or [0], dtype=torch.long)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/v1/models/{model}:predict")
    def predict(model: str, body: Instances):
        if model != name:
            raise HTTPException(status_code=404, detail=f"no model named {model}")
        ids, lengths = collate([encode(t) for t in body.instances])
        with torch.no_grad():
            probs = torch.softmax(net(ids, lengths), dim=1).tolist()
        return {
            "predictions": [
                {"label": labels[max(range(len(p)), key=p.__getitem__)], "probs": dict(zip(labels, p))}
                for p in probs
            ]
        }

    return app


def main():
    """Loads the model and serves it until interrupted."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--name", default="model")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    app = make_app(args.model, args.name)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
