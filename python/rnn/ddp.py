"""Data-parallel training across processes and machines, under PyTorch's ``torchrun``::

    torchrun --nproc_per_node 2 -m rnn.ddp train --train data.tsv --model m.safetensors

Our passes and optimisers, PyTorch's launch, rendezvous and all-reduce (the gloo backend, on
CPU). Every process, a *rank*, reads its own shard of the training file (every N-th row; it
never holds the others), and the ranks agree on the data before training: each counts its
rows' tokens, with where each token was first seen, and every rank merges every rank's counts
(an all-gather), so that all build the vocabulary and the labels one process reading the whole
file would, and the same initial weights from the seed. Rows are held out for validation as
``rnn train`` holds them out of the same file with the same seed (a seeded share of every
label's rows: the ranks share every row's label, 4 bytes a row), and every epoch's batches are
the training rows in one seeded order, cut in turn: the same batches whatever the number of
ranks. A rank trains on the rows of each batch
it holds.

Per batch each rank computes its part of the gradient in Rust (weighted by one over the whole
batch), packs it straight into the buffer the all-reduce sends, and after the all-reduce (a sum
over the ranks: the batch mean) applies the update in Rust, identical on every rank. The packed
layout (``--exchange packed``) sends only the token-table entries of the batch's tokens, after
the ranks agree on the union of their tokens (an all-reduce of a byte a token); ``--exchange dense`` sends every parameter in one
all-reduce. Which is faster depends on the vocabulary, the batch and the network, so by default
(``--exchange auto``) the first batches try both and the ranks keep the faster.

Epoch scores are sums over the ranks (an all-reduce), so every rank makes the same decision to
keep an epoch or to stop early. Rank 0 alone writes the model file (the best epoch so far, after
every epoch), the metrics, and a checkpoint (MODEL.ckpt) that ``--resume`` continues from with
as many ranks: a resumed run ends as the uninterrupted one.

A rank that fails makes the collectives of the others fail: they stop with an error within
``--timeout`` seconds (torchrun also stops them), and the model file keeps the best model so far.
"""

import argparse
import datetime
import json
import os
import sys
import time

from . import _rnn

_DEFAULTS = _rnn.classifier_defaults()


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m rnn.ddp",
        description="Data-parallel training under torchrun (see the module's documentation).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a classifier, as rnn train does")
    train.add_argument("--train", required=True, help="training data (TSV, CSV or fastText)")
    train.add_argument("--model", required=True, help="where rank 0 writes the model")
    train.add_argument(
        "--valid",
        help="validation data in the same form (each rank scores its shard of it) instead of a "
        "held-out share of --train",
    )
    train.add_argument(
        "--test",
        help="test data in the same form, scored after every epoch (in shards) and only reported",
    )
    train.add_argument("--metrics", help="rank 0 writes every epoch's metrics to this CSV file")
    train.add_argument(
        "--resume",
        help="continue the run whose checkpoint this is (MODEL.ckpt), with as many ranks and "
        "the same data; --epochs may raise the limit",
    )
    train.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep MODEL.ckpt (rank 0 writes it after every epoch) when the run ends",
    )
    train.add_argument("--json", action="store_true", help="rank 0 prints a JSON summary last")
    train.add_argument("--quiet", action="store_true")
    train.add_argument("--text-col", default="text")
    train.add_argument("--label-col", default="label")
    train.add_argument("--format", choices=["tsv", "csv", "fasttext"])
    train.add_argument(
        "--max-row-bytes", type=int, help="the longest row a data file may have, as rnn train"
    )
    train.add_argument(
        "--no-shuffle",
        dest="shuffle",
        action="store_false",
        help="batches in file order instead of a new seeded order every epoch",
    )
    train.add_argument(
        "--exchange",
        choices=["auto", "packed", "dense"],
        default="auto",
        help="packed: the batch's token entries only (after agreeing on the tokens); "
        "dense: every parameter in one all-reduce; auto: whichever the first batches find "
        "faster (both give the same sums)",
    )
    train.add_argument(
        "--timeout", type=float, default=300, help="seconds a collective waits for the others"
    )
    ints = {"hidden", "layers", "embed", "min_count", "max_vocab", "max_len", "batch", "epochs",
            "patience", "seed", "threads", "ngrams", "buckets", "subword_buckets"}
    floats = {"dropout", "input_init", "lr", "clip", "valid_split", "wide_lr"}
    for name, default in _DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        if name == "shuffle":
            continue  # --no-shuffle, as rnn train
        if name == "bidirectional":
            kind = _boolean
        elif name in ints:
            kind = int
        elif name in floats:
            kind = float
        else:
            kind = str
        train.add_argument(flag, type=kind, default=default, help=f"as rnn train (default {default})")
    return parser


def _boolean(text):
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


class _Collectives:
    """The all-gathers and all-reduces of one rank, and the bytes it sends."""

    def __init__(self, dist, torch, world):
        self.dist, self.torch, self.world = dist, torch, world
        self.bytes_sent = 0

    def gather(self, obj):
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def all_reduce(self, tensor):
        self.dist.all_reduce(tensor)
        # a ring all-reduce sends about twice the tensor
        self.bytes_sent += 2 * tensor.numel() * tensor.element_size() * (self.world - 1) // self.world

    def union(self, tokens, vocab):
        """The sorted union of every rank's token ids, from one all-reduce (the maximum) of a
        byte a token of the vocabulary: one collective, where gathering the lists of ids
        would take two (their lengths, then the ids)."""
        torch = self.torch
        marks = torch.zeros(vocab, dtype=torch.uint8)
        marks[torch.tensor(tokens, dtype=torch.int64)] = 1
        self.dist.all_reduce(marks, op=self.dist.ReduceOp.MAX)
        self.bytes_sent += 2 * vocab * (self.world - 1) // self.world
        return marks.nonzero().flatten().tolist()


def _exchange(native, comm, loss_sum, size, mode):
    """One batch's all-reduce and update; returns the floats exchanged."""
    torch = comm.torch
    if mode == "dense":
        n = native.dense_len()
        buffer = bytearray(4 * (n + 1))
        native.pack_dense(buffer)
        summed = torch.frombuffer(buffer, dtype=torch.float32)
        summed[n] = loss_sum
        comm.all_reduce(summed)
        native.step_dense(buffer, float(summed[n]) / size)
        return n
    union = comm.union(native.tokens(), native.id_space())
    n = native.packed_len(union)
    buffer = bytearray(4 * (n + 1))
    native.pack(union, buffer)
    summed = torch.frombuffer(buffer, dtype=torch.float32)
    summed[n] = loss_sum
    comm.all_reduce(summed)
    native.step(union, buffer, float(summed[n]) / size)
    return n


class _Chooser:
    """The exchange of each batch: the one asked for, or with ``auto`` the faster of the two.
    The first ``2 * TRIALS`` batches alternate between them, each timed from a barrier (so that
    waiting for a slower rank's backward pass is not counted); the ranks then agree on the
    slower rank's medians (an all-reduce of the maxima) and keep the faster exchange. Both
    exchanges send the same sums, so the choice changes the speed, never the model."""

    TRIALS = 8

    def __init__(self, mode, comm):
        self.comm = comm
        self.chosen = None if mode == "auto" else mode
        self.times = {"packed": [], "dense": []}

    def next(self):
        """The exchange of the next batch; while trying, after a barrier."""
        if self.chosen:
            return self.chosen
        self.comm.dist.barrier()
        return "packed" if len(self.times["packed"]) <= len(self.times["dense"]) else "dense"

    def record(self, mode, seconds):
        if self.chosen:
            return
        self.times[mode].append(seconds)
        if min(len(t) for t in self.times.values()) < self.TRIALS:
            return
        torch = self.comm.torch
        medians = torch.tensor(
            [sorted(self.times[m])[self.TRIALS // 2] for m in ("packed", "dense")],
            dtype=torch.float64,
        )
        self.comm.dist.all_reduce(medians, op=self.comm.dist.ReduceOp.MAX)
        self.chosen = "packed" if medians[0] <= medians[1] else "dense"


def _fail_here(rank, epoch, step):
    """Fault injection for the tests: RNN_DDP_FAIL=RANK:EPOCH:STEP makes that rank die there."""
    spec = os.environ.get("RNN_DDP_FAIL")
    if spec and spec == f"{rank}:{epoch}:{step}":
        print(f"rnn.ddp: rank {rank}: failing at epoch {epoch}, batch {step} (RNN_DDP_FAIL)",
              file=sys.stderr, flush=True)
        os._exit(3)


def train(args, rank, world, dist, torch):
    """The run of one rank; returns the summary rank 0 prints."""
    comm = _Collectives(dist, torch, world)
    options = {name: getattr(args, name) for name in _DEFAULTS}
    reading = {"text_col": args.text_col, "label_col": args.label_col, "format": args.format,
               "max_row_bytes": args.max_row_bytes}
    native = _rnn.NativeRank(
        args.train, rank, world, options, reading, comm.gather, args.resume, args.valid,
        args.test,
    )
    info = native.describe()
    lead = rank == 0
    checkpoint = args.model + ".ckpt"
    if lead and args.resume is None:
        native.save(args.model)  # from here on the model file always holds a usable model
        if not args.quiet:
            print(
                f"Training {info['architecture']} ({info['parameters']} parameters, V = "
                f"{info['vocab']}, C = {len(info['labels'])}) on {info['training_rows']} of "
                f"{info['rows']} rows in {world} ranks, batches of {info['batch']}.",
                flush=True,
            )
    history, floats, batches = [], 0, 0
    exchange = _Chooser(args.exchange, comm)
    stopped_early = False
    started = time.time()
    loop_seconds = 0.0
    for epoch in range(info["epoch"] + 1, args.epochs + 1):
        steps = native.begin_epoch()
        loop_started = time.perf_counter()
        for step in range(steps):
            _fail_here(rank, epoch, step)
            loss_sum, size = native.backward(step)
            mode, begun = exchange.next(), time.perf_counter()
            floats += _exchange(native, comm, loss_sum, size, mode)
            exchange.record(mode, time.perf_counter() - begun)
            batches += 1
        loop_seconds += time.perf_counter() - loop_started
        sums = torch.tensor([x for part in native.tallies() for x in part], dtype=torch.float64)
        comm.all_reduce(sums)
        s = sums.tolist()
        train_sums, valid_sums, test_sums = (
            (s[i], round(s[i + 1]), round(s[i + 2])) for i in (0, 3, 6)
        )
        verdict = native.end_epoch(train_sums, valid_sums, test_sums)
        metrics = native.last_epoch()
        history.append(metrics)
        if lead:
            native.save(args.model)
            native.save_checkpoint(checkpoint)
            if args.metrics:
                _write_metrics(args.metrics, history)
            if not args.quiet:
                print(_epoch_line(metrics, args.epochs), flush=True)
        if verdict == "stop":
            stopped_early = True
            break
    seconds = time.time() - started
    if lead:
        native.save(args.model)  # the best epoch's weights
        if not args.keep_checkpoint and os.path.exists(checkpoint):
            os.remove(checkpoint)
    report = native.finish(stopped_early, False)
    # every rank's training tokens over the wall time of the batches (collectives included)
    tokens = torch.tensor([report["train_tokens"]], dtype=torch.float64)
    comm.all_reduce(tokens)
    if lead and not args.quiet:
        rate = float(tokens[0]) / max(loop_seconds, 1e-9)
        _print_summary(args, history, report["best_epoch"], stopped_early, seconds, rate)
    return {
        "ranks": world,
        "epochs": len(history),
        "best_epoch": report["best_epoch"],
        "stopped_early": stopped_early,
        "seconds": seconds,
        "train_seconds": loop_seconds,
        "train_tokens_per_s": float(tokens[0]) / max(loop_seconds, 1e-9),
        "compute_seconds": report["train_seconds"],
        "exchange": exchange.chosen or "auto (undecided)",
        "floats_per_batch": floats / max(batches, 1),
        "bytes_sent_per_batch": comm.bytes_sent / max(batches, 1),
        "history": history,
    }


def _percent(fraction):
    return f"{100 * fraction:.1f}%"


def _epoch_line(metrics, epochs):
    """An epoch's line, as ``rnn train`` prints it."""
    width = len(str(epochs))
    line = (f"epoch {metrics['epoch']:>{width}}/{epochs}  train loss {metrics['train_loss']:.4f} "
            f"acc {_percent(metrics['train_accuracy']):>6}")
    for name in ("valid", "test"):
        if metrics.get(f"{name}_loss") is not None:
            line += (f"  {name} loss {metrics[f'{name}_loss']:.4f} "
                     f"acc {_percent(metrics[f'{name}_accuracy']):>6}")
    return line


def _print_summary(args, history, best_epoch, stopped_early, seconds, rate):
    """The run's summary, as ``rnn train`` prints it: the epochs and time, the epoch kept and
    its scores, where the model went."""
    epochs = len(history)
    stopped = " (stopped early: no better validation score)" if stopped_early else ""
    print(f"Trained for {epochs} epoch{'' if epochs == 1 else 's'}{stopped} in {seconds:.2f} s "
          f"({rate:.0f} tokens/s in training steps).")
    kept = history[-1] if history else None
    if best_epoch is not None and history:
        kept = next(m for m in history if m["epoch"] == best_epoch)
        print(f"Kept the weights of epoch {best_epoch}, the best on the validation set.")
    if kept is not None:
        print("           loss  accuracy")
        for name in ("train", "valid", "test"):
            if kept.get(f"{name}_loss") is not None:
                print(f"  {name:<5} {kept[f'{name}_loss']:>7.4f} "
                      f"{_percent(kept[f'{name}_accuracy']):>9}")
    print(f"Saved the model to {args.model}", flush=True)


def _write_metrics(path, history):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("epoch,train_loss,train_acc,valid_loss,valid_acc,lr\n")
        for m in history:
            cells = [m["epoch"], m["train_loss"], m["train_accuracy"], m["valid_loss"],
                     m["valid_accuracy"], m["lr"]]
            f.write(",".join("" if c is None else str(c) for c in cells) + "\n")
    os.replace(tmp, path)


def main(argv=None):
    """Runs ``rnn.ddp`` with ``argv`` (the command line's by default) on this process's rank.

    Under torchrun the process group is made here from torchrun's environment (RANK,
    WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Where a framework has made it already (Ray Train's
    TorchTrainer, with the gloo backend), that group is used as it is."""
    args = _parser().parse_args(argv)
    _rnn.name_settings_as_flags()  # the messages name this command's flags
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        sys.exit("rnn.ddp needs PyTorch (its process group and all-reduce): pip install torch")
    made_here = not dist.is_initialized()
    if made_here:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        dist.init_process_group(
            "gloo",
            rank=int(os.environ.get("RANK", "0")),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            timeout=datetime.timedelta(seconds=args.timeout),
        )
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        summary = train(args, rank, world, dist, torch)
    except (ValueError, OSError) as e:
        sys.exit(f"error: rank {rank}: {e}")
    except RuntimeError as e:
        sys.exit(
            f"error: rank {rank}: the run stopped: {e}. Another rank may have failed; "
            f"{args.model} keeps the best model so far."
        )
    finally:
        if made_here and dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0 and args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
