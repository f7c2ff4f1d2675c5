"""rnn.LanguageModel: training on a text, sampling, scoring, files, and the command line."""

import inspect
import json
import pickle
import subprocess
import threading
import time

import pytest

import rnn
from rnn._base import file_bytes
from rnn import _rnn

TEXT = "the cat sat on the mat. the dog sat on the log. " * 60
QUICK = dict(hidden=32, layers=1, bptt=16, batch=4, epochs=3, threads=1)


@pytest.fixture(scope="module")
def lm():
    return rnn.LanguageModel(**QUICK).fit(TEXT)


def test_the_defaults_are_the_command_lines():
    ours = {k: p.default for k, p in inspect.signature(rnn.LanguageModel).parameters.items()}
    rust = _rnn.language_model_defaults()
    # how the embedding starts (a file, and whether it is kept) is passed beside the recipe
    assert set(ours) - {"verbose", "callback", "pretrained", "freeze_embed"} == set(rust)
    for name, value in rust.items():
        assert ours[name] == value, name


def test_fit_learns_the_text(lm):
    assert [e["epoch"] for e in lm.history_] == [1, 2, 3]
    assert lm.history_[-1]["valid_loss"] < lm.history_[0]["train_loss"]
    assert lm.best_epoch_ in (1, 2, 3)
    assert lm.vocabulary_[0] == "<unk>" and "c" in lm.vocabulary_
    scored = lm.evaluate(TEXT)
    assert scored["bits"] < 2.5  # of log2(16) = 4 for a uniform guess
    assert scored["tokens"] == len(TEXT) and 0 < scored["accuracy"] <= 1
    assert lm.score(TEXT) == -scored["bits"]  # higher is better, as scikit-learn's scores


def test_generate_is_seeded_and_starts_with_the_prime(lm):
    a = lm.generate("the ", length=40, seed=1)
    assert a.startswith("the ") and len(a) == 44
    assert a == lm.generate("the ", length=40, seed=1)
    assert a != lm.generate("the ", length=40, seed=2)
    greedy = lm.generate("the c", length=20, temperature=0)
    assert greedy == lm.generate("the c", length=20, temperature=0, seed=9)


def test_save_creates_missing_folders_as_the_command_line_does(lm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lm.save("runs/lm.safetensors")
    back = rnn.load("runs/lm.safetensors")
    assert isinstance(back, rnn.LanguageModel)
    assert back.generate("the ", length=30, seed=4) == lm.generate("the ", length=30, seed=4)


def test_generate_and_evaluate_are_the_command_lines(lm, rnn_bin, tmp_path):
    lm.save(tmp_path / "lm.safetensors")
    out = subprocess.run(
        [rnn_bin, "generate", "--model", tmp_path / "lm.safetensors", "--prime", "the d",
         "--length", "50", "--temperature", "0.7", "--top-k", "5", "--seed", "3"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out == lm.generate("the d", length=50, temperature=0.7, top_k=5, seed=3) + "\n"
    (tmp_path / "text.txt").write_text(TEXT[:500])
    cli = json.loads(subprocess.run(
        [rnn_bin, "eval", "--model", tmp_path / "lm.safetensors", "--data", tmp_path / "text.txt",
         "--json"],
        capture_output=True, text=True, check=True,
    ).stdout)
    ours = lm.evaluate(TEXT[:500])
    assert ours["tokens"] == cli["tokens"]
    assert f"{ours['bits']:.6g}" == f"{cli['bits_per_token']:.6g}"


def test_a_model_trained_here_is_the_file_rnn_lm_trains(rnn_bin, tmp_path):
    (tmp_path / "text.txt").write_text(TEXT)
    subprocess.run(
        [rnn_bin, "lm", "--train", tmp_path / "text.txt", "--model", tmp_path / "cli.safetensors",
         "--quiet", "--hidden", "16", "--layers", "1", "--bptt", "16", "--batch", "4",
         "--epochs", "2", "--threads", "1", "--cell", "gru", "--seed", "5"],
        check=True,
    )
    lm = rnn.LanguageModel(hidden=16, layers=1, bptt=16, batch=4, epochs=2, threads=1,
                           cell="gru", seed=5).fit(TEXT)
    assert file_bytes(lm.model_) == (tmp_path / "cli.safetensors").read_bytes()


def test_files_pickles_and_load(lm, tmp_path):
    lm.save(tmp_path / "lm.safetensors")
    back = rnn.load(tmp_path / "lm.safetensors")
    assert isinstance(back, rnn.LanguageModel)
    assert (back.hidden, back.layers, back.tokens) == (32, 1, "char")
    assert back.generate("the ", length=30) == lm.generate("the ", length=30)
    again = pickle.loads(pickle.dumps(lm))
    assert again.generate("the ", length=30) == lm.generate("the ", length=30)


def test_explain_gives_each_tokens_probability(lm):
    steps = lm.explain("the cat", top=3)
    assert [s[0] for s in steps] == list("the cat")
    assert steps[0][1] is None and 0 < steps[1][1] <= 1
    assert len(steps[0][2]) == 3 and steps[0][2][0][1] >= steps[0][2][1][1]


def test_the_callback_can_stop_a_language_model(tmp_path):
    lm = rnn.LanguageModel(**dict(QUICK, epochs=50), callback=lambda e: e["event"] != "epoch")
    lm.fit(TEXT)
    assert len(lm.history_) == 1 and lm.report_["stopped_by_callback"]


def test_bad_input(lm, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        rnn.LanguageModel(**QUICK).fit("")
    with pytest.raises(ValueError, match="fewer than one window"):
        rnn.LanguageModel(**QUICK).fit("a short text")
    with pytest.raises(ValueError, match="temperature must be 0"):
        lm.generate("the", temperature=-1)
    with pytest.raises(ValueError, match="no token the model knows"):
        lm.generate("ZZZ")
    with pytest.raises(ValueError, match="a str or a list of str"):
        rnn.LanguageModel(**QUICK).fit(123)
    with pytest.raises(ValueError, match="bptt must be a whole number of at least 1"):
        rnn.LanguageModel(**dict(QUICK, bptt=0)).fit(TEXT)
    lm.save(tmp_path / "lm.safetensors")
    with pytest.raises(ValueError, match="a language model, not a classifier"):
        _rnn.NativeClassifier.load(str(tmp_path / "lm.safetensors"))


def test_ctrl_c_stops_a_long_generation(lm):
    import _thread
    import signal

    timer = threading.Timer(0.5, _thread.interrupt_main)
    # a background job's shell ignores SIGINT: install Python's handler for the test
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        start = time.time()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            lm.generate("the", length=10**8)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.time() - start < 5


def test_pretrained_vectors_start_the_embedding_as_rnn_lm_s(rnn_bin, tmp_path):
    vectors = tmp_path / "v.vec"
    vectors.write_text("cat 1 2 3\nthe 0.5 0.5 0.5\n")
    flags = dict(QUICK, tokens="word", embed=3, epochs=2, seed=4)
    model = rnn.LanguageModel(**flags, pretrained=vectors, freeze_embed=True).fit(TEXT)
    model.save(tmp_path / "py.safetensors")
    (tmp_path / "text.txt").write_text(TEXT)
    subprocess.run([rnn_bin, "lm", "--train", str(tmp_path / "text.txt"), "--model",
                    str(tmp_path / "cli.safetensors"), "--tokens", "word", "--embed", "3",
                    "--hidden", "32", "--layers", "1", "--bptt", "16", "--batch", "4",
                    "--epochs", "2", "--threads", "1", "--seed", "4", "--pretrained", str(vectors),
                    "--freeze-embed", "--quiet"], check=True)
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()
