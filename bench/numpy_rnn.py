#!/usr/bin/env python3
"""The classic per-example numpy Elman RNN classifier, as the project's seed describes it.

One-hot inputs x_t (V x 1), h_t = tanh(Wxh x_t + Whh h_{t-1} + bh) from h_0 = 0, logits
y = Why h_T + by, softmax cross-entropy. One example at a time: full backpropagation through time
(dh_{t-1} = Whh.T dz_t), every gradient clipped element-wise to [-clip, clip], then a plain SGD
step. Weights start at randn / 1000 (as in ../shared/peers/numpy_rnn.py), biases at zero.

Same data rules as the other systems: TSV with `text` and `label` columns (no quoting), tokens
are the lowercased text split on white space, vocabulary `<unk>` then training tokens in order of
first appearance, labels sorted by name.

Timing: `seconds` covers the training loop only (no file reading, no evaluation);
train_tokens_per_s = every token of every epoch / seconds. eval_tokens_per_s times a
forward-only pass over the test texts (tokenise, one-hot, forward, softmax), --eval-repeat times.
The last stdout line is one JSON object.

    python numpy_rnn.py TRAIN.tsv TEST.tsv --epochs 300 --hidden 64 --lr 0.02 --clip 1
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing peer_data.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_data import build_vocab, read_tsv, tokenize  # noqa: E402


class ElmanRNN:
    """The parameters of the network and its per-example forward and backward passes."""

    def __init__(self, vocab_size, hidden, classes, rng):
        self.V, self.H, self.C = vocab_size, hidden, classes
        self.Wxh = rng.standard_normal((hidden, vocab_size)) / 1000
        self.Whh = rng.standard_normal((hidden, hidden)) / 1000
        self.Why = rng.standard_normal((classes, hidden)) / 1000
        self.bh = np.zeros((hidden, 1))
        self.by = np.zeros((classes, 1))

    def one_hots(self, ids):
        """One V x 1 column per token id."""
        xs = []
        for i in ids:
            x = np.zeros((self.V, 1))
            x[i] = 1.0
            xs.append(x)
        return xs

    def forward(self, xs):
        """(hidden states h_0..h_T, class probabilities) for one sequence of one-hot columns."""
        hs = [np.zeros((self.H, 1))]
        for x in xs:
            hs.append(np.tanh(self.Wxh @ x + self.Whh @ hs[-1] + self.bh))
        y = self.Why @ hs[-1] + self.by
        e = np.exp(y - y.max())
        return hs, e / e.sum()

    def train_step(self, ids, target, lr, clip):
        """One SGD step on one example; returns (loss, correct)."""
        xs = self.one_hots(ids)
        hs, p = self.forward(xs)
        loss = -np.log(p[target, 0] + 1e-12)
        correct = int(np.argmax(p) == target)
        dy = p.copy()
        dy[target] -= 1.0
        dWhy = dy @ hs[-1].T
        dby = dy
        dWxh = np.zeros_like(self.Wxh)
        dWhh = np.zeros_like(self.Whh)
        dbh = np.zeros_like(self.bh)
        dh = self.Why.T @ dy
        for t in reversed(range(len(xs))):
            dz = (1.0 - hs[t + 1] ** 2) * dh
            dbh += dz
            dWhh += dz @ hs[t].T
            dWxh += dz @ xs[t].T
            dh = self.Whh.T @ dz
        for param, grad in (
            (self.Wxh, dWxh),
            (self.Whh, dWhh),
            (self.Why, dWhy),
            (self.bh, dbh),
            (self.by, dby),
        ):
            np.clip(grad, -clip, clip, out=grad)
            param -= lr * grad
        return loss, correct

    def predict(self, ids):
        """Class probabilities for one sequence of token ids."""
        return self.forward(self.one_hots(ids))[1]


def evaluate(net, examples):
    """(mean loss, accuracy) on (ids, label) examples."""
    loss, correct = 0.0, 0
    for ids, target in examples:
        p = net.predict(ids)
        loss -= float(np.log(p[target, 0] + 1e-12))
        correct += int(np.argmax(p) == target)
    return loss / len(examples), correct / len(examples)


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("train", help="training TSV")
    p.add_argument("test", help="test TSV")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--clip", type=float, default=1.0, help="element-wise gradient clipping limit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-repeat", type=int, default=1, help="passes over the test set when timing inference")
    return p.parse_args()


def main():
    """Trains, evaluates, times inference, prints one JSON line."""
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    train_rows, test_rows = read_tsv(args.train), read_tsv(args.test)
    train_tokens = [tokenize(text) for text, _ in train_rows]
    vocab = build_vocab(train_tokens)
    labels = {name: i for i, name in enumerate(sorted({label for _, label in train_rows}))}

    def ids_of(text):
        return [vocab.get(t, 0) for t in tokenize(text)]

    train = [([vocab[t] for t in tokens], labels[label]) for tokens, (_, label) in zip(train_tokens, train_rows)]
    test = [(ids_of(text), labels[label]) for text, label in test_rows]
    net = ElmanRNN(len(vocab), args.hidden, len(labels), rng)

    tokens_per_epoch = sum(len(ids) for ids, _ in train)
    order = np.arange(len(train))
    start = time.perf_counter()
    for _ in range(args.epochs):
        rng.shuffle(order)
        for k in order:
            ids, target = train[k]
            net.train_step(ids, target, args.lr, args.clip)
    seconds = time.perf_counter() - start

    train_loss, train_acc = evaluate(net, train)
    test_loss, test_acc = evaluate(net, test)
    eval_tokens = 0
    eval_start = time.perf_counter()
    for _ in range(args.eval_repeat):
        for text, _ in test_rows:
            ids = ids_of(text)
            eval_tokens += len(ids)
            np.argmax(net.predict(ids))
    eval_seconds = time.perf_counter() - eval_start
    print(
        json.dumps(
            {
                "system": "numpy",
                "numpy": np.__version__,
                "threads": 1,
                "epochs": args.epochs,
                "seconds": seconds,
                "train_tokens_per_s": tokens_per_epoch * args.epochs / seconds if seconds > 0 else 0.0,
                "test_acc": test_acc,
                "test_loss": test_loss,
                "train_acc": train_acc,
                "train_loss": train_loss,
                "eval_tokens_per_s": eval_tokens / eval_seconds if eval_seconds > 0 else 0.0,
                "vocab": len(vocab),
                "train_tokens": tokens_per_epoch * args.epochs,
            }
        )
    )


if __name__ == "__main__":
    main()
