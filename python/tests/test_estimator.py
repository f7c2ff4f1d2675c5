"""rnn.Classifier as scikit-learn sees it: parameters, clone, pipelines, cross-validation, grid
search, pickling."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import rnn
from rnn._base import file_bytes

QUICK = dict(hidden=16, embed=16, epochs=10, lr=0.01, min_count=1, threads=2)


def test_get_params_and_set_params():
    clf = rnn.Classifier(hidden=8, cell="gru")
    params = clf.get_params()
    assert params["hidden"] == 8 and params["cell"] == "gru" and params["epochs"] == 20
    assert clf.set_params(hidden=32, lr=0.01) is clf
    assert (clf.hidden, clf.lr) == (32, 0.01)
    with pytest.raises(ValueError):
        clf.set_params(no_such_option=1)


def test_clone_is_unfitted_with_the_same_parameters(sample):
    clf = rnn.Classifier(**QUICK).fit(sample[0], sample[1])
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "model_")
    with pytest.raises(NotFittedError):
        copy.predict(["the food is good"])


def test_in_a_pipeline(sample):
    texts, labels, test_texts, test_labels = sample
    upper = FunctionTransformer(lambda X: [t.upper() for t in X])  # wordpunct lowercases
    pipe = make_pipeline(upper, rnn.Classifier(**QUICK)).fit(texts, labels)
    assert pipe.score(test_texts, test_labels) >= 0.9


def test_cross_val_score(sample):
    texts, labels = sample[0] + sample[2], sample[1] + sample[3]
    scores = cross_val_score(
        rnn.Classifier(**QUICK), texts, labels, cv=StratifiedKFold(3, shuffle=True, random_state=0)
    )
    assert scores.shape == (3,) and scores.mean() >= 0.8


def test_grid_search(sample):
    texts, labels = sample[0] + sample[2], sample[1] + sample[3]
    search = GridSearchCV(
        rnn.Classifier(**QUICK), {"cell": ["rnn", "lstm"], "hidden": [8, 16]}, cv=3
    ).fit(texts, labels)
    assert set(search.best_params_) == {"cell", "hidden"}
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert search.best_estimator_.predict(["the food is good"])[0] in ("positive", "negative")


def test_pickle_keeps_the_model_as_its_file(sample, tmp_path):
    clf = rnn.Classifier(**QUICK).fit(sample[0], sample[1])
    data = pickle.dumps(clf)
    back = pickle.loads(data)
    texts = sample[2]
    assert np.array_equal(back.predict_proba(texts), clf.predict_proba(texts))
    assert back.get_params() == clf.get_params()
    # the original is untouched by pickling
    assert clf.predict(texts[:1]).shape == (1,)
    clf.save(tmp_path / "m.safetensors")
    assert file_bytes(back.model_) == (tmp_path / "m.safetensors").read_bytes()
    # an unfitted estimator pickles too
    assert pickle.loads(pickle.dumps(rnn.Classifier(hidden=3))).hidden == 3
