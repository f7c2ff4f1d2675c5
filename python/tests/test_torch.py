"""to_torch(): the model as a PyTorch module, the file's state dict loaded strictly."""

import numpy as np
import pytest

import rnn

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "options",
    [
        dict(),  # the defaults: bidirectional LSTM, embedding, max pooling
        dict(cell="gru", layers=2, pool="mean", embed=0),
        dict(cell="rnn", bidirectional=False, pool="last"),
    ],
)
def test_the_module_gives_predict_proba(sample, options):
    texts, labels, test_texts, _ = sample
    clf = rnn.Classifier(hidden=16, epochs=3, threads=1, **options).fit(texts, labels)
    module = clf.to_torch()
    assert isinstance(module, torch.nn.Module) and module.labels == list(clf.model_.labels)
    with torch.no_grad():
        for text, ours in zip(test_texts, clf.predict_proba(test_texts)):
            p = torch.softmax(module(module.encode(text)), -1)[0].numpy()
            np.testing.assert_allclose(p[clf._order], ours, atol=1e-5)


def test_an_unknown_pooling_is_an_error_not_max():
    # a model file from a newer version may name a pooling this module cannot build: say so,
    # rather than pool another way and give other probabilities
    from rnn._torch import _classifier_class

    meta = {"pool": "median", "cell": "gru", "layers": "1", "bidirectional": "false"}
    with pytest.raises(ValueError, match=r"unknown pooling 'median' .*last, mean, max"):
        _classifier_class()(meta, 5, 4, 2)
