"""rnn: recurrent neural networks for text, written from scratch in Rust.

``rnn.Classifier`` is a scikit-learn estimator that trains the library's classifier (what
``rnn train`` trains, with its defaults); ``rnn.load`` reads any model file the command line
wrote, and ``save`` writes files the command line reads. Training runs in Rust without the GIL,
on the same threads as the command line.

    >>> import rnn
    >>> clf = rnn.Classifier(epochs=5).fit(texts, labels)
    >>> clf.predict(["what a lovely day"])
    >>> lm = rnn.LanguageModel(max_seconds=60).fit(open("shakespeare.txt").read())
    >>> print(lm.generate("ROMEO:", length=200, temperature=0.5))
"""

from ._rnn import __version__
from ._classifier import Classifier, Explanation
from ._language_model import LanguageModel
from ._load import load

__all__ = ["Classifier", "Explanation", "LanguageModel", "load", "__version__"]
