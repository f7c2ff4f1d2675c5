"""fit(checkpoint=, resume=): a run's checkpoint written as it goes, and a run continued from it
(or from the command line's) ending as the uninterrupted run does, byte for byte."""

import subprocess

import numpy as np
import pytest

import rnn
from rnn._base import file_bytes


def rows(n=600):
    """Enough rows that 60 are held out for validation, which picks the best epoch."""
    rng = np.random.default_rng(3)
    words = ["good", "bad", "fine", "awful", "film", "plot", "very", "not"]
    texts = [" ".join(rng.choice(words, 4)) for _ in range(n)]
    labels = ["pos" if ("good" in t or "fine" in t) else "neg" for t in texts]
    return texts, labels


SMALL = dict(hidden=8, embed=8, threads=2, seed=5, schedule="plateau", patience=0)


def test_a_run_resumed_from_its_checkpoint_ends_as_the_uninterrupted_run(tmp_path):
    texts, labels = rows()
    whole = rnn.Classifier(epochs=4, **SMALL).fit(texts, labels)
    ckpt = tmp_path / "run.ckpt"
    first = rnn.Classifier(epochs=2, **SMALL).fit(texts, labels, checkpoint=ckpt)
    assert ckpt.exists()  # kept after the run
    assert len(first.history_) == 2
    resumed = rnn.Classifier(epochs=4, **SMALL).fit(texts, labels, resume=ckpt)
    assert [m["epoch"] for m in resumed.history_] == [1, 2, 3, 4]
    assert resumed.history_ == whole.history_
    assert file_bytes(resumed.model_) == file_bytes(whole.model_)


def test_the_command_lines_checkpoint_resumes_in_python(rnn_bin, tmp_path):
    texts, labels = rows()
    with open(tmp_path / "train.tsv", "w", encoding="utf-8") as f:
        f.write("text\tlabel\n")
        f.writelines(f"{t}\t{l}\n" for t, l in zip(texts, labels))
    flags = ["--hidden", "8", "--embed", "8", "--threads", "2", "--seed", "5",
             "--schedule", "plateau", "--patience", "0", "--quiet"]
    train = [rnn_bin, "train", "--train", tmp_path / "train.tsv"]
    subprocess.run([*train, "--model", tmp_path / "whole.safetensors", "--epochs", "4", *flags],
                   check=True)
    subprocess.run([*train, "--model", tmp_path / "half.safetensors", "--epochs", "2",
                    "--keep-checkpoint", *flags], check=True)
    resumed = rnn.Classifier(epochs=4, **SMALL).fit(
        texts, labels, resume=tmp_path / "half.safetensors.ckpt")
    assert file_bytes(resumed.model_) == (tmp_path / "whole.safetensors").read_bytes()


def test_resuming_needs_the_validation_data_the_run_had(tmp_path):
    texts, labels = rows()
    ckpt = tmp_path / "run.ckpt"
    rnn.Classifier(epochs=1, **SMALL).fit(texts, labels, checkpoint=ckpt)
    with pytest.raises(ValueError, match="started without valid:"):
        rnn.Classifier(epochs=2, **SMALL).fit(texts, labels, valid=(texts[:5], labels[:5]),
                                              resume=ckpt)


def test_a_language_models_run_resumes_too(tmp_path):
    text = "the cat sat on the mat. the dog sat on the log. " * 40
    options = dict(hidden=16, layers=1, bptt=8, batch=4, threads=1, seed=2)
    whole = rnn.LanguageModel(epochs=3, **options).fit(text)
    ckpt = tmp_path / "lm.ckpt"
    rnn.LanguageModel(epochs=1, **options).fit(text, checkpoint=ckpt)
    resumed = rnn.LanguageModel(epochs=3, **options).fit(text, resume=ckpt)
    assert file_bytes(resumed.model_) == file_bytes(whole.model_)


def test_a_missing_checkpoint_is_an_os_error(tmp_path):
    texts, labels = rows(60)
    with pytest.raises(OSError):
        rnn.Classifier(epochs=1, **SMALL).fit(texts, labels, resume=tmp_path / "none.ckpt")
