#!/usr/bin/env python3
"""PyTorch's own DistributedDataParallel (gloo, CPU) on rnn's classifier: the reference for rnn.ddp.

    torchrun --nproc_per_node 2 bench/torch_ddp.py --train bench/data/suite/movies_train.tsv \\
        --test bench/data/suite/movies_test.tsv --batch 32 --epochs 3 --threads 1 --json

The model is bench/torch_classifier.py's, imported, with rnn's defaults: nn.Embedding(V, 64) ->
bidirectional nn.LSTM(64, 64) (--cell rnn: nn.RNN, tanh) -> max pooling over each text's own
tokens -> nn.Dropout(0.3) -> nn.Linear(128, C). rnn has dropout at the same place only
(between layers, of which there is one, and before the output layer). Softmax cross-entropy,
gradients clipped element-wise to [-1, 1] after the all-reduce, Adam at lr 0.001, PyTorch's
initialisation (rank 0's weights, which DDP broadcasts).

The data is rnn.ddp's, row for row: the rows held out for validation and every epoch's batches are
drawn exactly as rnn.ddp draws them (src/train/ranks.rs, Plan), with a port of the ChaCha8
generator of src/rng.rs (checked below against the values that src/rng.rs pins): row g is held
out when the first uniform draw of substream g of stream 3 of the seed is under 0.1; each epoch
the training rows are shuffled by substream `epoch` of stream 1 and cut into batches of --batch.
Rank r trains on the rows g of each batch with g % N == r, as rnn.ddp's ranks do, and its loss is
its part of the batch's sum over the batch size times N, so that DDP's mean over the ranks is the
batch mean. Tokens: the lowercased text's runs of word characters and single other characters
(bench/peer_data.py, rnn's `wordpunct`); the vocabulary is `<unk>` and every token of the
training rows seen --min-count (2) times or more (--max-vocab: the most frequent, ties by first
appearance), as rnn's Vocab::from_counts; labels are every row's, sorted. Differences from rnn.ddp:
the initial weights and dropout masks (PyTorch's generator), and DDP averages gradients in
buckets while backward runs (overlapping communication and computation).

Every rank reads the whole file (it is small); the held-out rows are split over the ranks for
scoring and the sums all-reduced. The best epoch is the highest validation accuracy, then lowest
loss, as rnn's. With --test, rank 0 scores the best epoch's weights on that file.

With --json rank 0 prints one JSON line: valid_accuracy (best epoch), history, test_accuracy,
train_tokens_per_s (the tokens of every rank's rows over the wall time of the epochs' batch
loops, the slowest rank's), seconds per batch, bytes_sent_per_batch (DDP all-reduces every
gradient, the embedding's too: a ring all-reduce sends 2 (N - 1) / N times the floats).
"""

import argparse
import datetime
import json
import os
import struct
import sys
import time
from types import SimpleNamespace

import torch
import torch.distributed as dist
from torch import nn

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_data import read_tsv, tokenize  # noqa: E402
from torch_classifier import Classifier, collate  # noqa: E402

VALID_STREAM, SHUFFLE_STREAM = 3, 1  # src/data/split.rs, src/train/mod.rs
MIN_HELD_OUT = 50
_M = 0xFFFFFFFF


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & _M


class ChaCha8:
    """src/rng.rs's Rng: ChaCha8 keyed by (seed, stream), the 64-bit nonce the substream index."""

    def __init__(self, seed, stream, index=0):
        self.key = list(struct.unpack("<8I", struct.pack("<QQ", seed, stream) + bytes(16)))
        self.nonce, self.block, self.words = index, 0, []

    def _refill(self):
        s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *self.key,
             self.block & _M, self.block >> 32, self.nonce & _M, self.nonce >> 32]
        x = s[:]

        def quarter(a, b, c, d):
            x[a] = (x[a] + x[b]) & _M
            x[d] = _rotl(x[d] ^ x[a], 16)
            x[c] = (x[c] + x[d]) & _M
            x[b] = _rotl(x[b] ^ x[c], 12)
            x[a] = (x[a] + x[b]) & _M
            x[d] = _rotl(x[d] ^ x[a], 8)
            x[c] = (x[c] + x[d]) & _M
            x[b] = _rotl(x[b] ^ x[c], 7)

        for _ in range(4):  # 8 rounds
            quarter(0, 4, 8, 12), quarter(1, 5, 9, 13), quarter(2, 6, 10, 14), quarter(3, 7, 11, 15)
            quarter(0, 5, 10, 15), quarter(1, 6, 11, 12), quarter(2, 7, 8, 13), quarter(3, 4, 9, 14)
        self.block += 1
        self.words.extend((a + b) & _M for a, b in zip(x, s))

    def next_u64(self):
        while len(self.words) < 2:
            self._refill()
        lo, hi = self.words[0], self.words[1]
        del self.words[:2]
        return lo | (hi << 32)

    def uniform(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def below(self, n):
        threshold = ((1 << 64) - n) % n
        while True:
            product = self.next_u64() * n
            if product & ((1 << 64) - 1) >= threshold:
                return product >> 64

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def _check_generator():
    rng = ChaCha8(0, 0)
    draws = [rng.below(1000) for _ in range(8)]
    assert draws == [836, 631, 232, 117, 255, 98, 6, 261], f"ChaCha8 port: {draws}"


def held_out(rows, seed, fraction=None):
    """Whether each row is held out, as rnn.ddp's Plan::held."""
    if fraction is None:
        fraction = 0.1 if 0.1 * rows >= MIN_HELD_OUT else 0.0
    return [fraction > 0 and ChaCha8(seed, VALID_STREAM, g).uniform() < fraction for g in range(rows)]


def epoch_batches(training_rows, seed, epoch, batch):
    """Plan::batches: the training rows shuffled by (seed, epoch), cut in turn."""
    rows = list(training_rows)
    ChaCha8(seed, SHUFFLE_STREAM, epoch).shuffle(rows)
    return [rows[k : k + batch] for k in range(0, len(rows), batch)]


def build_vocab(token_lists, min_count, max_vocab):
    """Vocab::from_counts: `<unk>`, then the kept tokens in order of first appearance."""
    counts = {}
    for tokens in token_lists:
        for t in tokens:
            counts[t] = counts.get(t, 0) + 1
    kept = [t for t, n in counts.items() if n >= max(min_count, 1)]
    if max_vocab:
        ranked = sorted(kept, key=lambda t: -counts[t])  # stable: first seen stays ahead
        allowed = set(ranked[:max_vocab])
        kept = [t for t in kept if t in allowed]
    vocab = {"<unk>": 0}
    for t in kept:
        vocab.setdefault(t, len(vocab))
    return vocab


def encode(texts, vocab):
    return [torch.tensor([vocab.get(t, 0) for t in tokenize(x, "wordpunct")] or [0]) for x in texts]


def scores(net, ids, labels, rows):
    """(loss sum, correct, count) of the network on examples `rows`, in eval mode."""
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss, correct = 0.0, 0
    net.eval()
    with torch.no_grad():
        for k in range(0, len(rows), 256):
            chunk = rows[k : k + 256]
            x, lengths, y = collate([(ids[g], labels[g]) for g in chunk])
            logits = net(x, lengths)
            loss += loss_fn(logits, y).item()
            correct += (logits.argmax(1) == y).sum().item()
    net.train()
    return loss, correct, len(rows)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test")
    p.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="lstm")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--max-vocab", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    _check_generator()
    torch.set_num_threads(args.threads)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29518")
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=300))
    lead = rank == 0

    rows = read_tsv(args.train)
    held = held_out(len(rows), args.seed)
    training = [g for g in range(len(rows)) if not held[g]]
    valid = [g for g in range(len(rows)) if held[g]]
    vocab = build_vocab((tokenize(rows[g][0], "wordpunct") for g in training), args.min_count, args.max_vocab)
    names = sorted({label for _, label in rows})
    label_id = {name: i for i, name in enumerate(names)}
    ids = encode([x for x, _ in rows], vocab)
    labels = [label_id[y] for _, y in rows]

    torch.manual_seed(args.seed)
    model_args = SimpleNamespace(embed=args.embed, hidden=args.hidden, pool="max", bidirectional=True,
                                 cell=args.cell, layers=1, dropout=args.dropout)
    net = Classifier(len(vocab), len(names), model_args)
    parameters = sum(p.numel() for p in net.parameters())
    ddp = nn.parallel.DistributedDataParallel(net)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    if lead:
        print(f"torch DDP: {args.cell}, {parameters} parameters, V = {len(vocab)}, C = {len(names)}, "
              f"{len(training)} of {len(rows)} rows, {world} ranks x {args.threads} threads, batch {args.batch}",
              file=sys.stderr, flush=True)

    history, best, best_state = [], None, None
    loop_seconds, tokens, batches = 0.0, 0, 0
    for epoch in range(1, args.epochs + 1):
        plan = epoch_batches(training, args.seed, epoch, args.batch)
        train_sums = [0.0, 0, 0]
        dist.barrier()
        start = time.perf_counter()
        for batch in plan:
            mine = [g for g in batch if g % world == rank]
            optimizer.zero_grad()
            if mine:
                x, lengths, y = collate([(ids[g], labels[g]) for g in mine])
                logits = ddp(x, lengths)
                part = loss_fn(logits, y)
                train_sums[0] += part.item()
                train_sums[1] += (logits.argmax(1) == y).sum().item()
                train_sums[2] += len(mine)
                tokens += int(lengths.sum())
                loss = part * (world / len(batch))
            else:  # every rank joins every all-reduce: DDP's hooks need a forward pass
                x, lengths, _ = collate([(torch.zeros(1, dtype=torch.long), 0)])
                loss = ddp(x, lengths).sum() * 0.0
            loss.backward()
            nn.utils.clip_grad_value_(ddp.parameters(), args.clip)
            optimizer.step()
            batches += 1
        loop_seconds += time.perf_counter() - start
        sums = torch.tensor([*train_sums, *scores(net, ids, labels, valid[rank::world])], dtype=torch.float64)
        dist.all_reduce(sums)
        s = sums.tolist()
        metrics = {
            "epoch": epoch,
            "train_loss": s[0] / s[2],
            "train_accuracy": s[1] / s[2],
            "valid_loss": s[3] / s[5] if s[5] else None,
            "valid_accuracy": s[4] / s[5] if s[5] else None,
        }
        history.append(metrics)
        key = (metrics["valid_accuracy"] or 0.0, -(metrics["valid_loss"] or 0.0))
        if best is None or key > best[0]:
            best = (key, epoch)
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        if lead:
            print(f"epoch {epoch}: train loss {metrics['train_loss']:.4f} acc {metrics['train_accuracy']:.4f}, "
                  f"valid loss {metrics['valid_loss']:.4f} acc {metrics['valid_accuracy']:.4f}",
                  file=sys.stderr, flush=True)
    totals = torch.tensor([float(tokens)], dtype=torch.float64)
    dist.all_reduce(totals)
    slowest = torch.tensor([loop_seconds], dtype=torch.float64)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    all_tokens, wall = float(totals[0]), float(slowest[0])
    test_accuracy = None
    if lead and args.test and best_state is not None:
        net.load_state_dict(best_state)
        test_rows = read_tsv(args.test)
        test_ids = encode([x for x, _ in test_rows], vocab)
        test_labels = [label_id.get(y, -100) for _, y in test_rows]
        _, correct, count = scores(net, test_ids, test_labels, list(range(len(test_rows))))
        test_accuracy = correct / count
    dist.destroy_process_group()
    if lead and args.json:
        best_metrics = history[best[1] - 1]
        print(json.dumps({
            "system": "torch-ddp",
            "torch": torch.__version__,
            "ranks": world,
            "threads": args.threads,
            "cell": args.cell,
            "vocab": len(vocab),
            "parameters": parameters,
            "training_rows": len(training),
            "valid_rows": len(valid),
            "epochs": len(history),
            "best_epoch": best[1],
            "valid_accuracy": best_metrics["valid_accuracy"],
            "test_accuracy": test_accuracy,
            "train_tokens": all_tokens,
            "loop_seconds": wall,
            "train_tokens_per_s": all_tokens / wall if wall else None,
            "seconds_per_batch": wall / max(batches, 1),
            "bytes_sent_per_batch": 2 * 4 * parameters * (world - 1) / world,
            "history": history,
        }), flush=True)


if __name__ == "__main__":
    main()
