"""rnn.Classifier: training, predictions, files, and agreement with the command line."""

import inspect
import json
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest

import rnn
from rnn import _rnn
from rnn._base import file_bytes

# small and quick, but a real run: held-out validation is off for 50 rows (under 50 held out)
QUICK = dict(hidden=16, embed=16, epochs=15, lr=0.01, min_count=1, threads=2)


@pytest.fixture(scope="module")
def fitted(sample):
    texts, labels, _, _ = sample
    return rnn.Classifier(**QUICK).fit(texts, labels)


def test_the_defaults_are_the_command_lines(sample):
    signature = inspect.signature(rnn.Classifier)
    ours = {k: p.default for k, p in signature.parameters.items()}
    rust = _rnn.classifier_defaults()
    # how the embedding starts (a file, and whether it is kept) is passed beside the recipe
    assert set(ours) - {"verbose", "callback", "pretrained", "freeze_embed"} == set(rust)
    for name, value in rust.items():
        assert ours[name] == value, name


def test_fit_learns_the_sample_and_reports_every_epoch(sample, fitted):
    _, _, test_texts, test_labels = sample
    assert list(fitted.classes_) == ["negative", "positive"]
    assert fitted.score(test_texts, test_labels) >= 0.9
    assert [e["epoch"] for e in fitted.history_] == list(range(1, 16))
    assert fitted.history_[-1]["train_loss"] < fitted.history_[0]["train_loss"]
    assert fitted.history_[0]["valid_loss"] is None  # 50 rows: nothing held out
    assert fitted.report_["interrupted"] is False


def test_predict_proba_is_float32_rows_that_sum_to_one_in_classes_order(sample, fitted):
    texts = sample[2]
    probs = fitted.predict_proba(texts)
    assert probs.dtype == np.float32 and probs.shape == (len(texts), 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert list(fitted.predict(texts)) == list(fitted.classes_[probs.argmax(1)])


def test_predict_log_proba_is_the_log_of_predict_proba(sample, fitted):
    texts = sample[2] + ["words it has never seen", ""]
    probs = fitted.predict_proba(texts)
    logs = fitted.predict_log_proba(texts)
    assert logs.dtype == np.float32 and logs.shape == (len(texts), 2)
    assert np.array_equal(logs, np.log(probs))
    assert (logs <= 0).all()
    np.testing.assert_allclose(np.exp(logs).sum(1), 1.0, atol=1e-6)
    assert list(fitted.predict(texts)) == list(fitted.classes_[logs.argmax(1)])


def test_a_probability_of_zero_has_a_log_of_minus_infinity_without_a_warning(fitted, monkeypatch):
    # float32 probabilities under about 1e-45 are 0
    underflow = np.array([[1.0, 0.0]], dtype=np.float32)
    monkeypatch.setattr(fitted, "predict_proba", lambda X: underflow.copy())
    with np.errstate(all="raise"):
        logs = fitted.predict_log_proba(["anything"])
    assert logs.tolist() == [[0.0, -np.inf]]


def test_lists_arrays_and_series_are_the_same_input(sample, fitted):
    texts = sample[2]
    a = fitted.predict_proba(texts)
    assert np.array_equal(a, fitted.predict_proba(np.array(texts, dtype=object)))
    assert np.array_equal(a, fitted.predict_proba(pd.Series(texts)))
    assert np.array_equal(a, fitted.predict_proba(np.array(texts)[:, None]))


def test_integer_labels_keep_their_type_and_order(sample):
    texts, labels, test_texts, _ = sample
    # as str the model sorts them 10 < 2; classes_ is numeric: 2 < 10
    y = np.array([10 if l == "positive" else 2 for l in labels])
    clf = rnn.Classifier(**QUICK).fit(pd.Series(texts), pd.Series(y))
    assert list(clf.classes_) == [2, 10] and clf.classes_.dtype.kind == "i"
    probs = clf.predict_proba(test_texts)
    assert list(clf.predict(test_texts)) == list(clf.classes_[probs.argmax(1)])
    assert clf.model_.labels == ["10", "2"]  # the model's own order: its file's labels
    assert clf.score(test_texts, [10 if l == "positive" else 2 for l in sample[3]]) >= 0.9


def test_the_same_seed_gives_the_same_model_and_another_seed_another(sample):
    texts, labels = sample[0], sample[1]
    a = file_bytes(rnn.Classifier(**QUICK, seed=3).fit(texts, labels).model_)
    b = file_bytes(rnn.Classifier(**QUICK, seed=3).fit(texts, labels).model_)
    c = file_bytes(rnn.Classifier(**QUICK, seed=4).fit(texts, labels).model_)
    assert a == b and a != c


def test_a_validation_pair_picks_the_best_epoch(sample):
    texts, labels, vt, vl = sample
    clf = rnn.Classifier(**dict(QUICK, epochs=8), patience=2).fit(texts, labels, valid=(vt, vl))
    assert clf.best_epoch_ is not None and 1 <= clf.best_epoch_ <= 8
    assert all(e["valid_accuracy"] is not None for e in clf.history_)


def test_explain_ends_with_the_prediction(fitted):
    text = "the food was not bad at all"
    e = fitted.explain(text)
    assert e.tokens[:5] == ["the", "food", "was", "not", "bad"]
    assert e.probs.shape == (len(e.tokens), 2)
    assert list(e.classes) == list(fitted.classes_)
    # the same network, run one token at a time rather than as one batch: equal to rounding
    np.testing.assert_allclose(e.probs[-1], fitted.predict_proba([text])[0], atol=1e-6)


# -- the command line's files and numbers ---------------------------------------------------


def write_tsv(path, texts, labels):
    with open(path, "w", encoding="utf-8") as f:
        f.write("text\tlabel\n")
        for t, l in zip(texts, labels):
            f.write(f"{t}\t{l}\n")


def test_a_model_trained_here_is_the_file_the_command_line_trains(sample, rnn_bin, tmp_path):
    texts, labels = sample[0], sample[1]
    write_tsv(tmp_path / "train.tsv", texts, labels)
    flags = ["--hidden", "16", "--embed", "16", "--epochs", "6", "--threads", "2", "--seed", "7",
             "--cell", "gru", "--pool", "mean", "--class-weight", "balanced"]
    subprocess.run(
        [rnn_bin, "train", "--train", tmp_path / "train.tsv", "--model", tmp_path / "cli.safetensors",
         "--quiet", *flags],
        check=True,
    )
    clf = rnn.Classifier(hidden=16, embed=16, epochs=6, threads=2, seed=7, cell="gru",
                         pool="mean", class_weight="balanced").fit(texts, labels)
    clf.save(tmp_path / "py.safetensors")
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()


# the small network both sides of the tests below train: Classifier's arguments, rnn train's flags
SMALL = dict(hidden=8, embed=8, epochs=4, threads=2, seed=5)
SMALL_FLAGS = ["--hidden", "8", "--embed", "8", "--epochs", "4", "--threads", "2", "--seed", "5"]


def same_file_both_ways(sample, rnn_bin, tmp_path, options, flags):
    """Trains the sample with the small network and ``options`` in Python and with ``flags`` on
    the command line, checks that the two model files are the same bytes, and returns them."""
    texts, labels = sample[0], sample[1]
    write_tsv(tmp_path / "train.tsv", texts, labels)
    subprocess.run(
        [rnn_bin, "train", "--train", tmp_path / "train.tsv", "--model", tmp_path / "cli.safetensors",
         "--quiet", *SMALL_FLAGS, *flags],
        check=True,
    )
    ours = file_bytes(rnn.Classifier(**SMALL, **options).fit(texts, labels).model_)
    assert ours == (tmp_path / "cli.safetensors").read_bytes()
    return ours


@pytest.mark.parametrize(
    "options, flags",
    [
        (dict(ngrams=2), ["--ngrams", "2"]),
        (dict(ngrams=3, buckets=4096, wide_lr=0.05, tokens="char", cell="gru"),
         ["--ngrams", "3", "--buckets", "4096", "--wide-lr", "0.05", "--tokens", "char",
          "--cell", "gru"]),
    ],
)
def test_ngrams_train_the_file_the_command_line_trains(sample, rnn_bin, tmp_path, options, flags):
    texts, labels = sample[0], sample[1]
    common = SMALL
    ours = same_file_both_ways(sample, rnn_bin, tmp_path, options, flags)
    # the n-grams' table is there and has learnt, at the rate asked for
    from rnn._torch import read_safetensors

    meta, tensors = read_safetensors(ours)
    buckets = options.get("buckets", 2**18)
    assert (meta["ngrams"], meta["buckets"]) == (str(options["ngrams"]), str(buckets))
    assert tensors["wide.weight"].shape == (buckets, 2)
    assert float(tensors["wide.weight"].abs().max()) > 0.01
    other_rate = dict(options, wide_lr=options.get("wide_lr", 0.1) * 2)
    assert file_bytes(rnn.Classifier(**common, **other_rate).fit(texts, labels).model_) != ours
    # a loaded file's settings are the model's: with the run's other settings they train it again
    (tmp_path / "py.safetensors").write_bytes(ours)
    params = rnn.load(tmp_path / "py.safetensors").get_params()
    assert (params["ngrams"], params["buckets"]) == (options["ngrams"], buckets)
    again = rnn.Classifier(**{**params, **common, "wide_lr": options.get("wide_lr")})
    assert file_bytes(again.fit(texts, labels).model_) == ours


@pytest.mark.parametrize(
    "options, flags",
    [
        (dict(subwords="3-6"), ["--subwords", "3-6"]),
        (dict(subwords=(2, 4), subword_buckets=1000, ngrams=0, tokens="word", cell="gru"),
         ["--subwords", "2-4", "--subword-buckets", "1000", "--ngrams", "0", "--tokens", "word",
          "--cell", "gru"]),
    ],
)
def test_subwords_train_the_file_the_command_line_trains(sample, rnn_bin, tmp_path, options,
                                                         flags):
    texts, labels = sample[0], sample[1]
    common = SMALL
    ours = same_file_both_ways(sample, rnn_bin, tmp_path, options, flags)
    # the n-grams' table, E floats a row, and the file says its sizes
    from rnn._torch import read_safetensors

    meta, tensors = read_safetensors(ours)
    sizes = flags[flags.index("--subwords") + 1]
    buckets = options.get("subword_buckets") or 2**16
    assert (meta["subwords"], meta["subword_buckets"]) == (sizes, str(buckets))
    assert tensors["subwords.weight"].shape == (buckets, 8)
    # a pair, a list and "MIN-MAX" are the same sizes
    low, high = map(int, sizes.split("-"))
    for same in [sizes, (low, high), [low, high]]:
        again = rnn.Classifier(**common, **{**options, "subwords": same}).fit(texts, labels)
        assert file_bytes(again.model_) == ours, same
    # a loaded file's settings are the model's: with the run's other settings they train it again
    (tmp_path / "py.safetensors").write_bytes(ours)
    params = rnn.load(tmp_path / "py.safetensors").get_params()
    assert (params["subwords"], params["subword_buckets"]) == (sizes, buckets)
    assert file_bytes(rnn.Classifier(**{**params, **common}).fit(texts, labels).model_) == ours
    # without subwords (subword_buckets then unused), another model
    plain = {**options, "subwords": None}
    assert file_bytes(rnn.Classifier(**common, **plain).fit(texts, labels).model_) != ours


def test_autotune_keeps_subwords_as_the_command_line_does(sample, rnn_bin, tmp_path):
    # subwords are no knob of the search: every trial has them, as rnn train --autotune's
    texts, labels = sample[0], sample[1]
    write_tsv(tmp_path / "train.tsv", texts, labels)
    subprocess.run(
        [rnn_bin, "train", "--train", tmp_path / "train.tsv", "--model", tmp_path / "cli.safetensors",
         "--quiet", "--embed", "8", "--autotune", "0.3", "--seed", "3", "--threads", "2",
         "--subwords", "2-5", "--subword-buckets", "300"],
        check=True,
    )
    options = dict(embed=8, seed=3, threads=2, subwords="2-5", subword_buckets=300)
    clf = rnn.Classifier(**options, autotune=0.3).fit(texts, labels)
    ours = file_bytes(clf.model_)
    assert ours == (tmp_path / "cli.safetensors").read_bytes()
    assert clf.model_.settings()["subwords"] == "2-5"
    trials = clf.autotune_["trials"]
    assert len(trials) >= 3
    assert all("subwords" not in t["params"] and "embed" not in t["params"] for t in trials)
    params = clf.autotune_["params"]
    assert file_bytes(rnn.Classifier(**options, **params).fit(texts, labels).model_) == ours


def test_autotune_keeps_the_model_the_command_line_keeps(sample, rnn_bin, tmp_path):
    texts, labels = sample[0], sample[1]
    write_tsv(tmp_path / "train.tsv", texts, labels)
    subprocess.run(
        [rnn_bin, "train", "--train", tmp_path / "train.tsv", "--model", tmp_path / "cli.safetensors",
         "--quiet", "--embed", "8", "--autotune", "0.3", "--seed", "3", "--threads", "2"],
        check=True,
    )
    events = []
    options = dict(embed=8, seed=3, threads=2)
    clf = rnn.Classifier(**options, autotune=0.3, callback=events.append).fit(texts, labels)
    ours = file_bytes(clf.model_)
    assert ours == (tmp_path / "cli.safetensors").read_bytes()
    trials = clf.autotune_["trials"]
    assert len(trials) >= 3 and trials[0]["number"] == 0 and trials[0]["params"] == {}
    heard = [{k: v for k, v in e.items() if k != "event"} for e in events if e["event"] == "trial"]
    assert heard == trials
    best = clf.autotune_["best_trial"]
    assert trials[best]["best"] and trials[best]["valid_accuracy"] >= trials[0]["valid_accuracy"]
    # each later trial's sign test against the best before it, and the level it needed
    assert trials[0]["p"] is None and trials[0]["level"] is None
    for t in trials[1:]:
        assert t["level"] == pytest.approx(0.1 / (t["number"] * (t["number"] + 1)))
        assert 0 < t["p"] <= 1
        assert t["best"] == (t["gained"] > t["lost"] and t["p"] <= t["level"])
    # 50 rows: the search held out a tenth, which a plain fit must be told
    params = clf.autotune_["params"]
    assert params["valid_split"] == 0.1
    assert file_bytes(rnn.Classifier(**options, **params).fit(texts, labels).model_) == ours
    # an argument set to other than its default stays as it is
    fixed = rnn.Classifier(**options, hidden=8, autotune=0.3).fit(texts, labels)
    assert len(fixed.autotune_["trials"]) >= 3
    assert all("hidden" not in t["params"] and "embed" not in t["params"]
               for t in fixed.autotune_["trials"])
    assert rnn.Classifier(**options).fit(texts, labels).autotune_ is None
    # validation rows of its own: nothing is held out, and the trials are scored on them
    valid = (sample[2], sample[3])
    own = rnn.Classifier(**options, autotune=0.3).fit(texts, labels, valid=valid)
    assert "valid_split" not in own.autotune_["params"]
    assert own.history_[0]["valid_loss"] is not None


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), "soon"])
def test_autotune_needs_a_positive_number_of_seconds(sample, seconds):
    with pytest.raises(ValueError, match="autotune must be"):
        rnn.Classifier(autotune=seconds).fit(sample[0], sample[1])


def test_autotune_takes_no_checkpoint(sample, tmp_path):
    with pytest.raises(ValueError, match="autotune runs new trials"):
        rnn.Classifier(autotune=1).fit(sample[0], sample[1], checkpoint=tmp_path / "c.ckpt")


def test_with_a_held_out_part_too(rnn_bin, tmp_path):
    # 600 rows: 60 are held out, by the seed, as the command line holds them out
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "awful", "film", "plot", "very", "not"]
    texts = [" ".join(rng.choice(words, 4)) for _ in range(600)]
    labels = ["pos" if ("good" in t or "fine" in t) else "neg" for t in texts]
    write_tsv(tmp_path / "train.tsv", texts, labels)
    subprocess.run(
        [rnn_bin, "train", "--train", tmp_path / "train.tsv", "--model", tmp_path / "cli.safetensors",
         "--quiet", "--hidden", "8", "--embed", "8", "--epochs", "3", "--threads", "2", "--seed", "1"],
        check=True,
    )
    clf = rnn.Classifier(hidden=8, embed=8, epochs=3, threads=2, seed=1).fit(texts, labels)
    assert clf.history_[0]["valid_loss"] is not None
    assert file_bytes(clf.model_) == (tmp_path / "cli.safetensors").read_bytes()


def test_predict_proba_is_what_rnn_predict_prints_bit_for_bit(sample, fitted, rnn_bin, tmp_path):
    texts = sample[2] + ["words it has never seen", ""]
    fitted.save(tmp_path / "m.safetensors")
    out = subprocess.run(
        [rnn_bin, "predict", "--model", tmp_path / "m.safetensors", "--probs"],
        input="\n".join(texts) + "\n", capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    assert len(out) == len(texts)
    cli = np.array(
        [[json.loads(line)["probs"][c] for c in fitted.classes_] for line in out], dtype=np.float32
    )
    ours = fitted.predict_proba(texts)
    assert ours.tobytes() == cli.tobytes()


def test_load_reads_a_file_the_command_line_wrote(sample, rnn_bin, tmp_path):
    texts, labels = sample[0], sample[1]
    write_tsv(tmp_path / "train.tsv", texts, labels)
    subprocess.run(
        [rnn_bin, "train", "--train", tmp_path / "train.tsv", "--model", tmp_path / "m.safetensors",
         "--quiet", "--hidden", "12", "--cell", "rnn", "--layers", "2", "--epochs", "2"],
        check=True,
    )
    clf = rnn.load(tmp_path / "m.safetensors")
    assert isinstance(clf, rnn.Classifier)
    params = clf.get_params()
    assert (params["hidden"], params["cell"], params["layers"]) == (12, "rnn", 2)
    # the command line's default wide path: word bigrams in 2^18 buckets
    assert (params["ngrams"], params["buckets"]) == (2, 2**18)
    assert list(clf.classes_) == ["negative", "positive"]
    assert clf.predict_proba(["the food is good"]).shape == (1, 2)


def test_save_creates_missing_folders_as_the_command_line_does(fitted, tmp_path, monkeypatch):
    # The README's example: it raised "OSError: the folder runs does not exist".
    monkeypatch.chdir(tmp_path)
    fitted.save("runs/sentiment.safetensors")
    fitted.save(tmp_path / "deeper" / "still" / "m.safetensors")
    texts = ["the food is good", "this was bad"]
    for path in ("runs/sentiment.safetensors", tmp_path / "deeper/still/m.safetensors"):
        assert np.array_equal(rnn.load(path).predict_proba(texts), fitted.predict_proba(texts))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["sentiment.safetensors"]


def test_save_and_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m.safetensors")
    back = rnn.load(str(tmp_path / "m.safetensors"))
    texts = ["the food is good", "this was bad"]
    assert np.array_equal(back.predict_proba(texts), fitted.predict_proba(texts))
    assert back.vocabulary_ == fitted.vocabulary_ and back.vocabulary_[0] == "<unk>"


# -- Python's conventions: threads, the GIL, callbacks, Ctrl-C --------------------------------


def test_training_releases_the_gil(sample):
    texts, labels = sample[0] * 400, sample[1] * 400
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    start = time.time()
    rnn.Classifier(hidden=64, epochs=2, threads=1, patience=0).fit(texts, labels)
    seconds = time.time() - start
    done.set()
    counter.join()
    # a thread that held the GIL for the run would leave the counter at a handful
    assert seconds > 0.2, "the run is too short to tell"
    assert len(ticks) > seconds * 100


def test_the_callback_hears_steps_epochs_and_can_stop_the_run(sample):
    texts, labels = sample[0], sample[1]
    events = []
    rnn.Classifier(**dict(QUICK, epochs=3), callback=events.append).fit(texts, labels)
    kinds = [e["event"] for e in events]
    assert kinds.count("epoch") == 3 and "step" in kinds
    step = next(e for e in events if e["event"] == "step")
    assert step["total"] == 50 and 0 < step["done"] <= 50

    def stop_after_two(event):
        return not (event["event"] == "epoch" and event["epoch"] == 2)

    clf = rnn.Classifier(**dict(QUICK, epochs=50), callback=stop_after_two).fit(texts, labels)
    assert len(clf.history_) == 2 and clf.report_["stopped_by_callback"]
    assert clf.predict(["the food is good"]).shape == (1,)


def test_an_exception_in_the_callback_ends_fit(sample):
    def boom(event):
        raise RuntimeError("from the callback")

    clf = rnn.Classifier(**QUICK, callback=boom)
    with pytest.raises(RuntimeError, match="from the callback"):
        clf.fit(sample[0], sample[1])
    assert not hasattr(clf, "model_")


def test_ctrl_c_stops_training_and_keeps_the_weights(sample):
    import _thread
    import signal

    texts, labels = sample[0] * 20, sample[1] * 20
    clf = rnn.Classifier(hidden=32, epochs=10_000, patience=0, threads=1)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    # A shell starts a background job with SIGINT ignored, and then Python installs no
    # KeyboardInterrupt handler and interrupt_main does nothing: install it for the test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        start = time.time()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            clf.fit(texts, labels)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.time() - start < 5
    assert clf.report_["keyboard_interrupt"] and clf.report_["interrupted"]
    assert 0 < len(clf.history_) < 10_000
    assert clf.predict_proba(["the food is good"]).shape == (1, 2)


def test_verbose_prints_every_epoch(sample, capsys):
    rnn.Classifier(**dict(QUICK, epochs=2), verbose=True).fit(sample[0], sample[1])
    err = capsys.readouterr().err
    assert "epoch 1: train loss" in err and "epoch 2: train loss" in err


def test_pretrained_vectors_start_the_embedding_as_the_command_line_s(sample, rnn_bin, tmp_path):
    texts, labels = sample[0], sample[1]
    vectors = tmp_path / "v.vec"
    vectors.write_text("2 4\nfood 1 2 3 4\ngood 0.5 0.5 0.5 0.5\n")
    flags = dict(hidden=8, embed=4, epochs=2, threads=1, seed=3)
    clf = rnn.Classifier(**flags, pretrained=vectors, freeze_embed=True).fit(texts, labels)
    clf.save(tmp_path / "py.safetensors")
    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in zip(texts, labels)))
    subprocess.run([rnn_bin, "train", "--train", str(data), "--model", str(tmp_path / "cli.safetensors"),
                    "--hidden", "8", "--embed", "4", "--epochs", "2", "--threads", "1", "--seed",
                    "3", "--pretrained", str(vectors), "--freeze-embed", "--quiet"], check=True)
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()
    with pytest.raises(ValueError, match="its vectors have 4 numbers and the embedding 8: give embed 4"):
        rnn.Classifier(hidden=8, embed=8, epochs=1, pretrained=vectors).fit(texts, labels)
    with pytest.raises(ValueError, match=r"freeze_embed needs an embedding.*\(embed 0\)"):
        rnn.Classifier(hidden=8, embed=0, epochs=1, freeze_embed=True).fit(texts, labels)
