#!/usr/bin/env python3
"""Karpathy's min-char-rnn (gist karpathy/d4dee566867f8291f086, 2015), for bench/lm.py.

    python min_char_rnn.py TEXT [--seconds 60] [--valid-fraction 0.05] [--seed 0] [--no-sample]

The training loop is the original's, ported to Python 3 and kept as it is: a one-layer Elman
RNN (tanh) with H = 100, one-hot input, a softmax at every character, 25 characters a step
(seq_length), gradients by hand, each clipped element-wise to [-5, 5] (np.clip), and Adagrad at
learning rate 0.1 (mem += dparam**2; param -= lr * dparam / sqrt(mem + 1e-8)). Weights are
randn * 0.01, biases zero. hprev is carried from one step to the next; when p + seq_length + 1
>= len(data), the data pointer goes back to 0 and hprev to zero (so the last partial window of
each pass is dropped). Every 100 iterations it samples 200 characters from the model and prints
them, then prints the smoothed loss, as the original does; `--no-sample` drops the sampling
(the loss line stays). The JSON line says which ("sample").

What is not the original's:
- It trains on the training part only, with the data protocol of bench/lm.py and torch_lm.py:
  TEXT is read as UTF-8 with no newline translation, the last `valid_fraction` of the
  characters (cut = len - int(len * f)) are held out, and the vocabulary is the sorted set of
  the training characters plus one unknown id (the last). The original uses list(set(data)) of
  the whole file, in no fixed order.
- np.random.seed(seed) before the weights are drawn.
- It stops when `--seconds` of wall-clock time are spent (checked after every iteration)
  instead of looping forever. Training tokens are 25 per iteration; training seconds include
  the sampling when it is on, as in the original's loop. train_cpu_seconds is the CPU time of
  the same loop (time.process_time): with one BLAS thread, tokens per CPU second is what the
  throughput would be on an otherwise idle core.
- Then it evaluates the validation text with the same numpy forward: one stream, hprev from
  zero and carried across windows of 25, the mean of -log p over every predicted position
  (nats/char); valid_bpc = valid_loss / ln 2. stdout ends with one JSON line.
"""

import argparse
import json
import math
import sys
import time

import numpy as np

HIDDEN_SIZE = 100
SEQ_LENGTH = 25
LEARNING_RATE = 1e-1


def read_text(path):
    """The file as a str of code points (strict UTF-8, no newline translation)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("text", help="a UTF-8 text file")
    p.add_argument("--seconds", type=float, default=60.0, help="wall-clock training budget")
    p.add_argument("--valid-fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sample", dest="sample", action="store_false", help="do not sample 200 characters every 100 iterations")
    return p.parse_args()


args = parse_args()
np.random.seed(args.seed)

# data I/O
text = read_text(args.text)
cut = len(text) - int(len(text) * args.valid_fraction)
data, valid = text[:cut], text[cut:]
chars = sorted(set(data))
data_size, vocab_size = len(data), len(chars) + 1  # + the unknown id
print("data has %d characters, %d unique (+1 unknown)." % (data_size, len(chars)))
char_to_ix = {ch: i for i, ch in enumerate(chars)}
ix_to_char = {i: ch for i, ch in enumerate(chars)}
UNK = len(chars)
ix_to_char[UNK] = "\ufffd"

# hyperparameters
hidden_size = HIDDEN_SIZE  # size of hidden layer of neurons
seq_length = SEQ_LENGTH  # number of steps to unroll the RNN for
learning_rate = LEARNING_RATE

# model parameters
Wxh = np.random.randn(hidden_size, vocab_size) * 0.01  # input to hidden
Whh = np.random.randn(hidden_size, hidden_size) * 0.01  # hidden to hidden
Why = np.random.randn(vocab_size, hidden_size) * 0.01  # hidden to output
bh = np.zeros((hidden_size, 1))  # hidden bias
by = np.zeros((vocab_size, 1))  # output bias


def lossFun(inputs, targets, hprev):
    """
    inputs,targets are both list of integers.
    hprev is Hx1 array of initial hidden state
    returns the loss, gradients on model parameters, and last hidden state
    """
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))  # probabilities for next chars
        loss += -np.log(ps[t][targets[t], 0])  # softmax (cross-entropy loss)
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def sample(h, seed_ix, n):
    """
    sample a sequence of integers from the model
    h is memory state, seed_ix is seed letter for first time step
    """
    x = np.zeros((vocab_size, 1))
    x[seed_ix] = 1
    ixes = []
    for t in range(n):
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        p = np.exp(y) / np.sum(np.exp(y))
        ix = np.random.choice(range(vocab_size), p=p.ravel())
        x = np.zeros((vocab_size, 1))
        x[ix] = 1
        ixes.append(ix)
    return ixes


def valid_loss(text):
    """Mean -log p per predicted position of `text`: the forward of lossFun, one stream, hprev
    from zero and carried across windows of seq_length."""
    ixs = [char_to_ix.get(ch, UNK) for ch in text]
    h = np.zeros((hidden_size, 1))
    total, count = 0.0, 0
    for p in range(0, len(ixs) - 1, seq_length):
        inputs = ixs[p : p + seq_length]
        targets = ixs[p + 1 : p + seq_length + 1]
        for t in range(len(targets)):
            x = np.zeros((vocab_size, 1))
            x[inputs[t]] = 1
            h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
            y = np.dot(Why, h) + by
            prob = np.exp(y) / np.sum(np.exp(y))
            total += -np.log(prob[targets[t], 0])
            count += 1
    return total / max(count, 1), count


n, p = 0, 0
mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
mbh, mby = np.zeros_like(bh), np.zeros_like(by)  # memory variables for Adagrad
smooth_loss = -np.log(1.0 / vocab_size) * seq_length  # loss at iteration 0
passes = 0
start = time.perf_counter()
cpu_start = time.process_time()
while True:
    # prepare inputs (we're sweeping from left to right in steps seq_length long)
    if p + seq_length + 1 >= len(data) or n == 0:
        hprev = np.zeros((hidden_size, 1))  # reset RNN memory
        p = 0  # go from start of data
        if n > 0:
            passes += 1
    inputs = [char_to_ix[ch] for ch in data[p : p + seq_length]]
    targets = [char_to_ix[ch] for ch in data[p + 1 : p + seq_length + 1]]

    # sample from the model now and then
    if args.sample and n % 100 == 0:
        sample_ix = sample(hprev, inputs[0], 200)
        txt = "".join(ix_to_char[ix] for ix in sample_ix)
        print("----\n %s \n----" % (txt,))

    # forward seq_length characters through the net and fetch gradient
    loss, dWxh, dWhh, dWhy, dbh, dby, hprev = lossFun(inputs, targets, hprev)
    smooth_loss = smooth_loss * 0.999 + loss * 0.001
    if n % 100 == 0:
        print("iter %d, loss: %f" % (n, smooth_loss))  # print progress

    # perform parameter update with Adagrad
    for param, dparam, mem in zip([Wxh, Whh, Why, bh, by], [dWxh, dWhh, dWhy, dbh, dby], [mWxh, mWhh, mWhy, mbh, mby]):
        mem += dparam * dparam
        param += -learning_rate * dparam / np.sqrt(mem + 1e-8)  # adagrad update

    p += seq_length  # move data pointer
    n += 1  # iteration counter
    train_seconds = time.perf_counter() - start
    if train_seconds >= args.seconds:
        break

train_cpu_seconds = time.process_time() - cpu_start
sys.stdout.flush()
train_tokens = n * seq_length
eval_start = time.perf_counter()
loss, valid_tokens = valid_loss(valid)
eval_seconds = time.perf_counter() - eval_start
windows_per_pass = len(range(0, len(data) - seq_length - 1, seq_length))  # iterations between resets of p
print(
    json.dumps(
        {
            "system": "min-char-rnn",
            "train_tokens_per_s": train_tokens / train_seconds,
            "train_tokens": train_tokens,
            "train_seconds": train_seconds,
            "train_cpu_seconds": train_cpu_seconds,
            "valid_loss": loss,
            "valid_bpc": loss / math.log(2),
            "valid_tokens": valid_tokens,
            "eval_seconds": eval_seconds,
            "vocab": vocab_size,
            "windows": n,
            "epochs": passes + (p // seq_length) / windows_per_pass,
            "train_chars": len(data),
            "valid_chars": len(valid),
            "smooth_loss": smooth_loss,
            "sample": args.sample,
            "hidden": hidden_size,
            "bptt": seq_length,
            "lr": learning_rate,
            "seed": args.seed,
            "numpy": np.__version__,
        }
    )
)
