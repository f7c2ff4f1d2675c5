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
    # no subword vectors: every token's n-grams are none, and the module takes none
    assert clf.model_.grams("zebra food") == [[], []]
    assert module.subword_sizes is None and not hasattr(module, "subwords")
    with pytest.raises(ValueError, match="no subword vectors"):
        module(ids, grams=torch.tensor([1]), gram_offsets=torch.zeros(4, dtype=torch.long))


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


def made_in_torch(clf, tmp_path, seed=11):
    """``clf``'s module with every weight drawn in PyTorch (the tables' rows too, none zero),
    written with the model file's metadata, and rnn's model of that file."""
    from rnn._base import file_bytes
    from rnn._torch import read_safetensors

    meta, _ = read_safetensors(file_bytes(clf.model_))
    module = clf.to_torch()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 1.0 if name in ("wide.weight", "subwords.weight") else 0.5
            p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * scale)
    write_safetensors(tmp_path / "torch.safetensors", meta, module.state_dict())
    return module, rnn.load(tmp_path / "torch.safetensors")


def test_weights_made_in_torch_load_and_give_its_probabilities(wide, tmp_path):
    # every weight drawn in PyTorch, written with the model file's metadata: rnn reads it and
    # gives PyTorch's probabilities
    module, loaded = made_in_torch(wide, tmp_path)
    assert list(loaded.classes_) == list(module.classes_)
    ours, theirs = loaded.predict_proba(QUERIES), module.predict_proba(QUERIES)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    # far from the trained model's: the drawn weights are the ones read
    assert np.abs(theirs - wide.predict_proba(QUERIES)).max() > 0.05


# -- subword vectors: a word's embedding, its row plus its n-grams' mean ------------

SUBWORDS = [
    # fastText's 3- to 6-grams in the default table (2^16 rows), no wide path
    dict(subwords="3-6", ngrams=0),
    # 2- to 4-grams in 500 rows beside the default wide path (word bigrams)
    dict(subwords=(2, 4), subword_buckets=500),
    # 1- to 3-grams in 64 rows (many shared), whitespace words cut to 6, a 2-layer GRU, unigrams
    dict(subwords="1-3", subword_buckets=64, tokens="word", max_len=6, cell="gru", layers=2,
         pool="mean", ngrams=1, buckets=50),
]
# words the sample never had, some of them pieces of its words (good -> goodness), non-ASCII
SUBWORD_QUERIES = QUERIES + [
    "goodness, the foods were badly cold",
    "naïve café déjà vu 日本語 good",
    "ééé è",
]


@pytest.fixture(scope="module", params=range(len(SUBWORDS)),
                ids=["3-6", "2-4-with-bigrams", "1-3-gru-unigrams"])
def subword(request, sample):
    texts, labels = sample[0], sample[1]
    return rnn.Classifier(hidden=8, embed=8, epochs=4, threads=1, seed=2,
                          **SUBWORDS[request.param]).fit(texts, labels)


def test_subword_buckets_is_the_native_hash(subword):
    from rnn._torch import subword_buckets

    # pinned in src/rnn/subwords.rs: FNV-1a of "<ab"; "ab>" the other 3-gram of "ab"
    assert subword_buckets("ab", 3, 3, 2**32)[0] == 0x489C66E4
    assert len(subword_buckets("ab", 1, 4, 2**32)) == 8, "<a <ab <ab> a ab ab> b b>"
    assert subword_buckets("", 3, 6, 1000) == [], '"<>" is too short'
    assert len(subword_buckets("é", 2, 2, 1000)) == 2, "characters, not bytes: <é é>"
    module = subword.to_torch()
    low, high = module.subword_sizes
    size = module.subwords.num_embeddings
    given = subword.subwords
    assert (low, high) == (tuple(map(int, given.split("-"))) if isinstance(given, str) else given)
    assert size == (subword.subword_buckets or 2**16)
    # whitespace words, lowercase, so that a text's tokens are these words under every rule
    words = ["the", "food", "goodness", "zebra", "naïve", "日本語", "é", "ab", "a", "xylophones"]
    native = subword.model_
    for w in words:
        assert native.grams(w) == [subword_buckets(w, low, high, size)], w
    text = " ".join(words)
    grams = native.grams(text)
    assert len(grams) == len(native.encode(text)) == min(len(words), subword.max_len or 99)
    assert grams == [subword_buckets(w, low, high, size) for w in words[: len(grams)]]
    assert native.grams("") == []
    # the module's grams are the same lists, back to back, with where each token's start
    flat, starts = module.grams(text)
    assert flat.tolist() == [b for g in grams for b in g]
    assert starts.tolist() == [sum(len(g) for g in grams[:t]) for t in range(len(grams))]


def test_a_subword_module_gives_the_native_probabilities(subword):
    module = subword.to_torch()
    assert isinstance(module.subwords, torch.nn.EmbeddingBag) and module.subwords.mode == "mean"
    assert module.subwords.weight.shape == (module.subwords.num_embeddings,
                                            module.embedding.embedding_dim)
    np.testing.assert_allclose(module.predict_proba(SUBWORD_QUERIES),
                               subword.predict_proba(SUBWORD_QUERIES), atol=1e-6, rtol=0)
    with torch.no_grad():
        text = "zebra goodness was not good"  # two words the sample never had
        ids, (grams, offsets) = module.encode(text), module.grams(text)
        wide = (module.buckets(text),) if module.ngrams else ()
        assert ids[0] == 0, "an unseen word is <unk> with n-grams of its own"
        ours = module(ids, *wide, grams=grams, gram_offsets=offsets)
        # the n-grams count: without them every word is its row alone
        alone = module(ids, *wide, grams=torch.zeros(0, dtype=torch.long),
                       gram_offsets=torch.zeros(len(ids), dtype=torch.long))
        assert float((ours - alone).abs().max()) > 1e-4
        # a batch of texts of one length: the tokens' n-grams back to back, row by row
        other = " ".join(["good"] * len(ids))
        ids2, (grams2, offsets2) = module.encode(other), module.grams(other)
        wide2 = (module.buckets(other),) if module.ngrams else ()
        bag = (torch.cat([wide[0], wide2[0]]), torch.tensor([0, len(wide[0])])) if wide else ()
        batch = module(torch.stack([ids, ids2]), *bag, grams=torch.cat([grams, grams2]),
                       gram_offsets=torch.cat([offsets, offsets2 + len(grams)]))
        np.testing.assert_allclose(batch[0], ours[0], atol=1e-6, rtol=0)
        np.testing.assert_allclose(batch[1], module(ids2, *wide2, grams=grams2,
                                                    gram_offsets=offsets2)[0], atol=1e-6, rtol=0)
        with pytest.raises(ValueError, match=r"give the tokens' n-grams too"):
            module(ids, *wide)
        with pytest.raises(ValueError, match="need their gram_offsets"):
            module(ids, *wide, grams=grams)
        with pytest.raises(ValueError, match="where the n-grams of each of the 5 tokens start"):
            module(ids, *wide, grams=grams, gram_offsets=offsets[:3])


def test_subword_weights_made_in_torch_load_and_give_its_probabilities(subword, tmp_path):
    module, loaded = made_in_torch(subword, tmp_path, seed=12)
    settings = loaded.model_.settings()
    assert settings["subwords"] == "{}-{}".format(*module.subword_sizes)
    assert settings["subword_buckets"] == module.subwords.num_embeddings
    ours, theirs = loaded.predict_proba(SUBWORD_QUERIES), module.predict_proba(SUBWORD_QUERIES)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    assert np.abs(theirs - subword.predict_proba(SUBWORD_QUERIES)).max() > 0.05
