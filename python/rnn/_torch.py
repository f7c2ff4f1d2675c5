"""``to_torch()``: a model as a PyTorch module whose state dict is the model file's, loaded with
``strict=True``. The file is a safetensors file (8 bytes of header length, a JSON header, the
raw tensors), read here without the safetensors package."""

import json
import struct

import numpy as np

from ._base import file_bytes

# the poolings a model file may name (src/rnn/pool/mod.rs's table)
_POOLS = ("last", "mean", "max")

# n-gram features (src/rnn/wide.rs): a token the vocabulary lacks has an unseen key, this bit
# and its hash; fastText's multiplier of its rolling hash of a word n-gram; 64-bit wrapping
UNSEEN = 1 << 31
_ROLL = 116_049_371
_U64 = (1 << 64) - 1


def _fnv1a(data):
    """The 32-bit FNV-1a hash of ``data`` (bytes)."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def unseen_key(token):
    """The key of a token the vocabulary lacks, in a model with n-gram features: ``UNSEEN`` and
    the low 31 bits of the 32-bit FNV-1a hash of its UTF-8 bytes (``rnn::data::unseen_key``)."""
    return UNSEEN | (_fnv1a(token.encode("utf-8")) & (UNSEEN - 1))


def subword_buckets(word, minn, maxn, buckets):
    """The buckets of ``word``'s character n-grams (subword vectors, fastText's -minn/-maxn):
    every substring of ``"<" + word + ">"`` of ``minn`` to ``maxn`` characters (characters, not
    bytes), by start and then by length, but a bracket alone; a gram's bucket is the 32-bit
    FNV-1a hash of its UTF-8 bytes modulo ``buckets`` (``Subwords::buckets_of`` in
    src/rnn/subwords.rs). These ``G(w)`` are the rows of ``subwords.weight`` (``S``) in a word's
    embedding ``x = E[w] + the mean of S[g] for g in G(w)`` (``E[w]`` alone for no n-gram)."""
    bracketed = "<" + word + ">"
    chars = len(bracketed)
    out = []
    for i in range(chars):
        for n in range(minn, min(maxn, chars - i) + 1):
            if n == 1 and (i == 0 or i == chars - 1):
                continue
            out.append(_fnv1a(bracketed[i : i + n].encode("utf-8")) % buckets)
    return out


def _mix(h):
    """SplitMix64's finaliser (``mix`` in src/rnn/wide.rs)."""
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _U64
    return h ^ (h >> 31)


def buckets_of(keys, n, buckets):
    """The buckets of every 1- to ``n``-gram of ``keys`` (a text's token keys, as
    ``module.keys(text)`` gives them): every 1-gram by position, then every 2-gram, and so on;
    the rows of ``wide.weight`` whose mean adds to the text's logits (``buckets_of`` in
    src/rnn/wide.rs). A known token ``k`` alone is bucket ``k % buckets``; an unseen one, and a
    longer gram, is ``mix(h) % buckets`` of fastText's rolling hash ``h`` of its keys."""
    keys = [int(k) for k in keys]
    out = []
    for size in range(1, min(n, len(keys)) + 1):
        for i in range(len(keys) - size + 1):
            h = keys[i]
            if size == 1 and not h & UNSEEN:
                out.append(h % buckets)
                continue
            for k in keys[i + 1 : i + size]:
                h = (h * _ROLL + k) & _U64
            out.append(_mix(h) % buckets)
    return out


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
        softmax is ``predict_proba``.

        A model with n-gram features (``ngrams`` in its file) also has ``wide``, an
        ``nn.EmbeddingBag(buckets, C, mode="mean")`` whose bag of a text's n-gram buckets adds
        to ``fc``'s logits: ``forward(ids, buckets, offsets=None)`` takes them as the bag does,
        one text's as a 1-d LongTensor (``module.buckets(text)``), or a batch's back to back
        with ``offsets``, where each text starts (an empty bag adds 0).

        A model with subword vectors (``subwords`` in its file, ``subword_sizes`` here) also has
        ``subwords``, an ``nn.EmbeddingBag(subword_buckets, E, mode="mean")`` of every token's
        character n-gram buckets ``G`` (``subword_buckets``), and a token's input is its row
        plus the mean of theirs, ``embedding(w) + subwords(G)`` (an empty bag adds 0):
        ``forward(ids, ..., grams=, gram_offsets=)`` takes them as the bag does, the n-grams of
        the ``B·T`` tokens of ``ids`` back to back in row-major order (a LongTensor) and
        ``gram_offsets``, where each token's start (``B·T`` of them; a token of no n-grams is its
        row alone): ``grams, gram_offsets = module.grams(text)`` for one text."""

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
            self.subword_sizes = None
            if "subwords" in meta:
                if not embed:
                    raise ValueError("the model file has subwords but no embedding to add them to")
                low, _, high = meta["subwords"].partition("-")
                self.subword_sizes = (int(low), int(high or low))
                self.subwords = torch.nn.EmbeddingBag(
                    int(meta["subword_buckets"]), embed, mode="mean"
                )
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
            self.ngrams = int(meta.get("ngrams", 0))
            if self.ngrams:
                self.wide = torch.nn.EmbeddingBag(int(meta["buckets"]), classes, mode="mean")

        def forward(self, ids, buckets=None, offsets=None, grams=None, gram_offsets=None):
            if ids.dim() == 1:
                ids = ids.unsqueeze(0)
            if self.subword_sizes and grams is None:
                raise ValueError(
                    "the model has subword vectors: give the tokens' n-grams too, "
                    "grams, gram_offsets = module.grams(text); "
                    "module(ids, ..., grams=grams, gram_offsets=gram_offsets)"
                )
            if not self.subword_sizes and grams is not None:
                raise ValueError("the model has no subword vectors: give no grams")
            if self.ngrams and buckets is None:
                raise ValueError(
                    "the model has n-gram features: give the texts' buckets too, "
                    "module(ids, module.buckets(text))"
                )
            if not self.ngrams and buckets is not None:
                raise ValueError("the model has no n-gram features: module(ids) alone")
            if hasattr(self, "embedding"):
                x = self.embedding(ids)
                if self.subword_sizes:
                    x = self._with_subwords(x, grams, gram_offsets)
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
            logits = self.fc(f)
            if self.ngrams:
                logits = logits + self._bag(buckets, offsets, len(ids))
            return logits

        def _bag(self, buckets, offsets, rows):
            """The mean row of ``wide.weight`` of each text's buckets: ``[rows, C]``."""
            if offsets is None and buckets.dim() == 1:
                if rows != 1:
                    raise ValueError(
                        f"the buckets of {rows} texts need their offsets (where each starts)"
                    )
                offsets = torch.zeros(1, dtype=torch.long)
            return self.wide(buckets, offsets)

        def _with_subwords(self, x, grams, gram_offsets):
            """Every token's input ``x[b, t]`` plus the mean of its n-grams' rows of
            ``subwords.weight``: ``[B, T, E]``."""
            rows, steps, width = x.shape
            tokens = rows * steps
            if gram_offsets is None:
                if tokens != 1:
                    raise ValueError(
                        f"the n-grams of {tokens} tokens need their gram_offsets (where each "
                        "token's start)"
                    )
                gram_offsets = torch.zeros(1, dtype=torch.long)
            if gram_offsets.shape != (tokens,):
                raise ValueError(
                    f"gram_offsets must say where the n-grams of each of the {tokens} tokens "
                    f"start, not be of shape {tuple(gram_offsets.shape)}"
                )
            return x + self.subwords(grams, gram_offsets).view(rows, steps, width)

        def grams(self, text):
            """The n-gram buckets of every token of ``text`` (``token_grams``, the library's),
            for ``forward``: ``(grams, gram_offsets)``, the tokens' back to back as a 1-d
            LongTensor and where each token's start. ``subword_buckets`` computes a word's in
            pure Python."""
            lists = self.token_grams(text)
            starts, at = [], 0
            for g in lists:
                starts.append(at)
                at += len(g)
            flat = [b for g in lists for b in g]
            return torch.tensor(flat, dtype=torch.long), torch.tensor(starts, dtype=torch.long)

        def buckets(self, text):
            """The buckets of ``text``'s n-grams, from its keys (``keys``), in pure Python
            (``buckets_of``): the ``buckets`` of ``forward``."""
            return torch.tensor(
                buckets_of(self.keys(text), self.ngrams, self.wide.num_embeddings),
                dtype=torch.long,
            )

        def predict_proba(self, texts):
            """The probability of every class for every text in ``texts`` (a list of str): a
            float32 NumPy array of shape ``(len(texts), len(classes_))``, columns in
            ``classes_`` order, as the estimator's ``predict_proba`` gives (to f32 rounding).
            Each text is cut into tokens by the model's own rule (``encode``, the library's
            tokenizer), and a text of no tokens gets the output layer's bias alone, as
            ``rnn predict`` gives it (its features are zeros, and it has no n-grams)."""
            if isinstance(texts, str):
                raise ValueError("texts must be a sequence of texts, not one str")
            rows = []
            with torch.no_grad():
                for text in texts:
                    ids = self.encode(text)
                    if len(ids) == 0:
                        logits = self.fc.bias.unsqueeze(0)
                    else:
                        subwords = {}
                        if self.subword_sizes:
                            subwords["grams"], subwords["gram_offsets"] = self.grams(text)
                        buckets = self.buckets(text) if self.ngrams else None
                        logits = self(ids, buckets, **subwords)
                    rows.append(torch.softmax(logits, -1)[0])
            if not rows:
                return np.zeros((0, len(self.labels)), dtype=np.float32)
            probs = torch.stack(rows).numpy().astype(np.float32, copy=False)
            return probs[:, self.class_order]

    return RnnClassifier


def classifier_module(native, order=None, classes=None):
    """The PyTorch module of a native classifier, with ``labels`` (the file's), ``vocabulary``,
    ``encode(text)`` (the token ids the model reads), ``keys(text)`` (the same, but a token the
    vocabulary lacks as its ``unseen_key``, for n-gram features), ``token_grams(text)`` (a list
    of every token's subword n-gram buckets, for subword vectors), ``classes_`` and
    ``predict_proba(texts)`` beside it. ``order[j]`` is the file's label of column ``j`` of
    ``predict_proba``, whose class is ``classes[j]`` (the estimator's ``classes_``); by
    default, the file's labels."""
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
    module.keys = native.keys
    module.token_grams = native.grams
    module.class_order = np.arange(len(labels)) if order is None else np.asarray(order)
    module.classes_ = np.asarray(labels) if classes is None else np.asarray(classes)
    return module
