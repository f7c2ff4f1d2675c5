#!/usr/bin/env python3
"""A character-level language model in PyTorch on CPU, as a user would write it, for bench/lm.py.

    python torch_lm.py TEXT [--cell rnn|gru|lstm] [--hidden 256] [--layers 2] [--embed 0]
        [--bptt 50] [--batch 32] [--optimizer sgd|adam|adagrad] [--lr 0.002] [--clip 5]
        [--seconds 60] [--threads 2] [--valid-fraction 0.05] [--seed 0]

Data (the same protocol as `rnn lm --tokens char`):
- TEXT is read as UTF-8 text, with no newline translation; a token is one Unicode code point.
- The last `valid_fraction` of the characters are validation: cut = len - int(len * f).
- The vocabulary is the sorted set of the training part's characters, plus one id for
  characters not in it (the last id); `vocab` in the output counts it.
- The n training ids are cut into B contiguous streams of L = (n - 1) // B inputs each (the rest
  is dropped): stream b has inputs ids[b*L : b*L + L] and targets ids[b*L + 1 : b*L + L + 1],
  so each of the B*L transitions is predicted once (the target of a stream's last input is the
  next stream's first input). An epoch walks the streams in windows of T steps: window k holds
  steps k*T .. min((k+1)*T, L) of every stream, so the last window may be shorter. The hidden
  state is carried from one window to the next (detached: truncated BPTT) and is zero at the
  start of every epoch. This is `rnn lm`'s src/train/text.rs, step for step.

Model: one-hot input (`--embed 0`: F.one_hot(...).float(), as Karpathy's char-rnn does) or
nn.Embedding(V, E) -> nn.RNN (tanh) / nn.GRU / nn.LSTM (batch_first, L layers, H units) ->
nn.Linear(H, V); the loss of a window is the mean cross-entropy over its B*T positions. Gradients
are clipped element-wise (clip_grad_value_, none with --clip 0) before each optimizer step
(torch.optim.SGD, Adam or Adagrad with their default settings but lr). PyTorch's default
initialisation, torch.manual_seed(seed).

Training runs until `--seconds` of wall-clock time are spent (checked after every window; epochs
repeat). Training tokens are the predicted positions (B x window length, summed); training
seconds cover batching, forward, backward, clipping and the update, not reading the file or
evaluating; train_cpu_seconds is the CPU time of the same loop, all threads together. Then the
validation text is cut into min(B, n - 1) streams the same way and walked in windows of T with the state carried from zero, without gradients;
valid_loss is the mean loss over every predicted position (nats/char), valid_bpc = valid_loss /
ln 2. Progress goes to stderr every 10 s; stdout ends with one JSON line.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}
PROGRESS_EVERY_S = 10.0


def read_text(path):
    """The file as a str of code points (strict UTF-8, no newline translation)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def split(text, valid_fraction):
    """(train, valid): the last int(len * valid_fraction) characters are validation."""
    cut = len(text) - int(len(text) * valid_fraction)
    return text[:cut], text[cut:]


def vocabulary(train):
    """{char: id} of the sorted training characters; the unknown id is len(result)."""
    return {c: i for i, c in enumerate(sorted(set(train)))}


def encode(text, ids):
    """A LongTensor of ids, the unknown id for characters not in `ids`."""
    unk = len(ids)
    return torch.tensor([ids.get(c, unk) for c in text], dtype=torch.long)


def streams(tokens, batch):
    """(inputs, targets): B x L rows, L = (n - 1) // B, targets one token ahead of inputs."""
    length = (len(tokens) - 1) // batch
    if length < 1:
        raise SystemExit(f"a text of {len(tokens)} characters is too short for {batch} streams")
    inputs = tokens[: batch * length].view(batch, length)
    targets = tokens[1 : batch * length + 1].view(batch, length)
    return inputs, targets


def windows(rows, bptt):
    """(input, target) slices of B x T (the last may be shorter), every transition once."""
    inputs, targets = rows
    length = inputs.shape[1]
    return [(inputs[:, s : s + bptt], targets[:, s : s + bptt]) for s in range(0, length, bptt)]


class CharModel(nn.Module):
    """(one-hot or embedding) -> RNN/GRU/LSTM -> Linear(H, V)."""

    def __init__(self, vocab, cell, hidden, layers, embed):
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab, embed) if embed > 0 else None
        self.rnn = CELLS[cell](embed if embed > 0 else vocab, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        inputs = self.embed(x) if self.embed is not None else F.one_hot(x, self.vocab).float()
        outputs, state = self.rnn(inputs, state)
        return self.out(outputs), state


def detach(state):
    """The hidden state cut from the graph (a tensor, or LSTM's (h, c))."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def window_loss(model, x, y, state):
    """(mean cross-entropy over the window's positions, new state)."""
    logits, state = model(x, state)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), state


def train(model, rows, args):
    """Trains until args.seconds are spent; returns (tokens, seconds, cpu seconds, windows, epochs)."""
    optimizer = OPTIMIZERS[args.optimizer](model.parameters(), lr=args.lr)
    epoch_windows = windows(rows, args.bptt)
    if not epoch_windows:
        raise SystemExit("the training text is too short for the batch")
    tokens = done = 0
    epoch = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    last_report = start
    elapsed = 0.0
    model.train()
    while elapsed < args.seconds:
        state = None
        for i, (x, y) in enumerate(epoch_windows):
            loss, state = window_loss(model, x, y, state)
            optimizer.zero_grad()
            loss.backward()
            if args.clip > 0:
                nn.utils.clip_grad_value_(model.parameters(), args.clip)
            optimizer.step()
            state = detach(state)
            tokens += y.numel()
            done += 1
            now = time.perf_counter()
            elapsed = now - start
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                print(
                    f"epoch {epoch + i / len(epoch_windows):.3f}  window {done}  loss {loss.item():.4f}  "
                    f"{tokens / elapsed:,.0f} tokens/s",
                    file=sys.stderr,
                    flush=True,
                )
            if elapsed >= args.seconds:
                return tokens, elapsed, time.process_time() - cpu_start, done, epoch + (i + 1) / len(epoch_windows)
        epoch += 1
    return tokens, elapsed, time.process_time() - cpu_start, done, float(epoch)


@torch.no_grad()
def evaluate(model, tokens, batch, bptt):
    """(mean loss per predicted position, positions) over B streams of `tokens`, state carried."""
    if len(tokens) < 2:
        return float("nan"), 0
    rows = streams(tokens, min(batch, len(tokens) - 1))
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in windows(rows, bptt):
        loss, state = window_loss(model, x, y, state)
        total += loss.item() * y.numel()
        count += y.numel()
    return total / max(count, 1), count


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("text", help="a UTF-8 text file")
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=0, help="embedding width (0: one-hot input)")
    p.add_argument("--bptt", type=int, default=50, help="steps per window (truncated BPTT)")
    p.add_argument("--batch", type=int, default=32, help="parallel streams")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--clip", type=float, default=5.0, help="element-wise gradient clip (0: none)")
    p.add_argument("--seconds", type=float, default=60.0, help="wall-clock training budget")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--valid-fraction", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def main():
    """Entry point."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_text, valid_text = split(read_text(args.text), args.valid_fraction)
    ids = vocabulary(train_text)
    vocab = len(ids) + 1
    rows = streams(encode(train_text, ids), args.batch)
    model = CharModel(vocab, args.cell, args.hidden, args.layers, args.embed)
    tokens, seconds, cpu_seconds, n_windows, epochs = train(model, rows, args)
    eval_start = time.perf_counter()
    valid_loss, valid_tokens = evaluate(model, encode(valid_text, ids), args.batch, args.bptt)
    eval_seconds = time.perf_counter() - eval_start
    print(
        json.dumps(
            {
                "system": "pytorch",
                "train_tokens_per_s": tokens / seconds,
                "train_tokens": tokens,
                "train_seconds": seconds,
                "train_cpu_seconds": cpu_seconds,
                "valid_loss": valid_loss,
                "valid_bpc": valid_loss / math.log(2),
                "valid_tokens": valid_tokens,
                "eval_seconds": eval_seconds,
                "vocab": vocab,
                "windows": n_windows,
                "epochs": epochs,
                "train_chars": len(train_text),
                "valid_chars": len(valid_text),
                "cell": args.cell,
                "hidden": args.hidden,
                "layers": args.layers,
                "embed": args.embed,
                "bptt": args.bptt,
                "batch": args.batch,
                "optimizer": args.optimizer,
                "lr": args.lr,
                "clip": args.clip,
                "threads": args.threads,
                "seed": args.seed,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
