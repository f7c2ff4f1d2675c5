#!/usr/bin/env python3
"""The accuracy suite: test accuracy and training time of `rnn train` and its peers on real text.

    python3 bench/accuracy.py                                   # every set, every system
    python3 bench/accuracy.py --rnn /tmp/rnn-baseline --rnn-flags "--cell lstm --optimizer adam --batch 32"
    python3 bench/accuracy.py --sets names,code --systems rnn,fasttext --seeds 0,1,2

For every set of the suite (bench/fetch_suite.py builds them under bench/data/suite/ if they are
missing) it trains and tests, one run at a time:

- majority: always the most frequent training label.
- bayes: multinomial naive Bayes with add-one smoothing (bench/naive_bayes.py) on the rnn
  binary's tokens (lowercased words, or characters).
- fasttext: Debian's `fasttext supervised` with its defaults, except -thread 1 (one thread, so
  that a run is reproducible); fasttext-ng2: the same with -wordNgrams 2 -epoch 25. Accuracy is
  computed from `fasttext predict` and checked against the P@1 of `fasttext test` (one label a
  row, so P@1 is accuracy). On character sets fastText reads the characters separated by spaces,
  with U+2581 (▁) standing for a space, since it would otherwise see one token a word.
- pytorch: bench/torch_classifier.py with the same settings as `rnn train`: its defaults are the
  binary's, and it gets the --rnn-flags too unless --torch-flags is given.
- rnn: `rnn train --train T --test E --model M --quiet --json --seed S --threads N`, plus
  `--tokens char` on character sets, plus --rnn-flags.

Training seconds: each system's own training time. rnn: `seconds` of its JSON (the training
loop); pytorch: `train_seconds` (the training loop); fastText: the wall time of `fasttext
supervised` (reading the file and training); naive Bayes: counting; majority: 0.

rnn and pytorch run once per seed (--seeds) and the table shows the mean over seeds. The table
is printed as Markdown; every raw number goes to bench/data/accuracy_results.json (--out).
fastText is installed with apt-get if missing. The PyTorch column needs a Python with torch:
$PEERS_VENV, or bench/venv (as bench/run.py builds it); without one it is left out with a note.
No network access other than the package registries (to build the data and install fastText).
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing the bench modules
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fetch_suite  # noqa: E402
import naive_bayes  # noqa: E402
from peer_data import read_tsv  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
DEFAULT_RNN = os.path.join(REPO_DIR, "target", "release", "rnn")
DEFAULT_OUT = os.path.join(BENCH_DIR, "data", "accuracy_results.json")
TORCH_SCRIPT = os.path.join(BENCH_DIR, "torch_classifier.py")
VENV_DIR = os.path.join(BENCH_DIR, "venv")

# Suite entry -> (data set in bench/data/suite/, tokens, what kind of text it covers).
SUITE = {
    "fortunes": ("fortunes", "word", "short texts by topic, 20+ classes, imbalanced"),
    "packages": ("packages", "word", "package descriptions, 20+ classes, imbalanced"),
    "manpages": ("manpages", "word", "documents, under 1,000 training rows"),
    "movies": ("movies", "word", "sentiment"),
    "tweets": ("tweets", "word", "sentiment, 3 classes"),
    "code": ("code", "char", "code by language, characters"),
    "langid-word": ("langid", "word", "multilingual, words"),
    "langid-char": ("langid", "char", "multilingual, characters"),
    "names": ("names", "char", "names by sex, characters"),
}
SYSTEMS = ["majority", "bayes", "fasttext", "fasttext-ng2", "pytorch", "rnn"]
SYSTEM_TITLES = {
    "majority": "majority",
    "bayes": "naive Bayes",
    "fasttext": "fastText",
    "fasttext-ng2": "fastText ng2 ep25",
    "pytorch": "PyTorch",
    "rnn": "rnn",
}
FASTTEXT_VARIANTS = {"fasttext": [], "fasttext-ng2": ["-wordNgrams", "2", "-epoch", "25"]}
SPACE_MARK = "\u2581"


def log(message):
    """Progress goes to stderr, so that stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


class RunFailed(Exception):
    """A training command that exited non-zero, timed out, or printed no result."""


# ---------------------------------------------------------------------------------------------
# tools


def find_fasttext():
    """The path of the fasttext binary, installing Debian's `fasttext` package if it is missing."""
    found = shutil.which("fasttext")
    if found:
        return found
    log("fasttext not found; installing Debian's fasttext package")
    install = ["apt-get", "install", "-y", "fasttext"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        done = subprocess.run(install, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"could not install Debian's fasttext package: {done.stderr.strip()[-500:]}")
    found = shutil.which("fasttext")
    if not found:
        raise SystemExit("apt-get installed fasttext, but no fasttext binary is on the PATH")
    return found


def package_version(package):
    """The installed version of a Debian package, or None."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def find_torch_python():
    """(python, torch version) of $PEERS_VENV or bench/venv if it imports torch, else (None, why not)."""
    candidates = [os.environ.get("PEERS_VENV"), VENV_DIR]
    tried = []
    for venv in filter(None, candidates):
        python = os.path.join(venv, "bin", "python")
        if os.path.exists(python):
            done = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
            if done.returncode == 0:
                return python, done.stdout.strip()
        tried.append(venv)
    return None, f"no Python with torch in {' or '.join(tried)} (set PEERS_VENV, or run bench/run.py once to build bench/venv)"


def run_json(cmd, timeout):
    """(last stdout line parsed as JSON, wall seconds) of a command; RunFailed if it fails."""
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunFailed(f"timed out after {timeout} s") from None
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RunFailed(f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), seconds
    except (IndexError, json.JSONDecodeError):
        raise RunFailed(f"no JSON line in the output: {done.stdout.strip()[-300:]}") from None


# ---------------------------------------------------------------------------------------------
# systems


def run_majority(train, test):
    """Accuracy of always answering the most frequent training label (ties: the first by name)."""
    counts = {}
    for _, label in train:
        counts[label] = counts.get(label, 0) + 1
    majority = max(sorted(counts), key=lambda label: counts[label])
    return {"test_acc": sum(label == majority for _, label in test) / len(test), "train_seconds": 0.0, "label": majority}


def run_bayes(train, test, char):
    """Accuracy and counting time of multinomial naive Bayes."""
    start = time.perf_counter()
    model = naive_bayes.train(train, char)
    seconds = time.perf_counter() - start
    return {"test_acc": naive_bayes.accuracy(model, test), "train_seconds": seconds}


def fasttext_text(text, char):
    """A text as fastText should read it: as is, or its characters separated by spaces."""
    if not char:
        return text
    return " ".join(SPACE_MARK if c == " " else c for c in text)


def write_fasttext(rows, char, labelled_path, text_path):
    """Writes `__label__L text` lines, and (if text_path) the bare texts for `fasttext predict`."""
    with open(labelled_path, "w", encoding="utf-8") as f:
        f.writelines(f"__label__{label} {fasttext_text(text, char)}\n" for text, label in rows)
    if text_path:
        with open(text_path, "w", encoding="utf-8") as f:
            f.writelines(f"{fasttext_text(text, char)}\n" for text, _ in rows)


def run_fasttext(binary, train, test, char, extra, workdir, timeout):
    """Trains fastText supervised; accuracy from `predict`, checked against `test`'s P@1."""
    train_txt, test_txt, test_bare = (os.path.join(workdir, n) for n in ("train.txt", "test.txt", "test.bare"))
    write_fasttext(train, char, train_txt, None)
    write_fasttext(test, char, test_txt, test_bare)
    model = os.path.join(workdir, "model")
    cmd = [binary, "supervised", "-input", train_txt, "-output", model, "-thread", "1", "-verbose", "0"] + extra
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunFailed(f"timed out after {timeout} s") from None
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RunFailed(f"fasttext supervised exit {done.returncode}: {done.stderr.strip()[-300:]}")
    report = subprocess.run([binary, "test", model + ".bin", test_txt], capture_output=True, text=True, check=True).stdout
    p_at_1 = float(next(line.split()[1] for line in report.splitlines() if line.startswith("P@1")))
    predicted = subprocess.run([binary, "predict", model + ".bin", test_bare], capture_output=True, text=True, check=True).stdout.splitlines()
    if len(predicted) != len(test):
        raise RunFailed(f"fasttext predict gave {len(predicted)} lines for {len(test)} texts")
    acc = sum(p == f"__label__{label}" for p, (_, label) in zip(predicted, test)) / len(test)
    if abs(acc - p_at_1) > 0.0006:  # `fasttext test` prints P@1 to 3 decimals
        log(f"  warning: fasttext predict gives {acc:.4f} but fasttext test P@1 {p_at_1:.3f}")
    return {"test_acc": acc, "p_at_1": p_at_1, "train_seconds": seconds}


def run_pytorch(python, paths, tokens, flags, seed, threads, timeout):
    """One seed of bench/torch_classifier.py."""
    cmd = [python, TORCH_SCRIPT, *paths, "--tokens", tokens, "--seed", str(seed)]
    if threads:
        cmd += ["--threads", str(threads)]
    result, wall = run_json(cmd + shlex.split(flags), timeout)
    return {**result, "wall_seconds": wall}


def run_rnn(binary, paths, tokens, flags, seed, threads, workdir, timeout):
    """One seed of `rnn train` with the set's token flag and the extra flags."""
    cmd = [binary, "train", "--train", paths[0], "--test", paths[1], "--model", os.path.join(workdir, "model.safetensors")]
    cmd += ["--quiet", "--json", "--seed", str(seed)]
    if tokens == "char":
        cmd += ["--tokens", "char"]
    if threads:
        cmd += ["--threads", str(threads)]
    result, wall = run_json(cmd + shlex.split(flags), timeout)
    # with --autotune, `seconds` are the kept trial's: the whole search's are the cost
    seconds = result.get("autotune", {}).get("seconds", result["seconds"])
    return {**result, "train_seconds": seconds, "wall_seconds": wall}


def over_seeds(run_one, seeds):
    """Runs `run_one(seed)` for every seed; the mean accuracy and seconds, and every run."""
    runs = [run_one(seed) for seed in seeds]
    return {
        "test_acc": sum(r["test_acc"] for r in runs) / len(runs),
        "train_seconds": sum(r["train_seconds"] for r in runs) / len(runs),
        "seeds": seeds,
        "runs": runs,
    }


def run_system(system, entry, tools, args):
    """The result of one system on one suite entry ({'error': ...} if it failed)."""
    data, tokens, _ = SUITE[entry]
    paths = fetch_suite.paths(data)
    train, test = read_tsv(paths[0]), read_tsv(paths[1])
    char = tokens == "char"
    with tempfile.TemporaryDirectory(prefix="rnn-accuracy-") as workdir:
        try:
            if system == "majority":
                return run_majority(train, test)
            if system == "bayes":
                return run_bayes(train, test, char)
            if system in FASTTEXT_VARIANTS:
                return run_fasttext(tools["fasttext"], train, test, char, FASTTEXT_VARIANTS[system], workdir, args.timeout)
            if system == "pytorch":
                return over_seeds(
                    lambda s: run_pytorch(tools["python"], paths, tokens, args.torch_flags, s, args.threads, args.timeout),
                    args.seeds,
                )
            return over_seeds(
                lambda s: run_rnn(args.rnn, paths, tokens, args.rnn_flags, s, args.threads, workdir, args.timeout),
                args.seeds,
            )
        except RunFailed as e:
            return {"error": str(e)}


# ---------------------------------------------------------------------------------------------
# report


def cell(result, with_seconds=True):
    """A table cell: accuracy and training seconds, or what went wrong."""
    if result is None:
        return ""
    if "error" in result:
        return "timeout" if "timed out" in result["error"] else "failed"
    acc = f"{100 * result['test_acc']:.1f}"
    return f"{acc} · {result['train_seconds']:.1f}s" if with_seconds else acc


def mean_cell(results, entries, system):
    """The mean accuracy over the entries and the total seconds; says so if some are missing."""
    done = [results[e][system] for e in entries if "error" not in results[e].get(system, {"error": ""})]
    if not done:
        return ""
    text = cell({"test_acc": sum(r["test_acc"] for r in done) / len(done), "train_seconds": sum(r["train_seconds"] for r in done)}, system != "majority")
    return text if len(done) == len(entries) else f"{text} ({len(done)} of {len(entries)})"


def table(results, entries, systems, manifest):
    """The Markdown table: one row per entry, then the mean row."""
    head = ["set", "kind", "classes", "train / test"] + [SYSTEM_TITLES[s] for s in systems]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * 4 + " ---: |" * len(systems)]
    for entry in entries:
        data, _, kind = SUITE[entry]
        m = manifest[data]
        row = [entry, kind, str(m["classes"]), f"{m['train_rows']:,} / {m['test_rows']:,}"]
        row += [cell(results[entry].get(s), s != "majority") for s in systems]
        lines.append("| " + " | ".join(row) + " |")
    mean = ["**mean**", "", "", ""] + [mean_cell(results, entries, s) for s in systems]
    lines.append("| " + " | ".join(mean) + " |")
    return "\n".join(lines)


def machine():
    """One line about the machine."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_results(path, record):
    """Writes the raw results atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rnn", default=DEFAULT_RNN, help="the rnn binary (default: target/release/rnn)")
    p.add_argument("--rnn-flags", default="", help="extra flags for `rnn train`, e.g. \"--cell lstm --optimizer adam\"")
    p.add_argument("--torch-flags", default=None, help="flags for torch_classifier.py (default: the same as --rnn-flags)")
    p.add_argument("--sets", default=",".join(SUITE), help=f"comma-separated entries of {','.join(SUITE)}")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated systems of {','.join(SYSTEMS)}")
    p.add_argument("--seeds", default="0", help="seeds for rnn and pytorch; the table shows the mean")
    p.add_argument("--threads", type=int, default=1, help="--threads for rnn and pytorch (0: leave it to them)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds a training run may take")
    p.add_argument("--out", default=DEFAULT_OUT, help="where the raw results go (JSON)")
    args = p.parse_args()
    args.sets = [s for s in args.sets.split(",") if s]
    args.systems = [s for s in args.systems.split(",") if s]
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    for name, chosen, known in (("sets", args.sets, SUITE), ("systems", args.systems, SYSTEMS)):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            p.error(f"unknown {name} {unknown}; expected some of {list(known)}")
    if args.torch_flags is None:
        args.torch_flags = args.rnn_flags
    if "rnn" in args.systems and not os.access(args.rnn, os.X_OK):
        p.error(f"no rnn binary at {args.rnn} (build it with `cargo build --release`, or pass --rnn PATH)")
    return args


def main():
    """Builds what is missing, runs every system on every set, prints the table."""
    args = parse_args()
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the table
        fetch_suite.ensure(sorted({SUITE[e][0] for e in args.sets}))
    manifest = fetch_suite.read_manifest()
    tools, notes = {}, []
    if any(s in FASTTEXT_VARIANTS for s in args.systems):
        tools["fasttext"] = find_fasttext()
    systems = [s for s in SYSTEMS if s in args.systems]
    if "pytorch" in systems:
        tools["python"], torch_info = find_torch_python()
        if tools["python"] is None:
            notes.append(f"PyTorch left out: {torch_info}")
            systems.remove("pytorch")
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "rnn": args.rnn,
        "rnn_flags": args.rnn_flags,
        "torch_flags": args.torch_flags,
        "torch": torch_info if "pytorch" in systems else None,
        "fasttext": package_version("fasttext") if "fasttext" in tools else None,
        "seeds": args.seeds,
        "threads": args.threads,
        "results": {},
    }
    for entry in args.sets:
        record["results"][entry] = {}
        for system in systems:
            result = run_system(system, entry, tools, args)
            record["results"][entry][system] = result
            log(f"{entry}: {system}: {cell(result, system != 'majority')}" + (f" ({result['error']})" if "error" in result else ""))
            write_results(args.out, record)
    print(f"{record['date']}, {record['machine']}; rnn: {args.rnn} {args.rnn_flags}".rstrip())
    print(f"PyTorch flags: {args.torch_flags or '(defaults)'}; seeds {','.join(map(str, args.seeds))}; threads {args.threads}")
    for note in notes:
        print(note)
    print()
    print(table(record["results"], args.sets, systems, manifest))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
