"""``rnn.load``: any model file the command line or this package wrote."""

import os

import numpy as np

from . import _rnn
from ._classifier import Classifier


def load(path):
    """Reads a model file: a classifier (``rnn train``, ``Classifier.save``) as a fitted
    :class:`Classifier`, whose parameters are the settings the file records. Its ``classes_``
    are the file's labels, as str."""
    path = os.fspath(path)
    kind = _rnn.model_kind(path)
    if kind == "classifier":
        model = _rnn.NativeClassifier.load(path)
        clf = Classifier(**model.settings())
        clf._set_model(model, np.array(model.labels))
        return clf
    from ._language_model import LanguageModel

    return LanguageModel._from_native(_rnn.NativeLanguageModel.load(path))
