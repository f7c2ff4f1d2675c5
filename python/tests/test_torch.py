"""to_torch(): the model as a PyTorch module, the file's state dict loaded strictly."""

import json
import struct

import numpy as np
import pytest

import rnn

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "options",
    [
        dict(),  # the defaults: bidirectional LSTM, embedding, max pooling, word bigrams
        dict(cell="gru", layers=2, pool="mean", embed=0, ngrams=0),
        dict(cell="rnn", bidirectional=False, pool="last", ngrams=0),
    ],
)
def test_the_module_gives_predict_proba(sample, options):
    texts, labels, test_texts, _ = sample
    clf = rnn.Classifier(hidden=16, epochs=3, threads=1, **options).fit(texts, labels)
    module = clf.to_torch()
    assert isinstance(module, torch.nn.Module) and module.labels == list(clf.model_.labels)
    with torch.no_grad():
        for text, ours in zip(test_texts, clf.predict_proba(test_texts)):
            ids = module.encode(text)
            logits = module(ids, module.buckets(text)) if module.ngrams else module(ids)
            p = torch.softmax(logits, -1)[0].numpy()
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


# -- n-gram features: the wide path as nn.EmbeddingBag ------------------------------------

WIDE = [
    # word bigrams in the default table (2^20 rows), beside a bidirectional LSTM
    dict(ngrams=2),
    # character trigrams in 500 rows, texts cut to 20 characters, beside a 2-layer GRU, one-hot
    dict(ngrams=3, buckets=500, tokens="char", max_len=20, cell="gru", layers=2, pool="mean",
         embed=0),
    # unigrams in 7 rows (most words share one), beside a plain cell reading forward
    dict(ngrams=1, buckets=7, cell="rnn", bidirectional=False, pool="last"),
]
# words of the sample, words it never had (their keys are hashes), an empty text
QUERIES = [
    "the food was good",
    "zebra xylophone quux was not good",
    "Never SEEN words and good ones, at all!",
    "",
    "a long text of many words that the model cuts to its max_len when it has one",
]


@pytest.fixture(scope="module", params=range(len(WIDE)), ids=["bigrams", "char-trigrams", "unigrams"])
def wide(request, sample):
    texts, labels = sample[0], sample[1]
    return rnn.Classifier(hidden=8, epochs=4, threads=1, seed=2, **WIDE[request.param]).fit(
        texts, labels
    )


def test_buckets_of_is_the_native_hash(wide):
    from rnn._torch import UNSEEN, buckets_of, unseen_key

    # pinned in src/rnn/wide.rs: the bigram (5, 9) of the default table
    assert buckets_of([5, 9], 2, 2**20) == [5, 9, 837_401]
    native, n, size = wide.model_, wide.ngrams, wide.to_torch().wide.num_embeddings
    assert size == (wide.buckets or 2**18)
    unseen = 0
    for text in QUERIES + ["the food", "quux"]:
        keys = native.keys(text)
        assert buckets_of(keys, n, size) == native.buckets(text), text
        # the network's ids are the keys with every unseen one <unk>
        assert native.encode(text) == [0 if k & UNSEEN else k for k in keys]
        unseen += sum(1 for k in keys if k & UNSEEN)
    assert unseen >= 5
    # an unseen word's key is its hash, as the library computes it
    if wide.tokens != "char":
        assert native.keys("quux") == [unseen_key("quux")]
        assert native.keys("zebra the") == [unseen_key("zebra"), wide.vocabulary_.index("the")]
    else:
        assert native.keys("q") == [unseen_key("q")]


def test_a_wide_module_gives_the_native_probabilities(wide):
    module = wide.to_torch()
    assert isinstance(module.wide, torch.nn.EmbeddingBag) and module.wide.mode == "mean"
    assert float(module.wide.weight.detach().abs().max()) > 0.01, "the table has learnt"
    np.testing.assert_allclose(module.predict_proba(QUERIES), wide.predict_proba(QUERIES),
                               atol=1e-6, rtol=0)
    with torch.no_grad():
        text = QUERIES[1]
        ids, buckets = module.encode(text), module.buckets(text)
        assert len(buckets) > len(ids) or wide.ngrams == 1
        # the bag adds to the logits: without its buckets they are the network's alone
        alone = module(ids, torch.zeros(0, dtype=torch.long))
        assert float((module(ids, buckets) - alone).abs().max()) > 1e-3
        # a batch of texts of one length: buckets back to back, offsets where each starts
        other = "g" * len(ids) if wide.tokens == "char" else " ".join(["good"] * len(ids))
        ids2, buckets2 = module.encode(other), module.buckets(other)
        assert len(ids2) == len(ids)
        batch = module(torch.stack([ids, ids2]), torch.cat([buckets, buckets2]),
                       torch.tensor([0, len(buckets)]))
        np.testing.assert_allclose(batch[0], module(ids, buckets)[0], atol=1e-6, rtol=0)
        np.testing.assert_allclose(batch[1], module(ids2, buckets2)[0], atol=1e-6, rtol=0)
        with pytest.raises(ValueError, match=r"give the texts' buckets too"):
            module(ids)
        with pytest.raises(ValueError, match="need their offsets"):
            module(torch.stack([ids, ids2]), torch.cat([buckets, buckets2]))


def test_a_plain_module_takes_no_buckets(sample):
    clf = rnn.Classifier(hidden=8, epochs=1, threads=1, ngrams=0).fit(sample[0], sample[1])
    module = clf.to_torch()
    assert not hasattr(module, "wide") and module.ngrams == 0
    ids = module.encode("the food was good")
    with pytest.raises(ValueError, match="no n-gram features"):
        module(ids, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="no n-gram features"):
        clf.model_.buckets("the food")
    assert clf.model_.keys("zebra food") == clf.model_.encode("zebra food")


def write_safetensors(path, meta, tensors):
    """A safetensors file of f32 tensors (name -> torch.Tensor) with metadata ``meta``."""
    header, body, offset = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        body.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(body))


def test_weights_made_in_torch_load_and_give_its_probabilities(wide, tmp_path):
    # every weight drawn in PyTorch (the table's rows too, none zero), written with the model
    # file's metadata: rnn reads it and gives PyTorch's probabilities
    from rnn._base import file_bytes
    from rnn._torch import read_safetensors

    meta, _ = read_safetensors(file_bytes(wide.model_))
    module = wide.to_torch()
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 1.0 if name == "wide.weight" else 0.5
            p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * scale)
    write_safetensors(tmp_path / "torch.safetensors", meta, module.state_dict())
    loaded = rnn.load(tmp_path / "torch.safetensors")
    assert list(loaded.classes_) == list(module.classes_)
    ours, theirs = loaded.predict_proba(QUERIES), module.predict_proba(QUERIES)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    # far from the trained model's: the drawn weights are the ones read
    assert np.abs(theirs - wide.predict_proba(QUERIES)).max() > 0.05
