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
