#!/usr/bin/env python3
"""The Python package against its Python peers: `rnn.Classifier` vs fastText vs a PyTorch loop.

    /tmp/peers/bin/python bench/python_bench.py                 # movies, tweets, fortunes
    /tmp/peers/bin/python bench/python_bench.py --quick         # 2,000 training rows, 3 epochs
    /tmp/peers/bin/python bench/python_bench.py --sets packages,manpages --threads 1

What a Python user pays and gets from each library, in one process, on the same train/test
split of the accuracy suite's real sets (bench/fetch_suite.py builds them under
bench/data/suite/ if they are missing):

- rnn: `rnn.Classifier(threads=N)`, every other parameter at its default (which are `rnn
  train`'s: BiLSTM 64 over embeddings of 64, max pooling, Adam 0.001, batch 32, at most 20
  epochs, 10% held out, patience 5). Train seconds: the wall time of `fit(texts, labels)`;
  predict seconds: the wall time of `predict_proba(test texts)`; accuracy from its argmax.
- fastText: the `fasttext` module's `train_supervised` with its defaults but `thread=N` and
  `verbose=0`, on the training rows written as `__label__L text` lines exactly as
  bench/accuracy.py writes them (text as is). Train seconds: writing that file plus
  `train_supervised` (the module reads only files); predict seconds: `model.predict(list of
  texts, k=1)`. The list form of `predict` goes through `multilinePredict` and so works with
  NumPy 2 (the one-text form calls `np.array(..., copy=False)`, which NumPy 2 rejects). Install
  `fasttext-wheel` (fastText 0.9.2, built wheels, the C++ of Debian's `fasttext` that
  bench/accuracy.py runs): PyPI's `fasttext` 0.9.3, built here from source with g++ 12, stopped
  with "Encountered NaN" in most runs on tweets (at lr 0.05 too), where 0.9.2 never did.
- PyTorch: bench/torch_classifier.py's model and loop, imported, with its defaults (the same as
  rnn's, early stopping included) and `torch.set_num_threads(N)`. Train seconds: the wall time
  of what `fit` does for rnn: holding out, building the vocabulary, encoding, the training loop
  and the per-epoch validation; predict seconds: encoding the test texts and a softmax over
  batches of 256 in eval mode.
- majority: always the most frequent training label, for reference.

Every system sees the rows in the same order and uses seed 0. Per set it prints a Markdown
table (system | epochs | train s | predict s | accuracy) and the ratios of rnn to the others
(train and predict speed: the other's seconds over rnn's; accuracy: rnn's minus the other's, in
points). Raw numbers go to bench/data/python_results.json (--out). Progress goes to stderr.

Needs a Python with the rnn package, torch and fasttext (see bench/README.md, "The Python
package"): `pip install ./python torch fasttext-wheel`.
"""

import argparse
import contextlib
import datetime
import os
import sys
import tempfile
import time
from importlib import metadata
from unittest import mock

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing the bench modules
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fetch_suite  # noqa: E402
from accuracy import log, machine, run_majority, write_fasttext, write_results  # noqa: E402
from peer_data import read_tsv, tokenize  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(BENCH_DIR, "data", "python_results.json")
DEFAULT_SETS = ["movies", "tweets", "fortunes"]
WORD_SETS = ["fortunes", "packages", "manpages", "movies", "tweets"]  # the suite's word-token sets
QUICK_ROWS, QUICK_EPOCHS = 2000, 3
INSTALL_HINT = "pip install ./python torch fasttext-wheel   (from the repository root, in a virtualenv)"


def import_peers():
    """(rnn, fasttext, torch, torch_classifier), or exit saying which are missing and how to install them."""
    modules, missing = {}, []
    for name in ("rnn", "fasttext", "torch"):
        try:
            modules[name] = __import__(name)
        except ImportError as e:
            missing.append(f"{name} ({e})")
    if missing:
        raise SystemExit(f"{sys.executable} cannot import {', '.join(missing)}.\nInstall them with: {INSTALL_HINT}")
    import torch_classifier  # needs torch

    return modules["rnn"], modules["fasttext"], modules["torch"], torch_classifier


def timed(f, *args, **kwargs):
    """(f's result, wall seconds)."""
    start = time.perf_counter()
    result = f(*args, **kwargs)
    return result, time.perf_counter() - start


def accuracy(predicted, test):
    """The share of test rows whose label was predicted."""
    return sum(p == label for p, (_, label) in zip(predicted, test)) / len(test)


# ---------------------------------------------------------------------------------------------
# systems


def run_rnn(rnn, train, test, args):
    """rnn.Classifier with its defaults (epochs 3 with --quick)."""
    options = {"threads": args.threads, **({"epochs": QUICK_EPOCHS} if args.quick else {})}
    clf = rnn.Classifier(**options)
    _, train_seconds = timed(clf.fit, [t for t, _ in train], [y for _, y in train])
    probs, predict_seconds = timed(clf.predict_proba, [t for t, _ in test])
    return {
        "test_acc": accuracy(clf.classes_[probs.argmax(axis=1)], test),
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
        "epochs": len(clf.history_),
        "best_epoch": clf.best_epoch_,
        "loop_seconds": clf.report_["train_seconds"],
    }


def train_fasttext(fasttext, train, threads, workdir):
    """A fastText model trained with the module's defaults from `__label__L text` lines."""
    path = os.path.join(workdir, "train.txt")
    write_fasttext(train, False, path, None)
    return fasttext.train_supervised(input=path, thread=threads, verbose=0)


def run_fasttext(fasttext, train, test, args):
    """fastText's train_supervised with its defaults; the top label of every test text."""
    with tempfile.TemporaryDirectory(prefix="rnn-python-bench-") as workdir:
        model, train_seconds = timed(train_fasttext, fasttext, train, args.threads, workdir)
    # read_tsv splits the file on newlines, so no text holds one (which predict would refuse)
    (labels, _), predict_seconds = timed(model.predict, [t for t, _ in test], k=1)
    predicted = [top[0].removeprefix("__label__") for top in labels]
    return {
        "test_acc": accuracy(predicted, test),
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
        "epochs": model.epoch,
    }


def torch_settings(torch_classifier, args):
    """torch_classifier.py's defaults, as its own command line gives them (epochs 3 with --quick)."""
    argv = ["torch_classifier.py", "TRAIN", "TEST"]
    if args.quick:
        argv += ["--epochs", str(QUICK_EPOCHS)]
    with mock.patch.object(sys, "argv", argv):
        return torch_classifier.parse_args()


def torch_fit(tc, torch, rows, settings):
    """(net, vocabulary, label ids, loop seconds, epochs run, best epoch): what Classifier.fit
    does, in PyTorch, as torch_classifier.py's main does it."""
    torch.manual_seed(settings.seed)
    train_rows, valid_rows = tc.stratified_holdout(rows, settings.valid_split, settings.seed)
    vocab = tc.build_vocab((tokenize(t, settings.tokens, settings.max_len) for t, _ in train_rows), settings.min_count)
    labels = {name: i for i, name in enumerate(sorted({y for _, y in rows}))}
    train = tc.encode(train_rows, vocab, labels, settings.tokens, settings.max_len)
    valid = tc.encode(valid_rows, vocab, labels, settings.tokens, settings.max_len)
    net = tc.Classifier(len(vocab), len(labels), settings)
    return (net, vocab, labels, *tc.fit(net, train, valid, settings))


def torch_predict_proba(tc, torch, net, vocab, labels, texts, settings):
    """The softmax over the classes of every text, in eval mode and batches of tc.EVAL_BATCH."""
    unused = next(iter(labels))  # tc.encode pairs texts with label ids, which predicting ignores
    examples = tc.encode([(t, unused) for t in texts], vocab, labels, settings.tokens, settings.max_len)
    net.eval()
    parts = []
    with torch.no_grad():
        for k in range(0, len(examples), tc.EVAL_BATCH):
            ids, lengths, _ = tc.collate(examples[k : k + tc.EVAL_BATCH])
            parts.append(torch.softmax(net(ids, lengths), dim=1))
    return torch.cat(parts)


def run_pytorch(tc, torch, train, test, args):
    """bench/torch_classifier.py's model and loop with its defaults, in this process."""
    settings = torch_settings(tc, args)
    torch.set_num_threads(args.threads)
    (net, vocab, labels, loop_seconds, epochs, best_epoch), train_seconds = timed(torch_fit, tc, torch, train, settings)
    probs, predict_seconds = timed(torch_predict_proba, tc, torch, net, vocab, labels, [t for t, _ in test], settings)
    names = sorted(labels, key=labels.get)
    return {
        "test_acc": accuracy([names[i] for i in probs.argmax(dim=1).tolist()], test),
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "loop_seconds": loop_seconds,
    }


# ---------------------------------------------------------------------------------------------
# report

TITLES = {"rnn": "rnn.Classifier", "fasttext": "fastText (Python)", "pytorch": "PyTorch loop", "majority": "majority"}


def row(system, result):
    """One table row."""
    if system == "majority":
        return f"| {TITLES[system]} | | | | {100 * result['test_acc']:.1f}% |"
    return (
        f"| {TITLES[system]} | {result['epochs']} | {result['train_seconds']:.2f} | "
        f"{result['predict_seconds']:.3f} | {100 * result['test_acc']:.1f}% |"
    )


def faster(rnn_seconds, other_seconds):
    """How much faster (or slower) rnn is than another system."""
    r = other_seconds / rnn_seconds
    return f"{r:.1f}x faster" if r >= 1 else f"{1 / r:.1f}x slower"


def ratio(rnn, other, title):
    """rnn against another system: speed ratios and the accuracy difference."""
    return (
        f"rnn vs {title}: trains {faster(rnn['train_seconds'], other['train_seconds'])}, "
        f"predicts {faster(rnn['predict_seconds'], other['predict_seconds'])}, "
        f"accuracy {100 * (rnn['test_acc'] - other['test_acc']):+.1f} points"
    )


def report(name, sizes, results):
    """The Markdown table of one set and the ratio lines."""
    lines = [
        f"**{name}** ({sizes})",
        "",
        "| system | epochs | train s | predict s | accuracy |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [row(system, results[system]) for system in ("rnn", "fasttext", "pytorch", "majority")]
    lines.append("")
    lines += [f"- {ratio(results['rnn'], results[s], TITLES[s])}" for s in ("pytorch", "fasttext")]
    return "\n".join(lines)


def versions():
    """The distribution and version that provides each module measured (fasttext comes as
    `fasttext` or `fasttext-wheel`, for one)."""
    providers = metadata.packages_distributions()
    found = {}
    for module in ("rnn", "fasttext", "torch", "numpy"):
        dist = providers.get(module, [module])[0]
        found[module] = f"{dist} {metadata.version(dist)}"
    return found


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(DEFAULT_SETS), help=f"comma-separated sets of {','.join(WORD_SETS)}")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every system (default: every core)")
    p.add_argument("--quick", action="store_true", help=f"the first {QUICK_ROWS} training rows, {QUICK_EPOCHS} epochs")
    p.add_argument("--out", default=DEFAULT_OUT, help="where the raw results go (JSON)")
    args = p.parse_args()
    args.sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in args.sets if s not in WORD_SETS]
    if unknown:
        p.error(f"unknown sets {unknown}; expected some of {WORD_SETS}")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def main():
    """Builds missing sets, runs every system on every set, prints the tables."""
    args = parse_args()
    rnn, fasttext, torch, torch_classifier = import_peers()
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the tables
        fetch_suite.ensure(args.sets)
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "threads": args.threads,
        "quick": args.quick,
        "results": {},
    }
    runs = {
        "rnn": lambda train, test: run_rnn(rnn, train, test, args),
        "fasttext": lambda train, test: run_fasttext(fasttext, train, test, args),
        "pytorch": lambda train, test: run_pytorch(torch_classifier, torch, train, test, args),
        "majority": run_majority,
    }
    tables = []
    for name in args.sets:
        train_path, test_path = fetch_suite.paths(name)
        train, test = read_tsv(train_path), read_tsv(test_path)
        if args.quick:
            train = train[:QUICK_ROWS]
        results = record["results"][name] = {"train_rows": len(train), "test_rows": len(test)}
        for system, run in runs.items():
            results[system] = run(train, test)
            log(f"{name}: {system}: {100 * results[system]['test_acc']:.1f}%, {results[system]['train_seconds']:.1f} s")
            write_results(args.out, record)
        tables.append(report(name, f"{len(train):,} train / {len(test):,} test rows", results))
    print(f"{record['date']}, {record['machine']}, --threads {args.threads}{', --quick' if args.quick else ''}")
    print(", ".join(record["versions"].values()))
    for table in tables:
        print()
        print(table)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
