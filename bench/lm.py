#!/usr/bin/env python3
"""Benchmarks `rnn lm` (character language models) against PyTorch and Karpathy's min-char-rnn.

    python3 bench/lm.py                    # 2 corpora x 4 systems, 120 s of training each: ~20 minutes
    python3 bench/lm.py --seconds 60       # a shorter training budget for every run
    python3 bench/lm.py --smoke            # 5 s a run on the first 200,000 characters of each corpus
    python3 bench/lm.py --corpora shakespeare --systems ours,pytorch --cell gru --hidden 128

On each corpus (bench/data/lm/*.txt, built by bench/fetch_corpora.py when missing) it trains,
for the same wall-clock budget each:

- ours: `rnn lm --tokens char` with the shared settings (default: a 2-layer LSTM, H 256, one-hot
  input, truncated BPTT over 50 steps, 32 streams, Adam 0.002, clip 5);
- pytorch: bench/torch_lm.py with the same settings and threads;
- min-char-rnn: bench/min_char_rnn.py, Karpathy's numpy script at its own settings (Elman, H 100,
  25 steps, one stream, Adagrad 0.1, clip 5), one BLAS thread, without its sampling unless
  --mcr-sample;
- ours-mcr: `rnn lm` at min-char-rnn's settings.

Every system holds out the last 5% of the characters and reports its training throughput
(predicted characters per second of the training loop), then the validation loss in bits per
character after the budget. The runner adds each process's peak resident memory (ru_maxrss),
prints one Markdown table per corpus with ratio lines, and writes everything to
bench/data/lm_results.json. See bench/README-lm.md.
"""

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing run.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fetch_corpora  # noqa: E402
from run import (  # noqa: E402
    BUSY_CORES,
    DATA_DIR,
    REPO_DIR,
    RNN_BIN,
    build_binary,
    busy,
    cpu_count,
    ensure_venv,
    fmt_int,
    fmt_ratio,
    last_json,
    log,
    machine_description,
    run_measured,
    torch_version,
    with_retries,
)

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
RESULTS_PATH = os.path.join(DATA_DIR, "lm_results.json")
SMOKE_RESULTS_PATH = os.path.join(DATA_DIR, "lm_results_smoke.json")

SYSTEMS = ("ours", "pytorch", "min-char-rnn", "ours-mcr")
VALID_FRACTION = 0.05
SEED = 0
SMOKE_SECONDS = 5.0
SMOKE_CHARS = 200_000

# min-char-rnn's settings, fixed in its script; ours-mcr runs `rnn lm` with them.
MCR_SETTINGS = {
    "cell": "rnn",
    "hidden": 100,
    "layers": 1,
    "embed": 0,
    "bptt": 25,
    "batch": 1,
    "optimizer": "adagrad",
    "lr": 0.1,
    "clip": 5.0,
}
# Added to every `rnn lm` command line (lm.py --rnn-extra): `rnn lm` stops after 20 epochs, or
# after 3 without a better validation loss, by default; the peers train until the budget is spent.
RNN_EXTRA = "--epochs 1000000 --patience 0"
# numpy's BLAS gets one thread, as bench/run.py's numpy peer does: min-char-rnn's products are
# 100 x 100 matrix-vector ones, too small to share.
ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ---------------------------------------------------------------------------------------------
# data


def read_text(path):
    """A corpus as a str of code points (strict UTF-8, no newline translation), as every system
    reads it."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def corpus_facts(path):
    """Characters, the split and the vocabulary size (training characters + unknown) of a corpus."""
    text = read_text(path)
    cut = len(text) - int(len(text) * VALID_FRACTION)
    chars = set(text[:cut])
    return {
        "path": os.path.relpath(path, REPO_DIR),
        "chars": len(text),
        "train_chars": cut,
        "valid_chars": len(text) - cut,
        "vocab": len(chars) + 1,
        "unknown_in_valid": sum(1 for c in text[cut:] if c not in chars),
    }


def smoke_slices(paths, workdir):
    """The first SMOKE_CHARS characters of each corpus, as files in workdir."""
    sliced = {}
    for name, path in paths.items():
        sliced[name] = os.path.join(workdir, f"{name}.txt")
        with open(sliced[name], "w", encoding="utf-8", newline="") as f:
            f.write(read_text(path)[:SMOKE_CHARS])
    return sliced


# ---------------------------------------------------------------------------------------------
# the systems


def describe(settings, seconds, threads=None, extra=()):
    """Short text of a run's settings for the table."""
    parts = [settings["cell"], f"H {settings['hidden']}"]
    if settings["layers"] > 1:
        parts.append(f"{settings['layers']} layers")
    parts.append("one-hot" if settings["embed"] == 0 else f"embed {settings['embed']}")
    parts.append(f"bptt {settings['bptt']}")
    parts.append(f"batch {settings['batch']}")
    parts.append(f"{settings['optimizer']} {settings['lr']:g}")
    parts.append(f"clip {settings['clip']:g}")
    parts.extend(extra)
    if threads is not None:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    parts.append(f"{seconds:g} s")
    return ", ".join(parts)


def our_lm_argv(binary, corpus, model, settings, seconds, threads, extra=RNN_EXTRA):
    """The `rnn lm` command line (`extra`: more flags, split at white space)."""
    argv = [binary, "lm", "--train", corpus, "--model", model, "--tokens", "char"]
    for flag in ("cell", "hidden", "layers", "embed", "bptt", "batch", "optimizer"):
        argv += [f"--{flag}", str(settings[flag])]
    argv += ["--lr", f"{settings['lr']:g}", "--clip", f"{settings['clip']:g}", "--max-seconds", f"{seconds:g}"]
    argv += ["--valid-fraction", f"{VALID_FRACTION:g}", "--seed", str(SEED), "--threads", str(threads)]
    return argv + extra.split() + ["--quiet", "--json"]


def torch_argv(python, corpus, settings, seconds, threads):
    """The bench/torch_lm.py command line."""
    argv = [python, os.path.join(BENCH_DIR, "torch_lm.py"), corpus]
    for flag in ("cell", "hidden", "layers", "embed", "bptt", "batch", "optimizer"):
        argv += [f"--{flag}", str(settings[flag])]
    argv += ["--lr", f"{settings['lr']:g}", "--clip", f"{settings['clip']:g}", "--seconds", f"{seconds:g}"]
    return argv + ["--threads", str(threads), "--valid-fraction", f"{VALID_FRACTION:g}", "--seed", str(SEED)]


def mcr_argv(python, corpus, seconds, sample):
    """The bench/min_char_rnn.py command line."""
    argv = [python, os.path.join(BENCH_DIR, "min_char_rnn.py"), corpus, "--seconds", f"{seconds:g}"]
    argv += ["--valid-fraction", f"{VALID_FRACTION:g}", "--seed", str(SEED)]
    return argv if sample else argv + ["--no-sample"]


def short_path(arg):
    """An argument for the log: paths inside the repository relative to it."""
    if os.path.isabs(arg) and arg.startswith(REPO_DIR + os.sep):
        return os.path.relpath(arg, REPO_DIR)
    return arg


def error_line(error):
    """The line of a failed run's output that says most: the first that starts with 'error',
    else the last."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    for line in lines:
        if line.lower().startswith("error"):
            return line
    return lines[-1] if lines else "failed"


def run_system(system, argv, env_extra, max_wait):
    """Runs one training process; a result dict from its JSON line plus wall time and peak memory,
    with `error` when it failed."""
    log(f"  {system}: {' '.join(short_path(a) for a in argv)}")
    if not os.path.exists(argv[0]):
        return {"system": system, "error": f"{argv[0]} is missing", "argv": argv}
    env = dict(os.environ, **env_extra) if env_extra else None
    done = run_measured(argv, env=env, max_wait=max_wait)
    result = last_json(done["stdout"]) or {}
    result.update(system=system, returncode=done["returncode"], wall_s=done["wall_s"], argv=argv)
    result.update(peak_mb=done["peak_mb"], other_cores=done["other_cores"])
    bpc = result.get("valid_bpc")
    if done["returncode"] != 0 or not result.get("train_tokens_per_s", 0) > 0:
        result["error"] = done["stderr"].strip()[-2000:] or done["stdout"].strip()[-2000:] or "no JSON line"
    elif not isinstance(bpc, (int, float)) or not math.isfinite(bpc):
        result["error"] = f"valid_bpc is {bpc!r}"
    return result


# ---------------------------------------------------------------------------------------------
# the report


def fmt_bpc(x):
    """Bits per character with three decimals, or '-'."""
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def table(corpus, facts, entry):
    """The Markdown table and ratio lines of one corpus."""
    lines = [
        f"### {corpus}: {facts['chars']:,} characters ({facts['train_chars']:,} train, "
        f"{facts['valid_chars']:,} valid), vocabulary {facts['vocab']} (with the unknown id)",
        "",
        "| system | settings | train tokens/s | train tokens | valid bpc | peak MB |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    systems = entry["systems"]
    marked = False
    for name, r in systems.items():
        settings = entry["settings_by_system"][name]
        if "error" in r:
            lines.append(f"| {name} | {settings} | FAILED: {error_line(r['error'])[:120]} | - | - | - |")
            continue
        mark = " †" if busy(r.get("other_cores")) else ""
        marked = marked or bool(mark)
        lines.append(
            f"| {name} | {settings} | {fmt_int(r['train_tokens_per_s'])}{mark} | {fmt_int(r.get('train_tokens'))} "
            f"| {fmt_bpc(r.get('valid_bpc'))} | {r['peak_mb']:.0f} |"
        )
    lines.append("")
    for ours, peer in (("ours", "pytorch"), ("ours-mcr", "min-char-rnn")):
        if ours in systems and peer in systems:
            a, b = systems[ours], systems[peer]
            lines.append(
                f"{ours} / {peer}: {fmt_ratio(a.get('train_tokens_per_s'), b.get('train_tokens_per_s'))} tokens/s "
                f"(valid bpc {fmt_bpc(a.get('valid_bpc'))} against {fmt_bpc(b.get('valid_bpc'))}, "
                f"after {fmt_int(a.get('train_tokens'))} and {fmt_int(b.get('train_tokens'))} training tokens)"
            )
    if marked:
        lines.append(f"† other processes used more than {BUSY_CORES} cores on average during this run")
    return "\n".join(lines)


def git_head():
    """The short commit of the work tree, with '+dirty' when it has changes, or '?'."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_DIR, capture_output=True, text=True)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


# ---------------------------------------------------------------------------------------------
# main


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="training budget of every run (default 120; 5 with --smoke)")
    p.add_argument("--smoke", action="store_true", help=f"a {SMOKE_SECONDS:g} s budget on the first {SMOKE_CHARS:,} characters of each corpus")
    p.add_argument("--threads", type=int, default=2, help="--threads of rnn lm and torch_lm.py")
    p.add_argument("--corpora", default=",".join(fetch_corpora.CORPORA), help=f"comma-separated subset of {','.join(fetch_corpora.CORPORA)}")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    g = p.add_argument_group("the shared settings of ours and pytorch")
    g.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="lstm")
    g.add_argument("--hidden", type=int, default=256)
    g.add_argument("--layers", type=int, default=2)
    g.add_argument("--embed", type=int, default=0, help="embedding width (0: one-hot input)")
    g.add_argument("--bptt", type=int, default=50)
    g.add_argument("--batch", type=int, default=32)
    g.add_argument("--optimizer", choices=["sgd", "adam", "adagrad"], default="adam")
    g.add_argument("--lr", type=float, default=0.002)
    g.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--mcr-sample", action="store_true", help="let min-char-rnn sample 200 characters every 100 iterations, as the original does")
    p.add_argument("--rnn-extra", default=RNN_EXTRA, help=f"more flags for every rnn lm run (default: {RNN_EXTRA!r})")
    p.add_argument("--rnn", default=RNN_BIN, help="the rnn binary (default target/release/rnn)")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build --release first")
    p.add_argument("--max-wait", type=float, default=None, help="seconds to wait for a quiet machine before each run (default 600; 0 with --smoke)")
    p.add_argument("--retries", type=int, default=None, help="reruns of a run disturbed by other processes (default 1; 0 with --smoke)")
    p.add_argument("--out", default=None, help="results JSON (default bench/data/lm_results.json; lm_results_smoke.json with --smoke)")
    args = p.parse_args()
    args.corpora = [c for c in args.corpora.split(",") if c]
    args.systems = [s for s in args.systems.split(",") if s]
    for what, given, known in (("corpora", args.corpora, fetch_corpora.CORPORA), ("systems", args.systems, SYSTEMS)):
        unknown = [x for x in given if x not in known]
        if unknown:
            p.error(f"unknown {what} {unknown}; expected some of {list(known)}")
    if args.seconds is None:
        args.seconds = SMOKE_SECONDS if args.smoke else 120.0
    if args.max_wait is None:
        args.max_wait = 0.0 if args.smoke else 600.0
    if args.retries is None:
        args.retries = 0 if args.smoke else 1
    if args.out is None:
        args.out = SMOKE_RESULTS_PATH if args.smoke else RESULTS_PATH
    return args


def main():
    """Entry point."""
    args = parse_args()
    started = time.perf_counter()
    shared = {k: getattr(args, k) for k in MCR_SETTINGS}
    if any(s in args.systems for s in ("ours", "ours-mcr")) and not args.no_build:
        try:
            build_binary()
        except (OSError, subprocess.CalledProcessError, SystemExit) as e:
            log(f"cargo build --release failed ({e}); running {args.rnn} as it is, if it exists")
    python = ensure_venv() if any(s in args.systems for s in ("pytorch", "min-char-rnn")) else None
    header = {
        "machine": machine_description(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_head(),
        "torch": torch_version(python) if python else "not run",
        "threads": args.threads,
        "seconds": args.seconds,
        "mode": "smoke" if args.smoke else "full",
        "shared_settings": shared,
        "mcr_settings": MCR_SETTINGS,
        "mcr_sample": args.mcr_sample,
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="rnn-bench-lm-") as workdir:
        paths = fetch_corpora.ensure(args.corpora)
        if args.smoke:
            paths = smoke_slices(paths, workdir)
        for corpus, path in paths.items():
            facts = corpus_facts(path)
            log(f"{corpus}: {facts['chars']:,} characters, vocabulary {facts['vocab']}")
            model = os.path.join(workdir, f"{corpus}.model")
            mcr_extra = ["sampling 200 chars every 100 iterations" if args.mcr_sample else "no sampling"]
            plans = {
                "ours": (
                    lambda: our_lm_argv(args.rnn, path, model, shared, args.seconds, args.threads, args.rnn_extra),
                    {},
                    describe(shared, args.seconds, args.threads),
                ),
                "pytorch": (
                    lambda: torch_argv(python, path, shared, args.seconds, args.threads),
                    {},
                    describe(shared, args.seconds, args.threads),
                ),
                "min-char-rnn": (
                    lambda: mcr_argv(python, path, args.seconds, args.mcr_sample),
                    ONE_BLAS_THREAD,
                    describe(MCR_SETTINGS, args.seconds, 1, mcr_extra),
                ),
                "ours-mcr": (
                    lambda: our_lm_argv(args.rnn, path, model, MCR_SETTINGS, args.seconds, args.threads, args.rnn_extra),
                    {},
                    describe(MCR_SETTINGS, args.seconds, args.threads),
                ),
            }
            systems, by_system = {}, {}
            for name in args.systems:
                make_argv, env_extra, settings = plans[name]
                by_system[name] = settings
                systems[name] = with_retries(lambda: run_system(name, make_argv(), env_extra, args.max_wait), args.retries)
                r = systems[name]
                if "error" in r:
                    log(f"  {name} FAILED: {r['error'][-300:]}")
                else:
                    if r.get("vocab") not in (None, facts["vocab"]):
                        r["warning"] = f"vocab {r['vocab']}, expected {facts['vocab']}"
                        log(f"  {name}: WARNING: {r['warning']}")
                    log(f"  {name}: {r['train_tokens_per_s']:,.0f} tokens/s, valid bpc {r['valid_bpc']:.3f}, peak {r['peak_mb']:.0f} MB")
            results[corpus] = {"corpus": facts, "settings_by_system": by_system, "systems": systems}

    print(
        f"Machine: {header['machine']}; threads {args.threads}; torch {header['torch']}; "
        f"{header['date']}; HEAD {header['git']}; {args.seconds:g} s a run; mode {header['mode']}"
    )
    for corpus, entry in results.items():
        print()
        print(table(corpus, entry["corpus"], entry))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"header": header, "results": results}, f, indent=2)
    print(f"\nRaw results: {os.path.relpath(args.out, REPO_DIR)}")
    log(f"bench/lm.py took {time.perf_counter() - started:.0f} s")
    failed = [f"{c}/{s}" for c, e in results.items() for s, r in e["systems"].items() if "error" in r]
    if failed:
        print(f"Failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
