"""``rnn.Classifier``: the library's text classifier as a scikit-learn estimator."""

import os
from dataclasses import dataclass
from typing import List

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from . import _rnn
from ._base import ModelEstimator


@dataclass
class Explanation:
    """How a prediction evolves while the network reads a text.

    ``tokens`` are the tokens as the model sees them (unknown ones as ``<unk>``);
    ``probs[i, j]`` is the probability of ``classes[j]`` had the text stopped after token ``i``.
    A bidirectional network reads each such prefix again, so for a long text (over 361 tokens)
    only some prefixes are evaluated, ending at evenly spaced tokens and at the last one; the
    rows of the other tokens are NaN (``np.isnan(probs[:, 0])`` marks them).
    """

    tokens: List[str]
    probs: np.ndarray
    classes: np.ndarray


class Classifier(ClassifierMixin, ModelEstimator):
    """A recurrent network that classifies texts, trained in Rust.

    Every argument is a flag of ``rnn train`` (``min_count`` is ``--min-count``, and so on) with
    the same default, and the same data, arguments and seed give the same model file as the
    command line. ``None`` means the default that depends on the data: ``lr`` the optimiser's
    (0.001 for adam, 0.02 for sgd), ``batch`` 32 or fewer for a small set, ``valid_split`` 0.1
    of the training rows, or 0 when that would be fewer than 50; ``threads`` one per core.

    ``pretrained``, a ``.vec`` file of word vectors (fastText's or GloVe's text format), starts
    the embedding of every vocabulary word it holds (``embed`` must be its dimension), and
    ``freeze_embed=True`` keeps the embedding as it starts: ``--pretrained`` and
    ``--freeze-embed``.

    ``ngrams=N`` (``--ngrams``) also reads a hashed bag of the text's 1- to N-grams of tokens, a
    linear model beside the network whose scores add to its own (fastText's word n-grams; None,
    the default, is 2, or 4 with ``tokens="char"``; 0 is none): ``buckets`` rows in its table
    (``--buckets``, None for 2^18), learnt at ``wide_lr`` (``--wide-lr``, None for 0.1).

    ``subwords="MIN-MAX"`` (``--subwords``; or a ``(MIN, MAX)`` pair) makes a word's embedding
    its own row plus the mean of the rows of its character n-grams of MIN to MAX characters
    (of the word in brackets, ``"<word>"``), hashed into ``subword_buckets`` rows
    (``--subword-buckets``, None for 2^16), so that a word unseen in training still has a vector
    of its own (after fastText's ``-minn``/``-maxn``): ``x = E[w] + the mean of S[g] over the
    n-grams g of w``, ``S`` starting at zero. It needs an embedding (``embed`` above 0) and word tokens
    (``tokens="word"`` or ``"wordpunct"``); None, the default, is none, and then
    ``subword_buckets`` is not used.

    ``autotune=SECONDS`` (``--autotune``) searches the settings that matter (``ngrams``,
    ``buckets``, ``wide_lr``, ``embed``, ``hidden``, ``cell``, ``pool``, ``dropout``, ``lr``,
    ``epochs``)
    within a budget of nominal seconds, scoring each trial on the validation rows, and keeps the
    best model: the same model ``rnn train --autotune`` keeps from the same rows, arguments and
    seed. An argument set to other than its default stays fixed. Trial 0 is the arguments as
    given. ``autotune_`` then holds the trials (a list of dicts), ``best_trial``, and
    ``params``: the arguments the best trial changed (with ``valid_split`` and ``epochs`` when
    the search set them), which make the same model in a plain ``fit``.

    Without ``valid`` in ``fit``, ``valid_split`` of every label's rows is held out to pick the
    best epoch and to stop early (``patience``); the estimator keeps the best epoch's weights.

    ``callback``, if given, is called with a dict for every event of the run: ``{"event":
    "step", "epoch", "done", "total"}`` a few times a second, ``{"event": "epoch", "epoch",
    "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr"}`` after every epoch,
    and ``{"event": "warning", "message"}``. If it returns ``False`` the run stops after its
    current batch, keeping the best weights so far; if it raises, the run stops and ``fit``
    raises that exception. ``verbose=True`` shows a tqdm bar (when tqdm is installed) and a line
    per epoch.

    Ctrl-C during ``fit`` stops the run after its current batch: the estimator keeps the best
    weights so far (or those it had, without a validation set), and ``fit`` then raises
    ``KeyboardInterrupt``.
    """

    _native = _rnn.NativeClassifier

    def __init__(
        self,
        *,
        cell="lstm",
        hidden=64,
        layers=1,
        bidirectional=True,
        embed=64,
        pool="max",
        ngrams=None,
        buckets=None,
        wide_lr=None,
        subwords=None,
        subword_buckets=None,
        dropout=0.3,
        tokens="wordpunct",
        min_count=2,
        max_vocab=None,
        max_len=None,
        initializer="pytorch",
        input_init=1.0,
        optimizer="adam",
        lr=None,
        clip=1.0,
        batch=None,
        epochs=20,
        patience=5,
        schedule="constant",
        class_weight="none",
        valid_split=None,
        shuffle=True,
        seed=0,
        threads=None,
        autotune=None,
        pretrained=None,
        freeze_embed=False,
        verbose=False,
        callback=None,
    ):
        self.cell = cell
        self.hidden = hidden
        self.layers = layers
        self.bidirectional = bidirectional
        self.embed = embed
        self.pool = pool
        self.ngrams = ngrams
        self.buckets = buckets
        self.wide_lr = wide_lr
        self.subwords = subwords
        self.subword_buckets = subword_buckets
        self.dropout = dropout
        self.tokens = tokens
        self.min_count = min_count
        self.max_vocab = max_vocab
        self.max_len = max_len
        self.initializer = initializer
        self.input_init = input_init
        self.optimizer = optimizer
        self.lr = lr
        self.clip = clip
        self.batch = batch
        self.epochs = epochs
        self.patience = patience
        self.schedule = schedule
        self.class_weight = class_weight
        self.valid_split = valid_split
        self.shuffle = shuffle
        self.seed = seed
        self.threads = threads
        self.autotune = autotune
        self.pretrained = pretrained
        self.freeze_embed = freeze_embed
        self.verbose = verbose
        self.callback = callback

    # -- training ---------------------------------------------------------------------------

    def _options(self):
        """The training options as the native module reads them (every key present)."""
        names = _rnn.classifier_defaults().keys()
        options = {name: getattr(self, name) for name in names}
        # how the embedding starts: rnn train's --pretrained and --freeze-embed
        options["pretrained"] = None if self.pretrained is None else os.fspath(self.pretrained)
        options["freeze_embed"] = bool(self.freeze_embed)
        return options

    def fit(self, X, y, valid=None, checkpoint=None, resume=None):
        """Trains on texts ``X`` (a list, NumPy array or pandas Series of str) with labels
        ``y``; ``valid`` is an optional ``(texts, labels)`` pair that then replaces the held-out
        part (``valid_split``). Returns the estimator.

        ``checkpoint`` is a file the run's checkpoint is written to as it goes (at the end of an
        epoch, at most every 10 seconds, and after the last), as ``rnn train`` writes
        ``MODEL.ckpt``; it is kept. ``resume`` is such a checkpoint (this estimator's, or
        ``rnn train --keep-checkpoint``'s): the run goes on from it with its own settings, but
        ``epochs`` (which may raise the limit) and ``threads``, given the same data (and
        ``valid`` exactly when the run had it), and ends as the uninterrupted run would."""
        texts = _texts(X, "X")
        y = _labels(y, len(texts))
        classes = np.unique(y)
        names = _label_names(y)
        valid_texts = valid_labels = None
        if valid is not None:
            try:
                vx, vy = valid
            except (TypeError, ValueError):
                raise ValueError("valid must be a (texts, labels) pair") from None
            valid_texts = _texts(vx, "the validation texts")
            valid_labels = _label_names(_labels(vy, len(valid_texts)))
        model = self._train(
            _rnn.fit_classifier,
            texts,
            names,
            valid_texts,
            valid_labels,
            self._options(),
            checkpoint=checkpoint,
            resume=resume,
        )
        self._set_model(model, classes)
        self.autotune_ = self.report_.get("autotune")
        self._raise_if_interrupted(self.report_)
        return self

    def _set_model(self, model, classes):
        """Takes ``model`` (native) with ``classes`` (in the order ``classes_`` will have)."""
        by_name = {name: i for i, name in enumerate(model.labels)}
        names = _label_names(classes)
        if sorted(by_name) != sorted(names):
            raise ValueError("the model's labels are not the classes given")
        self.model_ = model
        self.classes_ = np.asarray(classes)
        # column j of predict_proba is the model's label order[j]
        self._order = np.array([by_name[n] for n in names], dtype=np.intp)
        self._position = np.argsort(self._order)

    # -- predicting -------------------------------------------------------------------------

    def predict_proba(self, X):
        """The probability of every class for every text: a float32 array of shape
        ``(len(X), len(classes_))``, columns in ``classes_`` order. These are the numbers
        ``rnn predict --probs`` prints for the same model file, bit for bit."""
        check_is_fitted(self, "model_")
        texts = _texts(X, "X")
        data, _ = self.model_.predict(texts, self._threads())
        probs = np.frombuffer(data, dtype="<f4").reshape(len(texts), len(self.classes_))
        return probs[:, self._order]

    def predict_log_proba(self, X):
        """The natural log of :meth:`predict_proba`: a float32 array of shape
        ``(len(X), len(classes_))``, columns in ``classes_`` order, for scikit-learn's
        tools that ask for log-probabilities. As scikit-learn's own classifiers do, it is the
        log of the probabilities, so a class whose probability is 0 in float32 (under about
        1e-45) gets ``-inf``, without a warning."""
        probs = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(probs, out=probs)

    def predict(self, X):
        """The likeliest class of every text (as ``rnn predict`` picks it)."""
        check_is_fitted(self, "model_")
        texts = _texts(X, "X")
        _, best = self.model_.predict(texts, self._threads())
        return self.classes_[self._position[np.asarray(best, dtype=np.intp)]]

    def explain(self, text):
        """The tokens of ``text`` as the model sees them and, after each, the probability of
        every class had the text stopped there (see :class:`Explanation`)."""
        check_is_fitted(self, "model_")
        if not isinstance(text, str):
            raise ValueError(f"explain reads one text (a str), not {type(text).__name__}")
        tokens, data = self.model_.explain(text)
        probs = np.frombuffer(data, dtype="<f4").reshape(len(tokens), len(self.classes_))
        return Explanation(tokens, probs[:, self._order].copy(), self.classes_)

    def _threads(self):
        return 0 if self.threads is None else self.threads

    # -- PyTorch --------------------------------------------------------------------------

    def to_torch(self):
        """The model as a ``torch.nn.Module`` with the file's state dict, loaded with
        ``strict=True``: ``module.predict_proba(texts)`` gives this estimator's
        ``predict_proba`` (to f32 rounding), columns in ``classes_`` order (``module.classes_``);
        ``module(ids)`` gives the logits of a batch of token ids, and ``module.encode(text)`` a
        text's ids, cut by the model's own rule. With n-gram features (``ngrams``) the module
        also has ``wide``, an ``nn.EmbeddingBag`` of the texts' n-gram buckets: ``module(ids,
        module.buckets(text))``. With subword vectors (``subwords``) it has ``subwords``, an
        ``nn.EmbeddingBag(subword_buckets, embed, mode="sum")`` of every token's character
        n-grams, and a token's input is ``(embedding(w) + subwords(its n-grams)) / (1 + their
        number)``: ``grams, gram_offsets = module.grams(text)``, then ``module(ids, ...,
        grams=grams, gram_offsets=gram_offsets)``. Needs PyTorch."""
        check_is_fitted(self, "model_")
        from ._torch import classifier_module

        return classifier_module(self.model_, self._order, self.classes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


def _texts(X, what):
    """``X`` as a list of str: a list, tuple, 1-d NumPy array or pandas Series of texts (or a
    one-column 2-d array or frame, as a pipeline's column selector gives)."""
    if isinstance(X, str):
        raise ValueError(f"{what} must be a sequence of texts, not one str")
    if hasattr(X, "to_numpy"):  # pandas
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"{what} must be a 1-d sequence of texts, not an array of shape {X.shape}")
    try:
        texts = list(X)
    except TypeError:
        raise ValueError(f"{what} must be a sequence of texts, not {type(X).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{what}[{i}] is {type(t).__name__} {t!r}, not a str")
    return texts


def _labels(y, n):
    """``y`` as a 1-d array of ``n`` labels."""
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"the labels must be a 1-d sequence, not an array of shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"{n} texts and {len(y)} labels; every text needs its label")
    return y


def _label_names(y):
    """The labels as the model names them: str, without surrounding white space."""
    return [str(v).strip() for v in y]
