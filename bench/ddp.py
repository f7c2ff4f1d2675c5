#!/usr/bin/env python3
"""Data-parallel training on one machine: `rnn train`, `python -m rnn.ddp` and PyTorch's DDP.

    /tmp/peers/bin/python bench/ddp.py             # everything, about 6 minutes on 2 cores
    /tmp/peers/bin/python bench/ddp.py --quick     # 2,000 rows, 1 epoch, a small sweep: 2 minutes

Needs a Python with torch and the rnn package (`pip install ./python torch`) and the release
binary (`cargo build --release`). Data: the accuracy suite's movies set (bench/fetch_suite.py
builds it if it is missing; --set picks another).

1. Throughput and accuracy (--cell rnn and --cell lstm, every other setting rnn's default; the
   same global batch, epochs, seed and no early stopping):
   - `rnn train --threads 2`: one process, two threads;
   - `torchrun --nproc_per_node 1 -m rnn.ddp train --threads 2`;
   - `torchrun --nproc_per_node 2 -m rnn.ddp train --threads 1`, --exchange packed, dense, auto;
   - `torchrun --nproc_per_node 2 bench/torch_ddp.py --threads 1`: PyTorch's
     DistributedDataParallel on the same network, rows, held-out rows and batches.
   Tokens/s is the tokens trained on over the wall time of the epochs' batch loops (for rnn
   train its own train_tokens_per_s, which is that). rnn.ddp's own train_tokens_per_s counts
   only the time in Rust's backward and update, not packing, agreeing on the tokens or the
   all-reduce, so the rnn.ddp runs go through a thin wrapper (this file with --worker, below) that times
   the batch loop from outside and adds up every rank's tokens; its figure is shown too.
   Accuracy: the best epoch's validation accuracy (each system's own held-out 10%: rnn.ddp and
   torch_ddp.py hold out the same rows, rnn train a stratified draw of its own), and the test
   accuracy of the saved model on NAME_test.tsv (`rnn eval`), the same rows for every system.
   Bytes/rank/batch: what each rank sends per batch (rnn.ddp's bytes_sent_per_batch; for
   torch, a ring all-reduce of every gradient, 2 (N - 1) / N x 4 bytes x parameters).
2. Packed against dense exchange: 2 ranks x 1 thread, LSTM, one epoch, for vocabularies of 1,000
   tokens, the full vocabulary (min count 2) and every token (min count 1), with an embedding
   of 64 and with one-hot input (--embed 0, whose input table is V x 8H floats), at batch 32
   and 128, and --exchange auto (which times both on the first 8 batches and keeps the faster).
   Per batch: the wall time, and of it the exchange (packing, agreeing on the union of the
   ranks' tokens for packed, the all-reduce, the update).
3. On paper: the time per batch on 8 and 64 machines on a 10 Gbit/s network, from the measured
   compute time per batch and the bytes each scheme sends (see bench/README.md).

Before every timed run the script waits (polling every 20 s, up to 10 minutes) while
`pgrep -f python_bench.py` or `pgrep -f "cargo "` finds something. Markdown tables go to stdout,
progress to stderr, everything measured to bench/data/ddp_results.json (--out).

`bench/ddp.py --worker ARGS` is what torchrun runs for the rnn.ddp rows: `python -m rnn.ddp
ARGS` with timers around the NativeRank calls, `_exchange` and the collectives; it adds a
"bench" object to rnn.ddp's JSON summary.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RNN = os.path.join(ROOT, "target", "release", "rnn")
LINK_BYTES_PER_S = 10e9 / 8  # 10 Gbit/s
LATENCY_S = 50e-6  # one message step between two machines
MACHINES = (1, 8, 64)


# ----------------------------------------------------------------------------- the worker


def worker(argv):
    """`python -m rnn.ddp ARGV` with timers; rank 0's JSON summary gains a "bench" object."""
    from time import perf_counter

    import torch
    import rnn.ddp as ddp

    real = ddp._rnn
    clock = {"loop": 0.0, "backward": 0.0, "exchange": 0.0, "union": 0.0, "reduce": 0.0,
             "batches": 0, "union_tokens": 0, "modes": {}, "in_exchange": False, "start": 0.0, "report": None}

    class TimedRank:
        def __init__(self, *args, **kwargs):
            self._rank = real.NativeRank(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._rank, name)

        def begin_epoch(self):
            steps = self._rank.begin_epoch()
            clock["start"] = perf_counter()
            return steps

        def backward(self, step):
            t = perf_counter()
            out = self._rank.backward(step)
            clock["backward"] += perf_counter() - t
            return out

        def step(self, union, buffer, loss):
            clock["union_tokens"] += len(union)
            return self._rank.step(union, buffer, loss)

        def tallies(self):  # the batch loop ends here (tallies then scores the held-out rows)
            clock["loop"] += perf_counter() - clock["start"]
            return self._rank.tallies()

        def finish(self, *args):
            report = self._rank.finish(*args)
            clock["report"] = report
            return report

    class Shim:
        NativeRank = TimedRank

        def __getattr__(self, name):
            return getattr(real, name)

    ddp._rnn = Shim()

    exchange = ddp._exchange

    def timed_exchange(*args):
        mode = args[-1]
        clock["modes"][mode] = clock["modes"].get(mode, 0) + 1
        t = perf_counter()
        clock["in_exchange"] = True
        try:
            return exchange(*args)
        finally:
            clock["in_exchange"] = False
            clock["exchange"] += perf_counter() - t
            clock["batches"] += 1

    ddp._exchange = timed_exchange

    def timed(method, key):
        def wrapper(self, *args):
            t = perf_counter()
            out = method(self, *args)
            if clock["in_exchange"]:
                clock[key] += perf_counter() - t
            return out
        return wrapper

    # agreeing on the union of the ranks' tokens: an all-reduce of a byte a token (union), or,
    # in rnn.ddp before 2026-12-03, two all-gathers of token ids (all_gather)
    for name in ("union", "all_gather"):
        if hasattr(ddp._Collectives, name):
            setattr(ddp._Collectives, name, timed(getattr(ddp._Collectives, name), "union"))
    ddp._Collectives.all_reduce = timed(ddp._Collectives.all_reduce, "reduce")

    train = ddp.train

    def timed_train(args, rank, world, dist, torch_):
        summary = train(args, rank, world, dist, torch_)
        report = clock["report"]
        tokens = report["tokens_per_second"] * report["train_seconds"]
        total = torch.tensor([tokens], dtype=torch.float64)
        dist.all_reduce(total)
        # rank 0's loop: it saves the model between epochs while the others wait for it in
        # their first collective, inside their loops
        loop = clock["loop"]
        batches = max(clock["batches"], 1)
        summary["bench"] = {
            "train_tokens": round(float(total[0])),
            "loop_seconds": loop,
            "wall_tokens_per_s": float(total[0]) / loop,
            "seconds_per_batch": loop / batches,
            # rank 0's parts of a batch
            "backward_seconds_per_batch": clock["backward"] / batches,
            "exchange_seconds_per_batch": clock["exchange"] / batches,
            "union_seconds_per_batch": clock["union"] / batches,
            "reduce_seconds_per_batch": clock["reduce"] / batches,
            "union_per_batch": clock["union_tokens"] / max(clock["modes"].get("packed", 0), 1),
            "modes": clock["modes"],
            "batches": clock["batches"],
        }
        return summary

    ddp.train = timed_train
    ddp.main(argv)


# ----------------------------------------------------------------------------- the driver


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def busy():
    """What other benchmark work is running (pgrep's lines), or ''."""
    found = []
    for pattern in ("python_bench.py", "cargo "):
        out = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout
        found += [line for line in out.splitlines() if line and int(line.split()[0]) != os.getpid()]
    return "; ".join(found)


def wait_quiet(state):
    """Waits while other work runs (every 20 s, up to 10 minutes); notes if it never stopped."""
    waited, other = 0, busy()
    while other and waited < 600:
        if waited == 0:
            log(f"  waiting for: {other[:120]}")
        time.sleep(20)
        waited += 20
        other = busy()
    state["waited_seconds"] += waited
    if other:
        state["not_quiet"].append(other[:200])
        log(f"  still busy after 10 minutes, measuring anyway: {other[:120]}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(ranks):
    exe = os.path.join(os.path.dirname(sys.executable), "torchrun")
    base = [exe] if os.path.exists(exe) else [sys.executable, "-m", "torch.distributed.run"]
    return base + ["--nproc_per_node", str(ranks), "--master-port", str(free_port())]


def run_json(cmd, state):
    """Runs cmd after waiting for a quiet machine; returns (its last JSON line, wall seconds)."""
    wait_quiet(state)
    log("  $ " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd))
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    state["last_stdout"] = done.stdout
    return json.loads(lines[-1]), seconds


def test_accuracy(model, test, state):
    out, _ = run_json([RNN, "eval", "--model", model, "--data", test, "--json"], state)
    return out.get("accuracy")


def best_valid(history):
    """The best epoch's validation accuracy (highest accuracy, then lowest loss)."""
    best = max(history, key=lambda m: (m["valid_accuracy"], -m["valid_loss"]))
    return best["valid_accuracy"]


def train_flags(cfg):
    flags = ["--batch", str(cfg["batch"]), "--epochs", str(cfg["epochs"]), "--patience", "0",
             "--seed", str(cfg.get("seed", 0)), "--cell", cfg["cell"], "--embed", str(cfg.get("embed", 64))]
    if cfg.get("max_vocab"):
        flags += ["--max-vocab", str(cfg["max_vocab"])]
    if cfg.get("min_count"):
        flags += ["--min-count", str(cfg["min_count"])]
    return flags


def run_rnn_train(cfg, threads, state, work):
    model = os.path.join(work, "train.safetensors")
    out, wall = run_json([RNN, "train", "--train", cfg["train"], "--model", model, "--threads",
                          str(threads), "--quiet", "--json", *train_flags(cfg)], state)
    return {
        "system": "rnn train", "ranks": 1, "threads": threads, "exchange": None,
        "tokens_per_s": out["train_tokens_per_s"],
        "valid_accuracy": out["valid_acc"],  # the best epoch's
        "test_accuracy": test_accuracy(model, cfg["test"], state),
        "bytes_per_batch": 0, "process_seconds": wall, "raw": out,
    }


def run_rnn_ddp(cfg, ranks, threads, exchange, state, work, test=True):
    model = os.path.join(work, "ddp.safetensors")
    cmd = torchrun(ranks) + [os.path.abspath(__file__), "--worker", "train", "--train", cfg["train"],
                             "--model", model, "--threads", str(threads), "--exchange", exchange,
                             "--json", *train_flags(cfg)]
    out, wall = run_json(cmd, state)
    b = out["bench"]
    found = re.search(r"\((\d+) parameters, V = (\d+),", state["last_stdout"])
    return {
        "system": "rnn.ddp", "ranks": ranks, "threads": threads,
        "exchange": exchange if exchange != "auto" else f"auto → {out['exchange']}",
        "mode": exchange, "chosen": out["exchange"],
        "tokens_per_s": b["wall_tokens_per_s"],
        "reported_tokens_per_s": out["train_tokens_per_s"],
        "valid_accuracy": best_valid(out["history"]),
        "test_accuracy": test_accuracy(model, cfg["test"], state) if test else None,
        "bytes_per_batch": out["bytes_sent_per_batch"], "floats_per_batch": out["floats_per_batch"],
        "process_seconds": wall, "raw": out,
        "parameters": int(found.group(1)), "vocab": int(found.group(2)),
    }


def run_torch_ddp(cfg, ranks, threads, state):
    cmd = torchrun(ranks) + [os.path.join(HERE, "torch_ddp.py"), "--train", cfg["train"], "--test",
                             cfg["test"], "--cell", cfg["cell"], "--batch", str(cfg["batch"]),
                             "--epochs", str(cfg["epochs"]), "--seed", str(cfg.get("seed", 0)), "--threads",
                             str(threads), "--json"]
    out, wall = run_json(cmd, state)
    return {
        "system": "torch DDP", "ranks": ranks, "threads": threads, "exchange": "dense (DDP)",
        "tokens_per_s": out["train_tokens_per_s"], "valid_accuracy": out["valid_accuracy"],
        "test_accuracy": out["test_accuracy"], "bytes_per_batch": out["bytes_sent_per_batch"],
        "process_seconds": wall, "raw": out,
    }


def fmt_bytes(b):
    if b is None:
        return ""
    if b >= 1e6:
        return f"{b / 1e6:.2f} MB"
    if b >= 1e3:
        return f"{b / 1e3:.1f} kB"
    return f"{b:.0f} B"


def pct(x):
    return "" if x is None else f"{100 * x:.2f}%"


def throughput_table(rows):
    lines = ["| system | ranks×threads | exchange | tokens/s | valid acc | test acc | bytes/rank/batch |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        note = ""
        if r.get("reported_tokens_per_s"):
            note = f" ({r['reported_tokens_per_s']:,.0f})"
        lines.append(
            f"| {r['system']} | {r['ranks']}×{r['threads']} | {r['exchange'] or '–'} | "
            f"{r['tokens_per_s']:,.0f}{note} | {pct(r['valid_accuracy'])} | {pct(r['test_accuracy'])} | "
            f"{fmt_bytes(r['bytes_per_batch'])} |")
    return "\n".join(lines)


def accuracy_table(check):
    lines = ["| seed | rnn.ddp valid | torch DDP valid | rnn.ddp test | torch DDP test | rnn.ddp tokens/s | torch DDP tokens/s |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in check:
        a, b = c["rnn_ddp"], c["torch_ddp"]
        lines.append(f"| {c['seed']} | {pct(a['valid_accuracy'])} | {pct(b['valid_accuracy'])} | "
                     f"{pct(a['test_accuracy'])} | {pct(b['test_accuracy'])} | {a['tokens_per_s']:,.0f} | "
                     f"{b['tokens_per_s']:,.0f} |")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    for key, name in (("valid_accuracy", "valid"), ("test_accuracy", "test")):
        a = mean([c["rnn_ddp"][key] for c in check])
        b = mean([c["torch_ddp"][key] for c in check])
        lines.append(f"\nMean {name} accuracy: rnn.ddp {pct(a)}, torch DDP {pct(b)} "
                     f"(difference {100 * (a - b):+.2f} points).")
    return "\n".join(lines)


def sweep_table(rows):
    lines = ["| embed | V | batch | exchange | floats/batch | bytes/rank/batch | ms/batch | exchange ms | of it collectives ms |",
             "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        b = r["raw"]["bench"]
        lines.append(
            f"| {r['embed'] or 'one-hot'} | {r['vocab']:,} | {r['batch']} | {r['exchange']} | "
            f"{r['floats_per_batch']:,.0f} | {fmt_bytes(r['bytes_per_batch'])} | "
            f"{1e3 * b['seconds_per_batch']:.2f} | {1e3 * b['exchange_seconds_per_batch']:.2f} | "
            f"{1e3 * (b['union_seconds_per_batch'] + b['reduce_seconds_per_batch']):.2f} |")
    return "\n".join(lines)


def crossover(rows):
    """Per (embed, batch): the vocabulary sizes where packed or dense is faster per batch."""
    verdicts = []
    keys = sorted({(r["embed"], r["batch"]) for r in rows}, key=lambda k: (-k[0], k[1]))
    for embed, batch in keys:
        parts = []
        for v in sorted({r["vocab"] for r in rows if (r["embed"], r["batch"]) == (embed, batch)}):
            same = [r for r in rows if (r["embed"], r["batch"], r["vocab"]) == (embed, batch, v)]
            pick = {r["mode"]: r["raw"]["bench"]["seconds_per_batch"] for r in same}
            if "dense" in pick and "packed" in pick:
                ratio = pick["dense"] / pick["packed"]
                text = f"V {v:,}: dense/packed {ratio:.2f}"
                auto = [r for r in same if r["mode"] == "auto"]
                if auto:
                    text += f" (auto kept {auto[0]['chosen']}, {1e3 * pick['auto']:.2f} ms)"
                parts.append(text)
        verdicts.append(f"- embed {embed or 'one-hot'}, batch {batch}: " + "; ".join(parts))
    return "\n".join(verdicts)


# ---------------------------------------------------------------- on paper: 8 and 64 machines


def paper(measured, union_of):
    """Time per batch on N machines (one rank each, the measured per-rank batch) on 10 Gbit/s.

    compute: the measured rank's backward + update time per batch (2 ranks x 1 thread, half of
    the global batch each); exchange: a ring all-reduce of B bytes, 2 (N-1)/N B / bandwidth +
    2 (N-1) latency; packed adds the all-reduce of a byte a token of the vocabulary that agrees
    on the union (2 (N-1)/N V / bandwidth + 2 (N-1) latency) and sends only the union's rows,
    whose size is measured
    on the data for a global batch of N x the per-rank batch."""
    out = []
    for r in measured:
        raw = r["raw"]
        b = raw["bench"]
        per_rank = r["batch"] // 2
        compute = b["backward_seconds_per_batch"] + max(
            b["exchange_seconds_per_batch"] - b["union_seconds_per_batch"] - b["reduce_seconds_per_batch"], 0.0)
        cols = 4 * r["hidden"] * 2 if r["embed"] == 0 else r["embed"]
        dense_floats = r["dense_floats"]
        other = r["other_floats"]
        for n in MACHINES:
            union = union_of(per_rank * n, r["vocab"])
            if r["exchange"] == "dense":
                union = None
                bytes_ = 4 * dense_floats  # the floats all-reduced
                collectives = 1
            else:
                bytes_ = 4 * (other + union * cols) + r["vocab"]  # and the byte a token
                collectives = 2
            wire = 2 * (n - 1) / n * bytes_ / LINK_BYTES_PER_S
            latency = collectives * 2 * (n - 1) * LATENCY_S
            comm = wire + latency
            # a tree (recursive halving and doubling) instead of a ring: 2 log2 N steps a collective
            tree = wire + collectives * 2 * math.log2(n) * LATENCY_S
            tokens = b["train_tokens"] / b["batches"] / 2  # a rank's tokens per batch
            out.append({
                "embed": r["embed"], "vocab": r["vocab"], "exchange": r["exchange"], "machines": n,
                "global_batch": per_rank * n, "union": union, "bytes_per_rank": bytes_,
                "compute_ms": 1e3 * compute, "comm_ms": 1e3 * comm, "latency_ms": 1e3 * latency,
                "efficiency": compute / (compute + comm),
                "efficiency_tree_latency": compute / (compute + tree),
                "tokens_per_s": n * tokens / (compute + comm),
            })
    return out


def paper_table(rows):
    lines = ["| input | V | exchange | machines | global batch | union | MB all-reduced | compute ms | network ms | of it latency | efficiency | tokens/s | efficiency, log₂N latency |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in rows:
        lines.append(
            f"| {'embed ' + str(p['embed']) if p['embed'] else 'one-hot'} | {p['vocab']:,} | {p['exchange']} | "
            f"{p['machines']} | {p['global_batch']} | {'–' if p['union'] is None else format(p['union'], ',.0f')} | {p['bytes_per_rank'] / 1e6:.3f} | "
            f"{p['compute_ms']:.2f} | {p['comm_ms']:.2f} | {p['latency_ms']:.2f} | {100 * p['efficiency']:.0f}% | {p['tokens_per_s']:,.0f} | {100 * p['efficiency_tree_latency']:.0f}% |")
    return "\n".join(lines)


def union_sizes(train_path, seed=0):
    """A function (rows in a batch, V) -> mean distinct in-vocabulary ids (plus <unk>) over
    random batches of the training rows, with the vocabulary as rnn builds it (min count 2, the
    V most frequent)."""
    import random

    sys.path.insert(0, HERE)
    from peer_data import read_tsv, tokenize

    rows = [tokenize(t, "wordpunct") for t, _ in read_tsv(train_path)]
    counts = {}
    for tokens in rows:
        for t in tokens:
            counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts, key=lambda t: -counts[t])
    cache = {}

    def union_of(size, vocab):
        key = (size, vocab)
        if key not in cache:
            keep = set(ranked[: vocab - 1])
            rng = random.Random(seed)
            sizes = []
            for _ in range(20):
                batch = rng.sample(rows, min(size, len(rows)))
                sizes.append(len({t if t in keep else "<unk>" for tokens in batch for t in tokens}))
            cache[key] = sum(sizes) / len(sizes)
        return cache[key]

    return union_of


# ----------------------------------------------------------------------------- main


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2,000 rows, 1 epoch, a small sweep")
    p.add_argument("--set", default="movies", help="the suite's set (default movies)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3, help="seeds of the accuracy check (default 3)")
    p.add_argument("--out", default=os.path.join(HERE, "data", "ddp_results.json"))
    return p.parse_args()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    args = parse_args()
    try:
        import torch  # noqa: F401
        import rnn  # noqa: F401
    except ImportError as e:
        sys.exit(f"{e}: run with a Python that has torch and the rnn package (pip install ./python torch)")
    if not os.path.exists(RNN):
        sys.exit(f"{RNN} is missing: cargo build --release")
    suite = os.path.join(HERE, "data", "suite")
    train = os.path.join(suite, f"{args.set}_train.tsv")
    test = os.path.join(suite, f"{args.set}_test.tsv")
    if not os.path.exists(train):
        log(f"building {args.set} with fetch_suite.py")
        subprocess.run([sys.executable, os.path.join(HERE, "fetch_suite.py"), "--sets", args.set], check=True)
    state = {"waited_seconds": 0, "not_quiet": []}
    started = time.time()
    work = tempfile.mkdtemp(prefix="rnn-ddp-bench-")
    epochs = 1 if args.quick else args.epochs
    if args.quick:
        args.seeds = 1
    if args.quick:
        small = os.path.join(work, "train.tsv")
        with open(train, encoding="utf-8") as f, open(small, "w", encoding="utf-8") as g:
            for i, line in enumerate(f):
                if i > 2000:
                    break
                g.write(line)
        train = small
    results = {"date": datetime.date.today().isoformat(), "cpu": cpu(), "cores": os.cpu_count(),
               "python": platform.python_version(), "torch": __import__("torch").__version__,
               "set": args.set, "train": os.path.relpath(train, ROOT) if train.startswith(ROOT) else train,
               "epochs": epochs, "batch": args.batch, "quick": args.quick}

    # 1. throughput and accuracy
    throughput = {}
    for cell in ("rnn", "lstm"):
        cfg = {"train": train, "test": test, "cell": cell, "batch": args.batch, "epochs": epochs}
        log(f"[throughput] --cell {cell}")
        rows = [run_rnn_train(cfg, 2, state, work),
                run_rnn_ddp(cfg, 1, 2, "packed", state, work),
                run_rnn_ddp(cfg, 2, 1, "packed", state, work),
                run_rnn_ddp(cfg, 2, 1, "dense", state, work),
                run_rnn_ddp(cfg, 2, 1, "auto", state, work),
                run_torch_ddp(cfg, 2, 1, state)]
        throughput[cell] = rows
        print(f"\n### {args.set}, --cell {cell}, batch {args.batch}, {epochs} epochs\n")
        print(throughput_table(rows), flush=True)
    results["throughput"] = throughput

    # 1b. the accuracy check over more seeds: rnn.ddp and torch DDP, 2 x 1, the same rows
    seeds = list(range(args.seeds))
    check = []
    for seed in seeds:
        cfg = {"train": train, "test": test, "cell": "lstm", "batch": args.batch, "epochs": epochs,
               "seed": seed}
        if seed == 0:
            ours = next(r for r in throughput["lstm"] if r["system"] == "rnn.ddp" and r["ranks"] == 2
                        and r["mode"] == "packed")
            theirs = next(r for r in throughput["lstm"] if r["system"] == "torch DDP")
        else:
            log(f"[accuracy] seed {seed}")
            ours = run_rnn_ddp(cfg, 2, 1, "packed", state, work)
            theirs = run_torch_ddp(cfg, 2, 1, state)
        check.append({"seed": seed, "rnn_ddp": ours, "torch_ddp": theirs})
    print(f"\n### Accuracy, LSTM, 2 ranks × 1 thread, the same held-out rows and batches, seeds {seeds}\n")
    print(accuracy_table(check), flush=True)
    results["accuracy_check"] = [{"seed": c["seed"],
                                  "rnn_ddp": {k: c["rnn_ddp"][k] for k in ("valid_accuracy", "test_accuracy", "tokens_per_s")},
                                  "torch_ddp": {k: c["torch_ddp"][k] for k in ("valid_accuracy", "test_accuracy", "tokens_per_s")}}
                                 for c in check]

    # 2. packed against dense
    sweep = []
    vocabularies = [("max_vocab", 1000), ("min_count", 2), ("min_count", 1)]
    batches = [32] if args.quick else [32, 128]
    embeds = [64, 0]
    for embed in embeds:
        for kind, value in vocabularies:
            for batch in batches:
                for exchange in ("packed", "dense", "auto"):
                    cfg = {"train": train, "test": test, "cell": "lstm", "batch": batch, "epochs": 1,
                           "embed": embed, kind: value}
                    log(f"[sweep] embed {embed}, {kind} {value}, batch {batch}, {exchange}")
                    r = run_rnn_ddp(cfg, 2, 1, exchange, state, work, test=False)
                    r.update({"embed": embed, "batch": batch, "hidden": 64, "rule": f"{kind} {value}"})
                    sweep.append(r)
    for r in sweep:  # floats of the dense layout and of the packed one's non-token part
        dense = next(s for s in sweep if (s["embed"], s["vocab"], s["batch"], s["mode"])
                     == (r["embed"], r["vocab"], r["batch"], "dense"))
        packed = next(s for s in sweep if (s["embed"], s["vocab"], s["batch"], s["mode"])
                      == (r["embed"], r["vocab"], r["batch"], "packed"))
        cols = 4 * 64 * 2 if r["embed"] == 0 else r["embed"]
        r["dense_floats"] = dense["floats_per_batch"]
        r["other_floats"] = dense["floats_per_batch"] - r["vocab"] * (cols + 1)
        r["packed_union"] = packed["raw"]["bench"]["union_per_batch"]
    print(f"\n### Packed against dense: 2 ranks × 1 thread, LSTM, 1 epoch of {args.set}\n")
    print(sweep_table(sweep))
    print("\nWall time per batch, dense over packed (above 1: packed is faster):\n")
    print(crossover(sweep), flush=True)
    results["sweep"] = sweep

    # 3. on paper
    union_of = union_sizes(train)
    base = [r for r in sweep if r["batch"] == 32 and r["rule"] == "min_count 2" and r["mode"] != "auto"]
    estimate = paper(base, union_of)
    print(f"\n### On paper: N machines × 1 rank, {LINK_BYTES_PER_S * 8 / 1e9:.0f} Gbit/s, "
          f"{LATENCY_S * 1e6:.0f} µs a step, per-rank batch 16\n")
    print(paper_table(estimate), flush=True)
    results["paper"] = {"link_bytes_per_s": LINK_BYTES_PER_S, "latency_s": LATENCY_S, "rows": estimate}

    results["seconds"] = time.time() - started
    results["waited_seconds"] = state["waited_seconds"]
    results["not_quiet"] = state["not_quiet"]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    log(f"\n{results['seconds']:.0f} s (waited {state['waited_seconds']} s for a quiet machine); "
        f"wrote {args.out}")


def cpu():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
