"""``rnn.LanguageModel``: the library's next-token model (what ``rnn lm`` trains)."""

import os

from sklearn.utils.validation import check_is_fitted

from . import _rnn
from ._base import ModelEstimator

# how `rnn eval` reads a text: streams side by side, in windows of this many steps
_EVAL_STREAMS, _EVAL_WINDOW = 32, 100


class LanguageModel(ModelEstimator):
    """A recurrent network that predicts the next token of a text, trained in Rust by truncated
    backpropagation through time.

    Every argument is a flag of ``rnn lm`` with the same default (char-rnn's two layers of 256
    LSTM units on characters); ``None`` for ``lr`` is the optimiser's default (0.002 for adam),
    for ``threads`` one per core. ``fit`` holds out the last ``valid_fraction`` of the text to
    pick the best epoch and stop early; ``max_seconds`` ends training after that much time.
    ``callback``, ``verbose`` and Ctrl-C work as for :class:`rnn.Classifier` (a step's
    ``done`` and ``total`` count tokens). ``pretrained`` (a ``.vec`` file, ``embed`` its
    dimension) and ``freeze_embed`` start and keep the embedding as for :class:`rnn.Classifier`.
    """

    _native = _rnn.NativeLanguageModel

    def __init__(
        self,
        *,
        cell="lstm",
        hidden=256,
        layers=2,
        embed=0,
        dropout=0.0,
        tokens="char",
        min_count=1,
        max_vocab=None,
        bptt=50,
        batch=32,
        epochs=20,
        patience=3,
        optimizer="adam",
        lr=None,
        schedule="constant",
        clip=5.0,
        valid_fraction=0.05,
        max_seconds=None,
        seed=0,
        threads=None,
        pretrained=None,
        freeze_embed=False,
        verbose=False,
        callback=None,
    ):
        self.cell = cell
        self.hidden = hidden
        self.layers = layers
        self.embed = embed
        self.dropout = dropout
        self.tokens = tokens
        self.min_count = min_count
        self.max_vocab = max_vocab
        self.bptt = bptt
        self.batch = batch
        self.epochs = epochs
        self.patience = patience
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.clip = clip
        self.valid_fraction = valid_fraction
        self.max_seconds = max_seconds
        self.seed = seed
        self.pretrained = pretrained
        self.freeze_embed = freeze_embed
        self.threads = threads
        self.verbose = verbose
        self.callback = callback

    def fit(self, text, valid=None, checkpoint=None, resume=None):
        """Trains on ``text`` (a str, or a list of str read one after the other, as ``rnn lm``
        reads several files); ``valid`` is an optional validation text that replaces the
        held-out end. Returns the model. ``checkpoint`` and ``resume`` are as for
        ``Classifier.fit``: the run's checkpoint written as it goes, and a checkpoint (this
        estimator's or ``rnn lm --keep-checkpoint``'s) to go on from, with the same text."""
        text = _text(text, "text")
        valid = None if valid is None else _text(valid, "valid")
        options = {name: getattr(self, name) for name in _rnn.language_model_defaults()}
        # how the embedding starts: rnn lm's --pretrained and --freeze-embed
        options["pretrained"] = None if self.pretrained is None else os.fspath(self.pretrained)
        options["freeze_embed"] = bool(self.freeze_embed)
        self.model_ = self._train(
            _rnn.fit_language_model, text, valid, options, checkpoint=checkpoint, resume=resume
        )
        self._raise_if_interrupted(self.report_)
        return self

    def generate(self, prime="", length=200, temperature=1.0, top_k=None, top_p=None, seed=0):
        """``prime`` and ``length`` tokens drawn after it, as ``rnn generate`` prints them: the
        same seed gives the same text. ``temperature`` 0 always takes the likeliest token; below
        1 is safer, above 1 more surprising. ``top_k`` and ``top_p`` draw only among the k
        likeliest tokens, or the fewest whose probabilities sum to p."""
        check_is_fitted(self, "model_")
        if not isinstance(prime, str):
            raise ValueError(f"prime must be a str, not {type(prime).__name__}")
        return self.model_.generate(prime, length, temperature, top_k, top_p, seed)

    def evaluate(self, text):
        """The model on ``text``, as ``rnn eval --json`` scores it: a dict of ``loss`` (nats a
        token), ``bits`` (bits a token: a character's with ``tokens="char"``), ``perplexity``,
        ``accuracy`` (of the next token) and ``tokens`` (the text's)."""
        check_is_fitted(self, "model_")
        loss, bits, perplexity, accuracy, tokens = self.model_.evaluate(
            _text(text, "text"), _EVAL_STREAMS, _EVAL_WINDOW
        )
        return {"loss": loss, "bits": bits, "perplexity": perplexity, "accuracy": accuracy,
                "tokens": tokens}

    def score(self, text):
        """Minus the bits a token on ``text`` (higher is better, as scikit-learn expects)."""
        return -self.evaluate(text)["bits"]

    def explain(self, text, top=5):
        """For every token of ``text``: ``(token, p, next)``, ``p`` the probability the model
        gave the token after the ones before it (None for the first), ``next`` the ``top``
        likeliest tokens to follow, with their probabilities."""
        check_is_fitted(self, "model_")
        return self.model_.explain(_text(text, "text"), top)

    @classmethod
    def _from_native(cls, model):
        lm = cls(**model.settings())
        lm.model_ = model
        return lm


def _text(text, what):
    if isinstance(text, str):
        return text
    if isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
        return "".join(text)
    raise ValueError(f"{what} must be a str or a list of str, not {type(text).__name__}")
