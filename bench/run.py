#!/usr/bin/env python3
"""Benchmarks the rnn binary against PyTorch (and, on short sentences, per-example numpy).

    python3 bench/run.py                  # everything: data, venv, build, three tasks (~7 min)
    python3 bench/run.py --quick          # fewer epochs and rows, for a fast look
    python3 bench/run.py --tasks words    # some of sentences,words,spam,words-gru,...,spam-lstm
    python3 bench/run.py --smoke          # only our binary on tiny generated data; no network
    python3 bench/run.py --baseline OLD   # also an older rnn binary, in alternating rounds

For every task it trains each system with the same settings, records training throughput
(tokens/s over every token of every epoch, training steps only), test accuracy and loss, peak
resident memory of the process (ru_maxrss from os.wait4) and inference throughput (tokens/s
predicting the test texts), prints a Markdown table with ratio lines, and writes the raw results
to bench/data/results.json. Set PEERS_VENV to an existing virtualenv with torch and numpy to skip
building bench/venv. See bench/README.md for what is measured and the caveats.
"""

import argparse
import datetime
import functools
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
DATA_DIR = os.path.join(BENCH_DIR, "data")
VENV_DIR = os.path.join(BENCH_DIR, "venv")
RNN_BIN = os.path.join(REPO_DIR, "target", "release", "rnn")
RESULTS_PATH = os.path.join(DATA_DIR, "results.json")

# Inference is timed over the test texts repeated until there are at least this many tokens, so
# that the 100 short test sentences take long enough to be measured.
MIN_INFERENCE_TOKENS = 100_000

# Before every measured run the runner waits until other processes use less than BUSY_CORES
# cores (sampled over QUIET_SAMPLE_S seconds), and it flags a result in the table when other
# processes used more than that during the run.
BUSY_CORES = 0.2
QUIET_SAMPLE_S = 2.0

# The settings of every task, the same for every system. `torch_epochs` caps PyTorch's epochs:
# per-example PyTorch is slow (about 2 ms a step), so on the sentences it runs 30 epochs, not 300,
# and the table marks it. Throughput does not depend on the number of epochs.
TASKS = {
    "sentences": {
        "tokens": "word",
        "hidden": 64,
        "batch": 1,
        "optimizer": "sgd",
        "lr": 0.02,
        "clip": 1.0,
        "epochs": 300,
        "max_len": None,
        "torch_epochs": 30,
        "numpy": True,
        "rounds": 3,
    },
    "words": {
        "tokens": "char",
        "hidden": 128,
        "batch": 64,
        "optimizer": "adam",
        "lr": 0.003,
        "clip": 5.0,
        "epochs": 5,
        "max_len": None,
        "torch_epochs": None,
        "numpy": False,
    },
    "spam": {
        "tokens": "word",
        "hidden": 128,
        "batch": 32,
        "optimizer": "adam",
        "lr": 0.002,
        "clip": 5.0,
        "epochs": 3,
        "max_len": 400,
        "torch_epochs": None,
        "numpy": False,
    },
}
# The words and spam tasks again with the gated cells (same data, same settings, `--cell` for
# both systems).
for _task in ("words", "spam"):
    for _cell in ("gru", "lstm"):
        TASKS[f"{_task}-{_cell}"] = dict(TASKS[_task], cell=_cell, data=_task)
# The words LSTM again with two directions, and with two layers, for what each costs (the same
# flags for both systems).
TASKS["words-lstm-bi"] = dict(TASKS["words-lstm"], bidirectional=True)
TASKS["words-lstm-2layer"] = dict(TASKS["words-lstm"], layers=2)
# The architecture each of those is compared with, and the most it may cost (tokens/s of the
# simpler one over its own).
COSTS = {"words-lstm-bi": ("words-lstm", 2.1), "words-lstm-2layer": ("words-lstm", 2.1)}

# `rounds` (default 1): how many times ours and numpy run, alternating, on a task; the table shows
# each system's median run. A per-example run takes about a second for us and half a minute for
# numpy, and this machine's speed drifts from minute to minute, so one run of each can compare a
# fast minute with a slow one; alternating rounds give both the same mix of minutes.

# --quick: epochs of every system, and training rows (None: all).
QUICK = {
    "sentences": {"epochs": 30, "torch_epochs": 30, "train_rows": None},
    "words": {"epochs": 1, "torch_epochs": None, "train_rows": 20_000},
    "spam": {"epochs": 1, "torch_epochs": None, "train_rows": 1_500},
}
for _task in TASKS:
    QUICK.setdefault(_task, QUICK[TASKS[_task].get("data", _task)])


def data_name(task):
    """The data set a task reads (the gated-cell tasks share the spam files)."""
    return TASKS[task].get("data", task)


# ---------------------------------------------------------------------------------------------
# running processes


def log(message):
    """A progress line on stderr (stdout is kept for the report)."""
    print(message, file=sys.stderr, flush=True)


def cpu_busy_seconds():
    """CPU seconds all processes have used since boot (user+nice+system+irq+softirq of /proc/stat).

    None where /proc/stat does not exist (not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait):
    """Waits (up to max_wait seconds) until other processes use less than BUSY_CORES of CPU.

    On a shared machine a compiler or test run in the background halves our timings, and PyTorch's
    spinning OpenMP threads suffer far more than that (we saw 10x). Returns the cores in use
    when we stopped waiting (None without /proc/stat)."""
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        before = cpu_busy_seconds()
        if before is None:
            return None
        time.sleep(QUIET_SAMPLE_S)
        load = (cpu_busy_seconds() - before) / QUIET_SAMPLE_S
        if load < BUSY_CORES or time.monotonic() >= deadline:
            if load >= BUSY_CORES:
                log(f"  the machine is still busy ({load:.1f} cores in use); measuring anyway")
            return load
        if not told:
            log(f"  waiting for the machine to be quiet ({load:.1f} cores in use by other processes)")
            told = True


def run_measured(argv, stdout_path=None, env=None, cwd=None, max_wait=0):
    """Runs argv to completion and returns a dict: returncode, stdout, stderr, wall_s, peak_mb,
    other_cores.

    peak_mb is the child's own peak resident set size (ru_maxrss of os.wait4 on its pid, which
    Linux reports in KiB). other_cores is the CPU that other processes used during the run, in
    cores on average (all CPU time in /proc/stat minus the child's own user+system time), so that
    a timing taken on a busy machine can be flagged. With max_wait > 0, first waits up to that
    many seconds for the machine to be quiet. stdout goes to `stdout_path` if given (e.g.
    os.devnull), else it is captured; both streams go through files so that a chatty child
    cannot block on a pipe.
    """
    if max_wait > 0:
        wait_for_quiet(max_wait)
    with tempfile.TemporaryFile() as out_tmp, tempfile.TemporaryFile() as err_tmp:
        out_target = open(stdout_path, "wb") if stdout_path else out_tmp
        try:
            busy_before = cpu_busy_seconds()
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=out_target, stderr=err_tmp, env=env, cwd=cwd)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            busy_after = cpu_busy_seconds()
        finally:
            if stdout_path:
                out_target.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        other_cores = None
        if busy_before is not None and busy_after is not None and wall > 0:
            own = usage.ru_utime + usage.ru_stime
            other_cores = max(0.0, busy_after - busy_before - own) / wall
        out_tmp.seek(0)
        err_tmp.seek(0)
        return {
            "returncode": proc.returncode,
            "stdout": out_tmp.read().decode("utf-8", "replace"),
            "stderr": err_tmp.read().decode("utf-8", "replace"),
            "wall_s": wall,
            "peak_mb": usage.ru_maxrss / 1024,
            "other_cores": other_cores,
        }


def last_json(stdout):
    """The JSON object on the last line of stdout that holds one, or None."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def cpu_count():
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_description():
    """'MODEL NAME, N cores' from lscpu (or platform when lscpu is missing)."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{model}, {cpu_count()} cores"


# ---------------------------------------------------------------------------------------------
# setting up: binary, venv


def build_binary():
    """`cargo build --release` in the repository (a no-op when it is up to date)."""
    log("cargo build --release")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO_DIR, check=True)
    if not os.path.exists(RNN_BIN):
        raise SystemExit(f"{RNN_BIN} is missing after the build")


def binary_has_threads():
    """True if `rnn train --help` lists a --threads option."""
    out = subprocess.run([RNN_BIN, "train", "--help"], capture_output=True, text=True).stdout
    return "--threads" in out


def python_has(python, modules):
    """True if `python` exists and can import every module in `modules`."""
    if not os.path.exists(python):
        return False
    code = "import " + ", ".join(modules)
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def ensure_venv():
    """The python of a virtualenv with torch and numpy: $PEERS_VENV if usable, else bench/venv."""
    peers = os.environ.get("PEERS_VENV")
    if peers:
        python = os.path.join(peers, "bin", "python")
        if python_has(python, ["torch", "numpy"]):
            log(f"using PEERS_VENV={peers}")
            return python
        log(f"PEERS_VENV={peers} has no torch and numpy; using {VENV_DIR}")
    python = os.path.join(VENV_DIR, "bin", "python")
    if python_has(python, ["torch", "numpy"]):
        return python
    log(f"creating {VENV_DIR} and installing torch and numpy from PyPI (a few minutes, a few GB)")
    subprocess.run([sys.executable, "-m", "venv", VENV_DIR], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "torch", "numpy"], check=True)
    return python


def torch_version(python):
    """torch.__version__ as the venv's python reports it."""
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    return out.stdout.strip()


# ---------------------------------------------------------------------------------------------
# data helpers


def read_tsv(path):
    """(text, label) rows of one of our TSV files (header `text<TAB>label`, no quoting)."""
    with open(path, encoding="utf-8") as f:
        f.readline()
        return [tuple(line.rstrip("\n").split("\t")) for line in f if line.strip()]


def write_tsv(path, rows):
    """Writes (text, label) rows under a `text<TAB>label` header."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("text\tlabel\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")


def count_tokens(text, tokens, max_len):
    """Tokens of a text as the binary counts them: characters, or lowercased white-space words."""
    n = len(text) if tokens == "char" else len(text.lower().split())
    return min(n, max_len) if max_len else n


# ---------------------------------------------------------------------------------------------
# the three systems


def describe(settings, epochs):
    """Short text of a task's settings for the table."""
    parts = [settings.get("cell", "rnn"), settings["tokens"], f"H {settings['hidden']}"]
    if settings.get("layers", 1) > 1:
        parts.append(f"{settings['layers']} layers")
    if settings.get("bidirectional"):
        parts.append("bidirectional")
    parts.append(f"batch {settings['batch']}")
    parts.append(f"{settings['optimizer']} {settings['lr']:g}")
    parts.append(f"clip {settings['clip']:g}")
    if settings["max_len"]:
        parts.append(f"max-len {settings['max_len']}")
    parts.append(f"{epochs} epochs")
    return ", ".join(parts)


# Everything of the network and the run that a task does not set, as the peers have it: one-hot
# input (PyTorch's embedding here is the input weights), the last state, no dropout, every
# training token kept, every epoch run on all the training rows. `rnn train`'s defaults are
# another network (see the README); a binary older than them knows none of these flags.
FIXED = ["--embed", "0", "--pool", "last", "--ngrams", "0", "--dropout", "0", "--min-count", "1", "--valid-split", "0", "--patience", "0"]


@functools.cache
def known_flags(binary):
    """The flags `binary train --help` lists (an older build knows fewer)."""
    help_text = subprocess.run([binary, "train", "--help"], capture_output=True, text=True).stdout
    return frozenset(re.findall(r"(--[a-z][a-z-]*)", help_text))


def our_train_argv(binary, train, test, model, settings, epochs, threads, old=False):
    """The `rnn train` command line for a task. For another build (`old`), the flags that fix
    the network (`FIXED`, `--bidirectional`) are given where it knows them: a build from
    before the defaults changed knows none, and trains the plain network by default; one from
    before the wide path knows all but `--ngrams`, and has no wide path."""
    argv = [binary, "train", "--train", train, "--test", test, "--model", model, "--quiet", "--json"]
    argv += ["--cell", settings.get("cell", "rnn")]
    if settings.get("layers", 1) > 1:
        argv += ["--layers", str(settings["layers"])]
    fixed = ["--bidirectional", "true" if settings.get("bidirectional") else "false"] + FIXED
    if old:
        known = known_flags(binary)
        fixed = [x for flag, value in zip(fixed[::2], fixed[1::2]) if flag in known for x in (flag, value)]
    argv += fixed
    argv += ["--tokens", settings["tokens"], "--hidden", str(settings["hidden"])]
    argv += ["--batch", str(settings["batch"]), "--optimizer", settings["optimizer"]]
    argv += ["--lr", str(settings["lr"]), "--clip", str(settings["clip"]), "--epochs", str(epochs)]
    if settings["max_len"]:
        argv += ["--max-len", str(settings["max_len"])]
    if threads:
        argv += ["--threads", str(threads)]
    return argv


def run_ours(train, test, settings, epochs, threads, workdir, max_wait, binary=RNN_BIN, system="ours"):
    """Trains with an rnn binary (ours, or the baseline's), then times `rnn predict` on the test
    texts; a result dict."""
    model = os.path.join(workdir, "model.safetensors")
    log(f"  {system}: {describe(settings, epochs)}")
    argv = our_train_argv(binary, train, test, model, settings, epochs, threads, old=system == "baseline")
    done = run_measured(argv, max_wait=max_wait)
    result = last_json(done["stdout"]) or {}
    result.update(system=system, returncode=done["returncode"], wall_s=done["wall_s"])
    result.update(peak_mb=done["peak_mb"], other_cores=done["other_cores"])
    if done["returncode"] != 0 or "train_tokens_per_s" not in result:
        result["error"] = done["stderr"].strip()[-2000:] or "no JSON line"
        return result

    texts = [text for text, _ in read_tsv(test)]
    tokens_once = sum(count_tokens(t, settings["tokens"], settings["max_len"]) for t in texts)
    repeat = inference_repeat(test, settings)
    inputs = os.path.join(workdir, "predict_input.txt")
    with open(inputs, "w", encoding="utf-8") as f:
        for _ in range(repeat):
            for text in texts:
                f.write(text + "\n")
    empty = os.path.join(workdir, "empty.txt")
    open(empty, "w").close()
    startup = run_measured([binary, "predict", "--model", model, empty], stdout_path=os.devnull)
    predict = run_measured([binary, "predict", "--model", model, inputs], stdout_path=os.devnull, max_wait=max_wait)
    if predict["returncode"] != 0:
        result["error"] = "rnn predict: " + predict["stderr"].strip()[-2000:]
        return result
    result.update(
        eval_tokens_per_s=tokens_once * repeat / predict["wall_s"],
        eval_repeat=repeat,
        predict_wall_s=predict["wall_s"],
        predict_startup_s=startup["wall_s"],
        predict_peak_mb=predict["peak_mb"],
        predict_other_cores=predict["other_cores"],
    )
    return result


def run_python(python, script, argv_tail, env_extra, system, max_wait):
    """Runs one of our Python trainers; a result dict from its JSON line plus peak memory."""
    env = dict(os.environ, **env_extra)
    done = run_measured([python, os.path.join(BENCH_DIR, script)] + argv_tail, env=env, max_wait=max_wait)
    result = last_json(done["stdout"]) or {}
    result.update(system=system, returncode=done["returncode"], wall_s=done["wall_s"])
    result.update(peak_mb=done["peak_mb"], other_cores=done["other_cores"])
    if done["returncode"] != 0 or "train_tokens_per_s" not in result:
        result["error"] = done["stderr"].strip()[-2000:] or "no JSON line"
    return result


def inference_repeat(test, settings):
    """How many times the test texts are predicted so that they hold MIN_INFERENCE_TOKENS."""
    tokens = sum(count_tokens(t, settings["tokens"], settings["max_len"]) for t, _ in read_tsv(test))
    return max(1, math.ceil(MIN_INFERENCE_TOKENS / max(tokens, 1)))


def run_torch(python, train, test, settings, epochs, threads, max_wait):
    """Trains with bench/torch_rnn.py."""
    log(f"  pytorch: {describe(settings, epochs)}")
    argv = [train, test, "--epochs", str(epochs), "--hidden", str(settings["hidden"])]
    argv += ["--batch", str(settings["batch"]), "--lr", str(settings["lr"]), "--clip", str(settings["clip"])]
    argv += ["--threads", str(threads), "--eval-repeat", str(inference_repeat(test, settings))]
    argv += ["--cell", settings.get("cell", "rnn"), "--layers", str(settings.get("layers", 1))]
    if settings.get("bidirectional"):
        argv.append("--bidirectional")
    if settings["optimizer"] == "adam":
        argv.append("--adam")
    if settings["tokens"] == "char":
        argv.append("--char")
    if settings["max_len"]:
        argv += ["--max-len", str(settings["max_len"])]
    return run_python(python, "torch_rnn.py", argv, {}, "pytorch", max_wait)


def run_numpy(python, train, test, settings, epochs, max_wait):
    """Trains with bench/numpy_rnn.py (per-example SGD; one BLAS thread)."""
    log(f"  numpy: {describe(settings, epochs)}")
    argv = [train, test, "--epochs", str(epochs), "--hidden", str(settings["hidden"])]
    argv += ["--lr", str(settings["lr"]), "--clip", str(settings["clip"])]
    argv += ["--eval-repeat", str(inference_repeat(test, settings))]
    one_thread = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return run_python(python, "numpy_rnn.py", argv, one_thread, "numpy", max_wait)


def with_retries(run, retries):
    """Calls run() again (up to `retries` more times) while other processes disturbed its timing.

    Returns the last result; it records how many attempts were made."""
    for attempt in range(retries + 1):
        result = run()
        result["attempts"] = attempt + 1
        disturbed = busy(result.get("other_cores")) or busy(result.get("predict_other_cores"))
        if "error" in result or not disturbed or attempt == retries:
            return result
        log("  other processes used the CPU during the run; running it again")
    return result


def median_run(runs):
    """The run with the median training speed (the first failed run, if any failed), with every
    run's training speed in `round_train_tokens_per_s` when there was more than one."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["train_tokens_per_s"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        median["round_train_tokens_per_s"] = [r["train_tokens_per_s"] for r in runs]
    return median


# ---------------------------------------------------------------------------------------------
# the report


def fmt_int(x):
    """A throughput with thousands separators, or '-'."""
    return f"{x:,.0f}" if isinstance(x, (int, float)) else "-"


def fmt_ratio(a, b):
    """a / b as '1.23x', or 'n/a'."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
        return f"{a / b:.2f}x"
    return "n/a"


def without_startup(ours):
    """Our inference tokens/s with the start-up time (predict on an empty file) taken out, or None."""
    if "predict_wall_s" not in ours:
        return None
    seconds = ours["predict_wall_s"] - ours["predict_startup_s"]
    tokens = ours["eval_tokens_per_s"] * ours["predict_wall_s"]
    return tokens / seconds if seconds > 0 else None


def busy(cores):
    """True if other processes used more than BUSY_CORES cores during a run."""
    return cores is not None and cores > BUSY_CORES


def table(results):
    """The Markdown table and the ratio lines of all tasks."""
    lines = [
        "| task | settings | system | train tokens/s | inference tokens/s | test acc | train s | peak MB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    flagged = False
    for task, entry in results.items():
        for system, r in entry["systems"].items():
            settings = entry["settings_by_system"][system]
            if "error" in r:
                lines.append(f"| {task} | {settings} | {system} | failed | | | | |")
                continue
            acc = f"{100 * r['test_acc']:.1f}%"
            train_mark = " †" if busy(r.get("other_cores")) else ""
            infer_mark = " †" if busy(r.get("predict_other_cores", r.get("other_cores"))) else ""
            flagged = flagged or bool(train_mark or infer_mark)
            lines.append(
                f"| {task} | {settings} | {system} | {fmt_int(r['train_tokens_per_s'])}{train_mark} | "
                f"{fmt_int(r.get('eval_tokens_per_s'))}{infer_mark} | {acc} | {r['seconds']:.1f} | {r['peak_mb']:.0f} |"
            )
    if flagged:
        lines.append("")
        lines.append(
            f"† other processes used more than {BUSY_CORES} cores on average during this run "
            "(other_cores in results.json): the timing is not reliable."
        )
    lines.append("")
    for task, entry in results.items():
        ours, torch_r, numpy_r = (entry["systems"].get(s, {}) for s in ("ours", "pytorch", "numpy"))
        parts = []
        if torch_r and "error" not in torch_r and "error" not in ours:
            acc_diff = 100 * (ours["test_acc"] - torch_r["test_acc"])
            note = ""
            if entry["torch_epochs"] != entry["epochs"]:
                note = f" (pytorch ran {entry['torch_epochs']} epochs, ours {entry['epochs']})"
            parts += [
                f"ours/pytorch train speed {fmt_ratio(ours['train_tokens_per_s'], torch_r['train_tokens_per_s'])}",
                f"ours/pytorch inference speed {fmt_ratio(ours.get('eval_tokens_per_s'), torch_r.get('eval_tokens_per_s'))}"
                f" ({fmt_ratio(without_startup(ours), torch_r.get('eval_tokens_per_s'))} without rnn predict's "
                f"{ours.get('predict_startup_s', 0):.2f} s of start-up and model loading)",
                f"accuracy ours - pytorch {acc_diff:+.1f} points{note}",
                f"pytorch/ours peak memory {fmt_ratio(torch_r['peak_mb'], ours['peak_mb'])}",
            ]
        if numpy_r and "error" not in numpy_r and "error" not in ours:
            ratio = f"ours/numpy train speed {fmt_ratio(ours['train_tokens_per_s'], numpy_r['train_tokens_per_s'])}"
            rounds = [r.get("round_train_tokens_per_s") for r in (ours, numpy_r)]
            if all(rounds):
                each = "; ".join(
                    f"{name} " + ", ".join(fmt_int(x) for x in xs) for name, xs in zip(("ours", "numpy"), rounds)
                )
                ratio += f" (median runs of {len(rounds[0])} alternating rounds, tokens/s by round: {each})"
            parts.append(ratio)
            parts.append(
                f"ours/numpy inference speed {fmt_ratio(ours.get('eval_tokens_per_s'), numpy_r.get('eval_tokens_per_s'))}"
            )
        base = entry["systems"].get("baseline", {})
        if base and "error" not in base and "error" not in ours:
            ratio = f"ours/baseline train speed {fmt_ratio(ours['train_tokens_per_s'], base['train_tokens_per_s'])}"
            rounds = [r.get("round_train_tokens_per_s") for r in (ours, base)]
            if all(rounds):
                each = "; ".join(
                    f"{name} " + ", ".join(fmt_int(x) for x in xs) for name, xs in zip(("ours", "baseline"), rounds)
                )
                ratio += f" (median runs of {len(rounds[0])} alternating rounds, tokens/s by round: {each})"
            parts.append(ratio)
            parts.append(
                f"ours/baseline inference speed {fmt_ratio(ours.get('eval_tokens_per_s'), base.get('eval_tokens_per_s'))}"
            )
        if task in COSTS and COSTS[task][0] in results:
            simpler, limit = COSTS[task]
            other = results[simpler]["systems"]["ours"]
            if "error" not in ours and "error" not in other:
                cost = fmt_ratio(other["train_tokens_per_s"], ours["train_tokens_per_s"])
                parts.append(f"costs {cost} the training time a token of {simpler} (at most {limit}x)")
        if parts:
            lines.append(f"- **{task}**: " + "; ".join(parts))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the full benchmark


def task_files(task, quick, workdir):
    """(train, test) paths for a task; with --quick the training file may be a prefix of rows."""
    train = os.path.join(DATA_DIR, f"{data_name(task)}_train.tsv")
    test = os.path.join(DATA_DIR, f"{data_name(task)}_test.tsv")
    rows = QUICK[task]["train_rows"] if quick else None
    if rows:
        subset = os.path.join(workdir, f"{task}_train_quick.tsv")
        write_tsv(subset, read_tsv(train)[:rows])
        train = subset
    return train, test


def benchmark(args):
    """Data, venv, build, then every task; prints the report and writes results.json."""
    tasks = args.tasks
    # A subprocess rather than an import, so that no __pycache__ appears in bench/.
    data = sorted({data_name(t) for t in tasks})
    fetch = [sys.executable, os.path.join(BENCH_DIR, "fetch_data.py"), "--tasks", ",".join(data)]
    subprocess.run(fetch, check=True, stdout=sys.stderr)
    python = ensure_venv() if args.peers else None
    build_binary()
    ours_threads = args.threads if binary_has_threads() else None
    header = {
        "machine": machine_description(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch_version(python) if python else "not run",
        "threads": args.threads,
        "ours_threads_flag": ours_threads is not None,
        "mode": "quick" if args.quick else "full",
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="rnn-bench-") as workdir:
        for task in tasks:
            settings = dict(TASKS[task])
            epochs = settings["epochs"]
            torch_epochs = settings["torch_epochs"] or epochs
            if args.quick:
                epochs = QUICK[task]["epochs"]
                torch_epochs = min(torch_epochs, QUICK[task]["torch_epochs"] or epochs)
            train, test = task_files(task, args.quick, workdir)
            n_train = len(read_tsv(train))
            log(f"{task}: {n_train} training rows")
            w = args.max_wait
            rounds = 1 if args.quick else settings.get("rounds", 1)
            # the baseline binary knows only the architectures it had
            baseline = args.baseline if args.baseline and task not in COSTS else None
            if baseline and not args.quick:
                rounds = max(rounds, 3)
            runs = {"ours": [], "baseline": [], "numpy": []}
            for r in range(rounds):
                if rounds > 1:
                    log(f"  round {r + 1} of {rounds}")
                runs["ours"].append(
                    with_retries(lambda: run_ours(train, test, settings, epochs, ours_threads, workdir, w), args.retries)
                )
                if baseline:
                    runs["baseline"].append(
                        with_retries(
                            lambda: run_ours(
                                train, test, settings, epochs, ours_threads, workdir, w, baseline, "baseline"
                            ),
                            args.retries,
                        )
                    )
                if settings["numpy"] and args.peers:
                    runs["numpy"].append(
                        with_retries(lambda: run_numpy(python, train, test, settings, epochs, w), args.retries)
                    )
            systems = {"ours": median_run(runs["ours"])}
            if baseline:
                systems["baseline"] = median_run(runs["baseline"])
            if args.peers:
                systems["pytorch"] = with_retries(
                    lambda: run_torch(python, train, test, settings, torch_epochs, args.threads, w), args.retries
                )
            if runs["numpy"]:
                systems["numpy"] = median_run(runs["numpy"])
            by_system = {s: describe(settings, torch_epochs if s == "pytorch" else epochs) for s in systems}
            if args.quick:
                by_system = {s: d + f", {n_train} train rows" for s, d in by_system.items()}
            for name, r in systems.items():
                if "error" in r:
                    log(f"  {name} FAILED: {r['error']}")
                else:
                    log(f"  {name}: {r['train_tokens_per_s']:,.0f} tokens/s, test acc {r['test_acc']:.3f}")
            results[task] = {
                "settings": settings,
                "epochs": epochs,
                "torch_epochs": torch_epochs,
                "train_rows": n_train,
                "settings_by_system": by_system,
                "systems": systems,
            }

    print(f"Machine: {header['machine']}; threads {args.threads} "
          f"({'passed to rnn --threads' if ours_threads else 'rnn has no --threads flag'}); "
          f"torch {header['torch']}; {header['date']}; mode {header['mode']}")
    print()
    print(table(results))
    os.makedirs(DATA_DIR, exist_ok=True)
    with open(RESULTS_PATH, "w") as f:
        json.dump({"header": header, "results": results}, f, indent=2)
    print(f"\nRaw results: {os.path.relpath(RESULTS_PATH, REPO_DIR)}")
    failed = [f"{t}/{s}" for t, e in results.items() for s, r in e["systems"].items() if "error" in r]
    if failed:
        print(f"Failed: {', '.join(failed)}")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# --smoke


def smoke_words(rng):
    """Tiny word-language data: words built from two disjoint syllable sets."""
    syllables = {"alpha": ["ka", "to", "mi", "ru"], "beta": ["sch", "ei", "ng", "ow"]}
    rows = []
    for i in range(40):
        label = "alpha" if i % 2 == 0 else "beta"
        rows.append(("".join(rng.choice(syllables[label]) for _ in range(rng.randint(2, 4))), label))
    return rows


def smoke_spam(rng):
    """Tiny e-mail-like data: spam and ham drawn from two vocabularies."""
    words = {
        "spam": "free money click now offer winner credit cash unsubscribe".split(),
        "ham": "meeting patch build tomorrow list thanks kernel review notes".split(),
    }
    rows = []
    for i in range(40):
        label = "spam" if i % 2 == 0 else "ham"
        rows.append((" ".join(rng.choice(words[label]) for _ in range(rng.randint(5, 30))), label))
    return rows


def smoke_check(name, argv, predict_argv, n_predict):
    """Runs one training and one prediction; returns a list of problems (empty if all is well)."""
    done = run_measured(argv)
    result = last_json(done["stdout"])
    problems = []
    if done["returncode"] != 0:
        problems.append(f"{name}: rnn train exited {done['returncode']}: {done['stderr'].strip()[-500:]}")
    elif result is None:
        problems.append(f"{name}: no JSON line in: {done['stdout'][-500:]!r}")
    elif not result.get("train_tokens_per_s", 0) > 0:
        problems.append(f"{name}: train_tokens_per_s is not positive: {result}")
    else:
        predicted = subprocess.run(predict_argv, capture_output=True, text=True)
        lines = predicted.stdout.splitlines()
        if predicted.returncode != 0 or len(lines) != n_predict:
            problems.append(f"{name}: rnn predict gave {len(lines)} lines for {n_predict} texts: {predicted.stderr}")
    status = "ok" if not problems else "FAILED"
    tps = result.get("train_tokens_per_s") if result else None
    print(f"smoke {name}: {status} (train {fmt_int(tps)} tokens/s, peak {done['peak_mb']:.0f} MB)")
    return problems


def smoke(args):
    """Our binary on tiny data of the three shapes, with tiny settings. Exit status 0 if all pass."""
    if not args.no_build and shutil.which("cargo"):
        build_binary()
    if not os.path.exists(RNN_BIN):
        print(f"{RNN_BIN} is missing; run cargo build --release")
        return 1
    threads = args.threads if binary_has_threads() else None
    rng = random.Random(0)
    problems = []
    with tempfile.TemporaryDirectory(prefix="rnn-bench-smoke-") as workdir:
        sample = os.path.join(REPO_DIR, "data", "sample")
        data = {"sentences": (os.path.join(sample, "train.tsv"), os.path.join(sample, "test.tsv"))}
        for name, make in (("words", smoke_words), ("spam", smoke_spam)):
            rows = make(rng)
            train, test = os.path.join(workdir, f"{name}_train.tsv"), os.path.join(workdir, f"{name}_test.tsv")
            write_tsv(train, rows[:30])
            write_tsv(test, rows[30:])
            data[name] = (train, test)
        for name in TASKS:
            settings = dict(TASKS[name], hidden=8)
            if settings["max_len"]:
                settings["max_len"] = 10
            train, test = data[data_name(name)]
            model = os.path.join(workdir, f"{name}.safetensors")
            argv = our_train_argv(RNN_BIN, train, test, model, settings, 1, threads)
            texts = os.path.join(workdir, f"{name}_texts.txt")
            test_texts = [t for t, _ in read_tsv(test)]
            with open(texts, "w", encoding="utf-8") as f:
                f.writelines(t + "\n" for t in test_texts)
            predict_argv = [RNN_BIN, "predict", "--model", model, texts]
            problems += smoke_check(name, argv, predict_argv, len(test_texts))
    for p in problems:
        print(p)
    return 1 if problems else 0


def parse_args():
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer epochs and training rows, for a fast look")
    p.add_argument("--smoke", action="store_true", help="only our binary on tiny generated data (no network)")
    p.add_argument("--threads", type=int, default=cpu_count(), help="threads for PyTorch (and rnn if it has --threads)")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    p.add_argument("--max-wait", type=float, default=600, help="seconds to wait for a quiet machine before each run (0: never wait)")
    p.add_argument("--retries", type=int, default=1, help="reruns of a measurement disturbed by other processes")
    p.add_argument("--no-build", action="store_true", help="with --smoke: use target/release/rnn as it is")
    p.add_argument(
        "--no-peers",
        dest="peers",
        action="store_false",
        help="only our binary (and --baseline): no PyTorch, no numpy, no virtualenv",
    )
    p.add_argument(
        "--baseline",
        help="another rnn binary (an older build) to run beside ours, in alternating rounds, on the tasks it can run",
    )
    args = p.parse_args()
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown tasks {unknown}; expected some of {list(TASKS)}")
    return args


def main():
    """Entry point."""
    args = parse_args()
    start = time.perf_counter()
    status = smoke(args) if args.smoke else benchmark(args)
    log(f"bench/run.py took {time.perf_counter() - start:.0f} s")
    sys.exit(status)


if __name__ == "__main__":
    main()
