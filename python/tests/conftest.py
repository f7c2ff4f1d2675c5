"""Shared fixtures: the sample sentences of the repository, and the command line's binary."""

import csv
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["text"] for r in rows], [r["label"] for r in rows]


@pytest.fixture(scope="session")
def sample():
    """The demo's sentences: (train texts, train labels, test texts, test labels)."""
    train = read_tsv(REPO / "data/sample/train.tsv")
    test = read_tsv(REPO / "data/sample/test.tsv")
    return train[0], train[1], test[0], test[1]


@pytest.fixture(scope="session")
def rnn_bin():
    """The `rnn` binary: $RNN_BIN, or target/release/rnn, built if missing."""
    path = os.environ.get("RNN_BIN") or str(REPO / "target/release/rnn")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    return path
