"""Bad input is a Python exception with the command line's message, never a crash."""

import sys

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import rnn
from rnn._base import from_file_bytes

QUICK = dict(hidden=8, embed=8, epochs=2, threads=1)


@pytest.mark.parametrize(
    "option, message",
    [
        (dict(hidden=0), "hidden must be a whole number of at least 1, not 0"),
        (dict(layers=-1), "layers must be a whole number of at least 1, not -1"),
        (dict(cell="transformer"), "unknown cell"),
        (dict(pool="median"), "pool"),
        (dict(tokens="bytes"), "tokens"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(dropout=1.0), "dropout must be at least 0 and less than 1, not 1.0"),
        (dict(lr=-0.1), "lr must be a positive number, not -0.1"),
        (dict(clip=float("nan")), "clip must be a positive number"),
        (dict(valid_split=1.5), "valid_split must be at least 0 and less than 1"),
        (dict(class_weight="heavy"), "class weight"),
        (dict(threads=10_000), "threads"),
        (dict(bidirectional="yes"), "bidirectional must be True or False, not 'yes'"),
        (dict(epochs=2.5), "epochs must be a whole number"),
        (dict(seed=-1), "seed must be a whole number"),
        (dict(ngrams=11), r"ngrams must be None \(the default\) or a whole number from 0 \(none\) to 10, not 11"),
        (dict(ngrams=-1), r"ngrams must be None \(the default\) or a whole number from 0 \(none\) to 10, not -1"),
        (dict(ngrams=2, buckets=0), "buckets must be a whole number of at least 1, not 0"),
        (dict(ngrams=2, buckets=2**32 + 1), r"buckets must be a whole number from 1 to 2\^32"),
        (dict(ngrams=2, wide_lr=0.0), "wide_lr must be a positive number, not 0.0"),
        (dict(subwords="3to6"), r'subwords must be None \(none\), "MIN-MAX" such as "3-6", or a \(MIN, MAX\) pair of whole numbers, not \'3to6\''),
        (dict(subwords=3.5), r"subwords must be None \(none\), .* not 3.5"),
        (dict(subwords=(3, 6, 9)), r"subwords must be None \(none\), .* not \(3, 6, 9\)"),
        (dict(subwords=(-1, 6)), r"subwords must be None \(none\), .* not \(-1, 6\)"),
        (dict(subwords="6-3"), "subwords '6-3': the shortest n-gram must be at least 1 and at most the longest, and the longest at most 20"),
        (dict(subwords=(0, 4)), r"subwords \(0, 4\): the shortest n-gram must be at least 1"),
        (dict(subwords="3-21"), "the longest at most 20"),
        (dict(subwords="3-6", subword_buckets=0), "subword_buckets must be a whole number of at least 1, not 0"),
        (dict(subwords="3-6", subword_buckets=2**31), r"subword_buckets must be a whole number from 1 to 2\^31 - 1, not 2147483648"),
        (dict(subwords="3-6", embed=0), "subwords are vectors of the embedding, which embed=0 turns off"),
        (dict(subwords="3-6", tokens="char"), "subwords needs word tokens"),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(sample, option, message):
    with pytest.raises(ValueError, match=message):
        rnn.Classifier(**{**QUICK, **option}).fit(sample[0], sample[1])


def test_bad_data_is_a_value_error(sample):
    texts, labels = sample[0], sample[1]
    clf = rnn.Classifier(**QUICK)
    with pytest.raises(ValueError, match="at least two labels"):
        clf.fit(texts, ["positive"] * len(texts))
    with pytest.raises(ValueError, match="50 texts and 3 labels"):
        clf.fit(texts, labels[:3])
    with pytest.raises(ValueError, match=r"X\[1\] is int 7, not a str"):
        clf.fit(["a", 7], ["x", "y"])
    with pytest.raises(ValueError, match="not one str"):
        clf.fit("one text", ["x"])
    with pytest.raises(ValueError, match="label of row 2 is empty"):
        clf.fit(["a", "b"], ["x", " "])
    with pytest.raises(ValueError, match=r"<validation data> line 1: the label \"neutral\""):
        clf.fit(texts, labels, valid=(["so so"], ["neutral"]))
    with pytest.raises(ValueError, match="valid must be a"):
        clf.fit(texts, labels, valid=["only texts"])
    with pytest.raises(ValueError, match="callback must be callable"):
        rnn.Classifier(**QUICK, callback=3).fit(texts, labels)


def test_using_an_unfitted_estimator(sample):
    for call in (lambda c: c.predict(["x"]), lambda c: c.predict_proba(["x"]),
                 lambda c: c.predict_log_proba(["x"]),
                 lambda c: c.explain("x"), lambda c: c.save("m.safetensors")):
        with pytest.raises(NotFittedError):
            call(rnn.Classifier())


def test_files_are_os_errors_and_foreign_files_value_errors(sample, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        rnn.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        rnn.load(tmp_path / "junk.safetensors")
    clf = rnn.Classifier(**QUICK).fit(sample[0], sample[1])
    # a missing folder is created (test_classifier.py); a file standing in its way is an error
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(OSError, match="cannot create the folder .*a-file"):
        clf.save(tmp_path / "a-file" / "m.safetensors")
    with pytest.raises(ValueError):
        from_file_bytes(rnn._rnn.NativeClassifier, b"\x00" * 16)


def test_a_diverging_run_is_a_floating_point_error(sample):
    clf = rnn.Classifier(**QUICK, optimizer="sgd", lr=1e38, clip=1e38, cell="rnn")
    with pytest.raises(FloatingPointError, match="training diverged"):
        clf.fit(sample[0], sample[1])


def test_to_torch_without_torch_is_an_import_error(sample, monkeypatch):
    clf = rnn.Classifier(**QUICK).fit(sample[0], sample[1])
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        clf.to_torch()


def test_explain_reads_one_text(sample):
    clf = rnn.Classifier(**QUICK).fit(sample[0], sample[1])
    with pytest.raises(ValueError, match="one text"):
        clf.explain(["a", "b"])
    assert clf.explain("").tokens == [] and clf.explain("").probs.shape == (0, 2)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(layers=10**9, hidden=4), "of memory, and this machine has"),
        (dict(hidden=2**64 - 1), "more than 2\\^64 parameters"),
        (dict(layers=2**64 - 1, hidden=4), "more than 2\\^64 parameters"),
    ],
)
def test_absurd_sizes_are_value_errors_not_a_dead_interpreter(sample, options, message):
    # these aborted (or killed) the interpreter before the network checked its size first
    with pytest.raises(ValueError, match=message):
        rnn.Classifier(epochs=1, **options).fit(sample[0], sample[1])


def test_a_label_with_a_line_break_is_a_value_error(sample):
    # it was accepted, and then broke `rnn predict`'s output of a label a line (issue 28, item 10)
    texts, labels = sample[0], list(sample[1])
    labels[0] = "pos\nitive"
    with pytest.raises(ValueError, match="holds a line break or a tab"):
        rnn.Classifier(epochs=1).fit(texts, labels)


def test_messages_name_the_arguments_not_the_command_lines_flags():
    # the library's messages once named `--batch` and `--bptt` to Python users (issue 25)
    with pytest.raises(ValueError, match=r"use a smaller batch or bptt$"):
        rnn.LanguageModel(bptt=50, batch=32, epochs=1).fit("abc abc abc")
