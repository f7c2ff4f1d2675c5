#!/usr/bin/env python3
"""A recurrent text classifier in PyTorch: the accuracy suite's peer of `rnn train`.

    nn.Embedding(V, E)            (E = --embed; without it E = H, as bench/torch_rnn.py does)
    -> nn.RNN | nn.GRU | nn.LSTM  (--cell; E -> H, --layers L, --bidirectional, dropout between layers)
    -> features over each sequence's own tokens (--pool):
         last: the final hidden state (bidirectional: cat(h_n[-2], h_n[-1]), i.e. the forward
               direction after the last token and the backward one after the first)
         mean, max: the mean or maximum over time of the top layer's outputs
    -> dropout (--dropout p) -> nn.Linear(D*H, C)   (D = 2 if bidirectional, else 1)
    + nn.EmbeddingBag(B, C, mode="mean") of the text's 1- to N-gram buckets (--ngrams N,
      --buckets B; 0 turns it off), zero at first: `rnn train`'s wide path, hashed as it hashes
      (src/rnn/wide.rs): a known token alone is its id mod B, a token the vocabulary lacks is its
      FNV-1a key, a longer gram fastText's rolling hash of its keys, mixed. Its sparse gradient
      is clipped as the others and stepped by SparseAdam at --wide-lr (rnn's lazy Adam).

Sequences are padded and packed (pack_padded_sequence, enforce_sorted=False), so padding costs no
computation and never enters the features. Softmax cross-entropy; gradients clipped element-wise
(clip_grad_value_, --clip); SGD or Adam with PyTorch's defaults except the learning rate (--lr:
0.02 for SGD, 0.001 for Adam unless given, as `rnn train`). Weights start at PyTorch's defaults.
Every epoch visits the training rows in a new order drawn from a generator seeded by --seed.

The defaults are `rnn train`'s: LSTM, H 64, an embedding of 64, one layer, both directions, max
pooling, dropout 0.3, Adam at 0.001, batch 32, at most 20 epochs, clip 1, words and punctuation
as tokens, tokens seen once become `<unk>`, 10% of the training rows held out, patience 5, and
the wide path of words and bigrams (characters and 2- to 4-grams with --tokens char) in 2^18
buckets at 0.1.

Data and tokens as bench/peer_data.py and the rnn binary: TSV with `text` and `label` columns;
word tokens are the lowercased text split on white space, wordpunct tokens lowercased runs of
word characters and single other characters, char tokens every character;
--max-len N keeps the first N; tokens seen fewer than --min-count times in training become
`<unk>` (id 0), the other ids follow first appearance. Labels are sorted by name.

--valid-split F holds out a stratified, seeded fraction F of the training rows (every label keeps
one); the held-out rows are scored after every epoch, the weights of the best epoch (highest
accuracy, then lowest loss) are kept, and with --patience N training stops after N epochs
without progress (a new best epoch or a new lowest validation loss), as `rnn train` does.
--valid-split 0 runs every epoch and scores the last one's weights.

The last stdout line is one JSON object: test_acc, test_loss, train_seconds (the training loop
only: batching, forward, backward, clipping, updates; not reading files and not evaluation),
epochs (run), best_epoch, and the settings.

    python torch_classifier.py TRAIN.tsv TEST.tsv --cell lstm --optimizer adam --batch 32 --tokens char
"""

import argparse
import json
import os
import random
import sys
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing peer_data.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_data import read_tsv, tokenize  # noqa: E402

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
UNSEEN = 1 << 31
ROLL = 116_049_371
U64 = (1 << 64) - 1
DEFAULT_LR = {"sgd": 0.02, "adam": 0.001}
EVAL_BATCH = 256


class Classifier(nn.Module):
    """Embedding -> recurrent layers -> pooled features -> dropout -> Linear."""

    def __init__(self, vocab_size, classes, args):
        super().__init__()
        embed = args.embed or args.hidden
        self.pool = args.pool
        self.bidirectional = args.bidirectional
        self.emb = nn.Embedding(vocab_size, embed)
        self.rnn = CELLS[args.cell](
            embed,
            args.hidden,
            num_layers=args.layers,
            bidirectional=args.bidirectional,
            dropout=args.dropout if args.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(args.dropout)
        self.out = nn.Linear(args.hidden * (2 if args.bidirectional else 1), classes)
        self.wide = None
        if args.ngrams:
            self.wide = nn.EmbeddingBag(args.buckets, classes, mode="mean", sparse=True)
            nn.init.zeros_(self.wide.weight)

    def features(self, ids, lengths):
        """The pooled features (B x D*H) of a padded batch whose real lengths are `lengths`."""
        packed = pack_padded_sequence(self.emb(ids), lengths, batch_first=True, enforce_sorted=False)
        outputs, h_n = self.rnn(packed)
        if isinstance(h_n, tuple):  # an LSTM returns (h, c)
            h_n = h_n[0]
        if self.pool == "last":
            return torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]
        padded, _ = pad_packed_sequence(outputs, batch_first=True)
        mask = (torch.arange(padded.shape[1])[None, :] < lengths[:, None]).unsqueeze(2)
        if self.pool == "mean":
            return (padded * mask).sum(dim=1) / lengths[:, None].to(padded.dtype)
        return padded.masked_fill(~mask, float("-inf")).max(dim=1).values

    def forward(self, ids, lengths, grams, offsets):
        """Logits (B x C): the recurrent path's, plus the wide path's mean of the grams' rows."""
        logits = self.out(self.drop(self.features(ids, lengths)))
        if self.wide is not None:
            logits = logits + self.wide(grams, offsets)
        return logits


def unseen_key(token):
    """rnn's key of a token the vocabulary lacks: the high bit and the low 31 bits of the
    FNV-1a hash of its UTF-8 bytes."""
    h = 0x811C9DC5
    for b in token.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return UNSEEN | (h & (UNSEEN - 1))


def mix(h):
    """SplitMix64's finaliser."""
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & U64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & U64
    return h ^ (h >> 31)


def grams_of(keys, n, buckets):
    """The buckets of every 1- to n-gram of a text's keys, as rnn's wide path hashes them."""
    out = []
    for size in range(1, min(n, len(keys)) + 1):
        for i in range(len(keys) - size + 1):
            h = keys[i]
            if size == 1 and not h & UNSEEN:
                out.append(h % buckets)
                continue
            for k in keys[i + 1 : i + size]:
                h = (h * ROLL + k) & U64
            out.append(mix(h) % buckets)
    return out


def build_vocab(token_lists, min_count):
    """{token: id}: `<unk>` is 0, then every token seen min_count times or more, by first appearance."""
    counts = {}
    for tokens in token_lists:
        for t in tokens:
            counts[t] = counts.get(t, 0) + 1
    vocab = {"<unk>": 0}
    for t, n in counts.items():  # dicts keep insertion order: first appearance
        if n >= min_count and t not in vocab:
            vocab[t] = len(vocab)
    return vocab


def encode(rows, vocab, labels, args):
    """(ids tensor, label id, gram buckets tensor) examples; an empty text becomes one `<unk>`
    (and has no grams)."""
    examples = []
    for text, label in rows:
        tokens = tokenize(text, args.tokens, args.max_len)
        ids = [vocab.get(t, 0) for t in tokens] or [0]
        grams = []
        if args.ngrams:
            keys = [vocab[t] if t in vocab else unseen_key(t) for t in tokens]
            grams = grams_of(keys, args.ngrams, args.buckets)
        examples.append((torch.tensor(ids, dtype=torch.long), labels[label], torch.tensor(grams, dtype=torch.long)))
    return examples


def collate(chunk):
    """(ids B x T, lengths B, labels B, grams, offsets B) of a list of examples."""
    ids = pad_sequence([x for x, _, _ in chunk], batch_first=True)
    lengths = torch.tensor([len(x) for x, _, _ in chunk])
    sizes = torch.tensor([len(g) for _, _, g in chunk])
    offsets = torch.cumsum(sizes, 0) - sizes
    grams = torch.cat([g for _, _, g in chunk])
    return ids, lengths, torch.tensor([y for _, y, _ in chunk]), grams, offsets


def evaluate(net, examples):
    """(mean loss, accuracy) of the network on examples, in eval mode (no dropout)."""
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct = 0.0, 0
    net.eval()
    with torch.no_grad():
        for k in range(0, len(examples), EVAL_BATCH):
            ids, lengths, y, grams, offsets = collate(examples[k : k + EVAL_BATCH])
            logits = net(ids, lengths, grams, offsets)
            total_loss += loss_fn(logits, y).item()
            correct += (logits.argmax(1) == y).sum().item()
    net.train()
    return total_loss / len(examples), correct / len(examples)


def stratified_holdout(rows, fraction, seed):
    """(kept, held out): a seeded `fraction` of every label's rows is held out."""
    rng = random.Random(seed)
    by_label = {}
    for i, (_, label) in enumerate(rows):
        by_label.setdefault(label, []).append(i)
    held = set()
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        held.update(indices[: min(round(len(indices) * fraction), len(indices) - 1)])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def train_epoch(net, optimizers, examples, args, generator):
    """One pass over the examples in a seeded random order, in batches of args.batch."""
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(examples), generator=generator).tolist()
    dense = [p for name, p in net.named_parameters() if not name.startswith("wide.")]
    for k in range(0, len(order), args.batch):
        ids, lengths, y, grams, offsets = collate([examples[i] for i in order[k : k + args.batch]])
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss_fn(net(ids, lengths, grams, offsets), y).backward()
        nn.utils.clip_grad_value_(dense, args.clip)
        if net.wide is not None and net.wide.weight.grad is not None:
            g = net.wide.weight.grad.coalesce()
            net.wide.weight.grad = torch.sparse_coo_tensor(
                g.indices(), g.values().clamp(-args.clip, args.clip), g.shape, check_invariants=False
            )
        for optimizer in optimizers:
            optimizer.step()


def fit(net, train, valid, args):
    """Trains; returns (seconds in the training loop, epochs run, best epoch).

    With validation rows, the best epoch's weights are loaded back at the end."""
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    dense = [p for name, p in net.named_parameters() if not name.startswith("wide.")]
    if args.optimizer == "adam":
        optimizers = [torch.optim.Adam(dense, lr=lr)]
    else:
        optimizers = [torch.optim.SGD(dense, lr=lr)]
    if net.wide is not None:
        optimizers.append(torch.optim.SparseAdam(net.wide.parameters(), lr=args.wide_lr))
    generator = torch.Generator().manual_seed(args.seed)
    seconds, best_epoch, best_key, best_state, epochs_run = 0.0, args.epochs, None, None, 0
    lowest_loss, progress = None, 0  # the last epoch with a new best or a new lowest loss
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train_epoch(net, optimizers, train, args, generator)
        seconds += time.perf_counter() - start
        epochs_run = epoch
        if not valid:
            continue
        loss, acc = evaluate(net, valid)
        if lowest_loss is None or loss < lowest_loss:
            lowest_loss, progress = loss, epoch
        if best_key is None or (acc, -loss) > best_key:
            best_key, best_epoch, progress = (acc, -loss), epoch, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        elif args.patience and epoch - progress >= args.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return seconds, epochs_run, best_epoch


def yes_no(s):
    """`true` or `false`, as `rnn train --bidirectional` takes them."""
    if s not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {s!r}")
    return s == "true"


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("train", help="training TSV")
    p.add_argument("test", help="test TSV")
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--embed", type=int, default=64, help="embedding size E (0: E = H)")
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--bidirectional", nargs="?", const="true", default="true", type=yes_no, help="true or false")
    p.add_argument("--pool", choices=["last", "mean", "max"], default="max")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.02 for sgd, 0.001 for adam)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--clip", type=float, default=1.0, help="element-wise gradient clipping limit")
    p.add_argument("--tokens", choices=["word", "wordpunct", "char"], default="wordpunct")
    p.add_argument("--max-len", type=int, default=0, help="keep the first N tokens (0: all)")
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--valid-split", type=float, default=0.1, help="fraction of train held out to pick the best epoch")
    p.add_argument("--patience", type=int, default=5, help="stop after N epochs without progress (0: never)")
    p.add_argument("--ngrams", type=int, default=None, help="the wide path's longest n-gram (default 2, or 4 with --tokens char; 0: none)")
    p.add_argument("--buckets", type=int, default=1 << 18, help="rows of the wide path's table")
    p.add_argument("--wide-lr", type=float, default=0.1, help="the wide path's learning rate")
    return p.parse_args()


def main():
    """Trains, tests, prints one JSON line."""
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rule = args.tokens

    rows = read_tsv(args.train)
    train_rows, valid_rows = stratified_holdout(rows, args.valid_split, args.seed) if args.valid_split else (rows, [])
    vocab = build_vocab((tokenize(text, rule, args.max_len) for text, _ in train_rows), args.min_count)
    labels = {name: i for i, name in enumerate(sorted({label for _, label in rows}))}
    if args.ngrams is None:
        args.ngrams = 4 if rule == "char" else 2
    train = encode(train_rows, vocab, labels, args)
    valid = encode(valid_rows, vocab, labels, args)
    test = encode(read_tsv(args.test), vocab, labels, args)

    net = Classifier(len(vocab), len(labels), args)
    seconds, epochs_run, best_epoch = fit(net, train, valid, args)
    test_loss, test_acc = evaluate(net, test)
    settings = {k: v for k, v in vars(args).items() if k not in ("train", "test")}
    print(
        json.dumps(
            {
                "system": "pytorch",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "test_acc": test_acc,
                "test_loss": test_loss,
                "train_seconds": seconds,
                "epochs": epochs_run,
                "best_epoch": best_epoch,
                "vocab": len(vocab),
                "settings": settings,
            }
        )
    )


if __name__ == "__main__":
    main()
