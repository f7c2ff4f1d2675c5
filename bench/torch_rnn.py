#!/usr/bin/env python3
"""The same RNN classifier in PyTorch on the CPU: the tool a user would reach for instead.

nn.Embedding(V, H) -> nn.RNN(H, H) (tanh; or nn.GRU, nn.LSTM with --cell) -> nn.Linear(H, C) on
the hidden state after the last real token of each sequence. Batches of variable-length sequences are padded and packed
(pack_padded_sequence, enforce_sorted=False), so padding costs no computation. Softmax
cross-entropy, gradients clipped element-wise (nn.utils.clip_grad_value_), then SGD or Adam with
PyTorch's defaults (weights initialised by PyTorch's defaults too). Batches are drawn in a new
random order every epoch from a seeded generator.

Data: TSV files with a header holding `text` and `label` columns; no quoting (a `"` is an
ordinary character), as in the rnn binary. Tokens: with --char every character (spaces
included, case kept), otherwise the lowercased text split on white space; --max-len N keeps the
first N tokens. Vocabulary: `<unk>` (id 0) and then every training token in order of first
appearance. Labels: sorted by name.

Timing: `seconds` covers the training loop only (batching, forward, backward, clipping, update;
not reading files and not evaluation). train_tokens_per_s = every token of every epoch /
seconds. eval_tokens_per_s times predicting the test texts: tokenise, look up ids, pad, forward
in batches of 256 under torch.no_grad(), softmax and argmax; --eval-repeat R runs over the test
set R times (for test sets too small to time). The last stdout line is one JSON object.

    python torch_rnn.py TRAIN.tsv TEST.tsv --epochs 5 --hidden 128 --batch 64 --adam --lr 0.003 --clip 5 --char
"""

import argparse
import json
import os
import sys
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing peer_data.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_data import build_vocab, read_tsv, tokenize  # noqa: E402

EVAL_BATCH = 256


def encode(tokens, vocab):
    """The ids of a token list as a tensor (an empty text becomes one `<unk>`)."""
    return torch.tensor([vocab.get(t, 0) for t in tokens] or [0], dtype=torch.long)


CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class Net(nn.Module):
    """Embedding -> tanh RNN (or GRU, LSTM; stacked, bidirectional) -> Linear on the last real
    step (for two directions, PyTorch's h_n of both: the forward one after the last token, the
    backward one after the first)."""

    def __init__(self, vocab_size, hidden, classes, cell="rnn", layers=1, bidirectional=False):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, hidden)
        self.rnn = CELLS[cell](hidden, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        self.out = nn.Linear(hidden * (2 if bidirectional else 1), classes)

    def forward(self, ids, lengths):
        """Logits of a padded batch `ids` (B x T) whose real lengths are `lengths`."""
        packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h_last = self.rnn(packed)
        if isinstance(h_last, tuple):  # an LSTM returns (h, c)
            h_last = h_last[0]
        if self.rnn.bidirectional:
            return self.out(torch.cat([h_last[-2], h_last[-1]], dim=1))
        return self.out(h_last[-1])


def collate(sequences):
    """Pads a list of id tensors into (ids B x T, lengths B)."""
    ids = pad_sequence(sequences, batch_first=True)
    lengths = torch.tensor([len(s) for s in sequences])
    return ids, lengths


def evaluate(net, examples):
    """(mean loss, accuracy) of the network on (ids, label) examples."""
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct = 0.0, 0
    net.eval()
    with torch.no_grad():
        for k in range(0, len(examples), EVAL_BATCH):
            chunk = examples[k : k + EVAL_BATCH]
            ids, lengths = collate([x for x, _ in chunk])
            y = torch.tensor([label for _, label in chunk])
            logits = net(ids, lengths)
            total_loss += loss_fn(logits, y).item()
            correct += (logits.argmax(1) == y).sum().item()
    net.train()
    return total_loss / len(examples), correct / len(examples)


def time_inference(net, texts, vocab, char, max_len, repeat):
    """(tokens, seconds) to predict the texts `repeat` times, as `rnn predict` would."""
    net.eval()
    tokens = 0
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(repeat):
            for k in range(0, len(texts), EVAL_BATCH):
                token_lists = [tokenize(t, char, max_len) for t in texts[k : k + EVAL_BATCH]]
                tokens += sum(len(t) for t in token_lists)
                ids, lengths = collate([encode(t, vocab) for t in token_lists])
                probs = torch.softmax(net(ids, lengths), dim=1)
                probs.max(dim=1)
    seconds = time.perf_counter() - start
    net.train()
    return tokens, seconds


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("train", help="training TSV")
    p.add_argument("test", help="test TSV")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--clip", type=float, default=1.0, help="element-wise gradient clipping limit")
    p.add_argument("--adam", action="store_true", help="Adam instead of SGD")
    p.add_argument("--char", action="store_true", help="character tokens instead of words")
    p.add_argument("--cell", choices=sorted(CELLS), default="rnn", help="the recurrent layer")
    p.add_argument("--layers", type=int, default=1, help="stacked recurrent layers")
    p.add_argument("--bidirectional", action="store_true", help="every layer reads both ways")
    p.add_argument("--max-len", type=int, default=0, help="keep the first N tokens (0: all)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-repeat", type=int, default=1, help="passes over the test set when timing inference")
    return p.parse_args()


def main():
    """Trains, evaluates, times inference, prints one JSON line."""
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    train_rows, test_rows = read_tsv(args.train), read_tsv(args.test)
    train_tokens = [tokenize(text, args.char, args.max_len) for text, _ in train_rows]
    test_tokens = [tokenize(text, args.char, args.max_len) for text, _ in test_rows]
    vocab = build_vocab(train_tokens)
    labels = {name: i for i, name in enumerate(sorted({label for _, label in train_rows}))}
    train = [(encode(t, vocab), labels[label]) for t, (_, label) in zip(train_tokens, train_rows)]
    test = [(encode(t, vocab), labels[label]) for t, (_, label) in zip(test_tokens, test_rows)]

    net = Net(len(vocab), args.hidden, len(labels), args.cell, args.layers, args.bidirectional)
    if args.adam:
        optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    tokens_per_epoch = sum(len(x) for x, _ in train)
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(train), generator=generator).tolist()
        for k in range(0, len(order), args.batch):
            chunk = [train[i] for i in order[k : k + args.batch]]
            ids, lengths = collate([x for x, _ in chunk])
            y = torch.tensor([label for _, label in chunk])
            optimizer.zero_grad()
            loss = loss_fn(net(ids, lengths), y)
            loss.backward()
            nn.utils.clip_grad_value_(net.parameters(), args.clip)
            optimizer.step()
    seconds = time.perf_counter() - start

    train_loss, train_acc = evaluate(net, train)
    test_loss, test_acc = evaluate(net, test)
    eval_tokens, eval_seconds = time_inference(
        net, [text for text, _ in test_rows], vocab, args.char, args.max_len, args.eval_repeat
    )
    print(
        json.dumps(
            {
                "system": "pytorch",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
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
