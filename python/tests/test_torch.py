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


def test_the_modules_predict_proba_is_the_estimators(sample):
    # issue 27, item 4: texts in, probabilities out, cut into tokens by the model's own rule
    # (wordpunct: "bad!" is "bad" and "!"), columns in classes_ order even where the file's
    # order differs (labels 10 and 9 are "10" < "9" as strings), and an empty text as rnn
    # predict gives it
    texts, labels, test_texts, _ = sample
    numbers = [10 if label == "positive" else 9 for label in labels]
    clf = rnn.Classifier(hidden=16, epochs=3, threads=1).fit(texts, numbers)
    net = clf.to_torch()
    assert list(net.classes_) == [9, 10] and net.labels == ["10", "9"]
    queries = test_texts + ["the food was not bad!", ""]
    probs = net.predict_proba(queries)
    assert probs.dtype == np.float32 and probs.shape == (len(queries), 2)
    np.testing.assert_allclose(probs, clf.predict_proba(queries), atol=1e-5)
    assert net.predict_proba([]).shape == (0, 2)
    with pytest.raises(ValueError, match="not one str"):
        net.predict_proba("one text")
