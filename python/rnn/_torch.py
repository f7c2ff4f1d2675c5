"""``to_torch()``: a model as a PyTorch module whose state dict is the model file's, loaded with
``strict=True``. The file is a safetensors file (8 bytes of header length, a JSON header, the
raw tensors), read here without the safetensors package."""

import json
import struct

import numpy as np

from ._base import file_bytes

# the poolings a model file may name (src/rnn/pool/mod.rs's table)
_POOLS = ("last", "mean", "max")


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "to_torch() needs PyTorch, which is not installed: pip install torch (or, without "
            "a GPU, pip install torch --index-url https://download.pytorch.org/whl/cpu)"
        ) from None
    return torch


def read_safetensors(data):
    """The metadata and the tensors (name -> torch.Tensor) of a safetensors file's bytes."""
    torch = _torch()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n :]
    dtypes = {"F32": torch.float32, "U32": torch.int64}
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        if info["dtype"] != "F32":
            continue  # extras kept beside a model (none in a model file)
        t = torch.frombuffer(bytearray(body[start:end]), dtype=dtypes["F32"])
        tensors[name] = t.reshape(info["shape"])
    return meta, tensors


def _classifier_class():
    torch = _torch()

    class RnnClassifier(torch.nn.Module):
        """One-hot tokens or nn.Embedding -> nn.RNN/GRU/LSTM -> last, mean or max -> nn.Linear,
        as the model file describes it. ``forward(ids)`` takes a LongTensor of token ids,
        ``[T]`` or ``[B, T]`` (texts of one length), and returns the logits ``[B, C]``; their
        softmax is ``predict_proba``."""

        def __init__(self, meta, vocab, hidden, classes):
            super().__init__()
            if meta["pool"] not in _POOLS:
                raise ValueError(
                    f"unknown pooling {meta['pool']!r} in the model file "
                    f"(expected one of: {', '.join(_POOLS)})"
                )
            self.vocab_size, self.pool = vocab, meta["pool"]
            embed = int(meta["embed"]) if "embed" in meta else None
            if embed:
                self.embedding = torch.nn.Embedding(vocab, embed)
            cell = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[meta["cell"]]
            self.rnn = cell(
                embed or vocab,
                hidden,
                num_layers=int(meta["layers"]),
                bidirectional=meta["bidirectional"] == "true",
                batch_first=True,
            )
            directions = 2 if self.rnn.bidirectional else 1
            self.fc = torch.nn.Linear(hidden * directions, classes)

        def forward(self, ids):
            if ids.dim() == 1:
                ids = ids.unsqueeze(0)
            if hasattr(self, "embedding"):
                x = self.embedding(ids)
            else:
                x = torch.nn.functional.one_hot(ids, self.vocab_size).float()
            out, h = self.rnn(x)
            h = h[0] if isinstance(h, tuple) else h  # an LSTM returns (h, c)
            if self.pool == "last":  # each direction's final state: PyTorch's h_n
                f = torch.cat([h[-2], h[-1]], 1) if self.rnn.bidirectional else h[-1]
            elif self.pool == "mean":
                f = out.mean(1)
            else:  # "max", the one left of _POOLS
                f = out.max(1).values
            return self.fc(f)

        def predict_proba(self, texts):
            """The probability of every class for every text in ``texts`` (a list of str): a
            float32 NumPy array of shape ``(len(texts), len(classes_))``, columns in
            ``classes_`` order, as the estimator's ``predict_proba`` gives (to f32 rounding).
            Each text is cut into tokens by the model's own rule (``encode``, the library's
            tokenizer), and a text of no tokens gets the output layer's bias alone, as
            ``rnn predict`` gives it (its features are zeros)."""
            if isinstance(texts, str):
                raise ValueError("texts must be a sequence of texts, not one str")
            rows = []
            with torch.no_grad():
                for text in texts:
                    ids = self.encode(text)
                    logits = self.fc.bias.unsqueeze(0) if len(ids) == 0 else self(ids)
                    rows.append(torch.softmax(logits, -1)[0])
            if not rows:
                return np.zeros((0, len(self.labels)), dtype=np.float32)
            probs = torch.stack(rows).numpy().astype(np.float32, copy=False)
            return probs[:, self.class_order]

    return RnnClassifier


def classifier_module(native, order=None, classes=None):
    """The PyTorch module of a native classifier, with ``labels`` (the file's), ``vocabulary``,
    ``encode(text)`` (the token ids the model reads), ``classes_`` and ``predict_proba(texts)``
    beside it. ``order[j]`` is the file's label of column ``j`` of ``predict_proba``, whose
    class is ``classes[j]`` (the estimator's ``classes_``); by default, the file's labels."""
    torch = _torch()
    meta, state = read_safetensors(file_bytes(native))
    vocab, labels = json.loads(meta["vocab"]), json.loads(meta["labels"])
    hidden = state["rnn.weight_hh_l0"].shape[1]
    module = _classifier_class()(meta, len(vocab), hidden, len(labels))
    module.load_state_dict(state, strict=True)
    module.eval()
    module.labels = labels
    module.vocabulary = vocab
    module.encode = lambda text: torch.tensor(native.encode(text), dtype=torch.long)
    module.class_order = np.arange(len(labels)) if order is None else np.asarray(order)
    module.classes_ = np.asarray(labels) if classes is None else np.asarray(classes)
    return module
