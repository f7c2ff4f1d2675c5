#!/usr/bin/env python3
"""Requests/s and latency of `rnn serve` against the same model in FastAPI + uvicorn + PyTorch.

    python3 bench/serve.py                        # data, model, venv, build, both servers (~3 min)
    python3 bench/serve.py --model runs/spam.safetensors --duration 5 --clients 1,64

The model is the spam task's (bench/run.py's settings: words, max-len 400, H 128, Adam), trained
once into bench/data/serve_spam.safetensors unless --model is given. Both servers load the same
file and listen on 127.0.0.1 only. `rnn serve` runs as shipped; the Python server is
bench/torch_serve.py, a plain FastAPI handler that runs PyTorch on each request's texts, as a
Python user would write it, under uvicorn with one worker.

The load generator is wrk (Debian's `wrk`; `apt-get install wrk`). Every request is
`POST /v1/models/spam:predict` with one e-mail of the spam test set, the e-mails in turn. Each
run is bounded in time (--duration seconds) and in count (--max-requests a wrk thread), with a
5 s timeout a request. Before the runs, both servers must agree on the labels of the first
test e-mails, and a short warm-up run is discarded. The runner waits for a quiet machine before
each run (bench/run.py's wait_for_quiet). Reported: requests/s, p50 and p99 latency as wrk
measures them, and errors (connection errors, timeouts and non-2xx answers). Beside them, the
compute limit: `rnn predict` over the same e-mails (repeated to COMPUTE_LIMIT_TEXTS lines), its
start-up and model loading subtracted, in texts/s: what the library's batched `Model::predict`
does with no HTTP, no JSON and no waiting for requests to arrive.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing run.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: logging, quiet-machine wait, venv, build, data paths)

MODEL_NAME = "spam"
PATH = f"/v1/models/{MODEL_NAME}:predict"
# E-mails of the test set used as request bodies, in turn.
BODIES = 400
WARM_UP_S = 2
# Lines of the input `rnn predict` reads to measure the compute limit.
COMPUTE_LIMIT_TEXTS = 20_000


def free_port():
    """A port that nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, body=None, timeout=10):
    """The JSON answer of a GET (or of a POST with `body`)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def wait_ready(base, process, limit_s=120):
    """Waits until GET /healthz answers (the Python server takes seconds to import torch)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {base} exited with {process.returncode}")
        try:
            http_json(base + "/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server at {base} was not ready after {limit_s} s")


def stop(process):
    """SIGTERM, then SIGKILL after 15 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def lua_string(text):
    """A Lua long string holding `text` verbatim."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def wrk_script(bodies, max_requests, path):
    """A wrk script: POST each body in turn, stop a thread after max_requests answers, and print
    one JSON line of results at the end."""
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {{ {", ".join(lua_string(b) for b in bodies)} }}
local i = 0
local answered = 0
function request()
  i = i % #bodies + 1
  return wrk.format(nil, "{path}", nil, bodies[i])
end
function response(status, headers, body)
  answered = answered + 1
  if answered >= {max_requests} then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk(script_path, base, clients, duration, max_wait):
    """One bounded wrk run; a dict of requests_per_s, p50_ms, p99_ms, errors."""
    if max_wait > 0:
        run.wait_for_quiet(max_wait)
    threads = min(2, clients)
    argv = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{duration}s", "--timeout", "5s"]
    argv += ["-s", script_path, base + PATH]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    result = run.last_json(done.stdout)
    if done.returncode != 0 or result is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "clients": clients,
        "requests": result["requests"],
        "requests_per_s": result["requests"] / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": errors,
    }


def ensure_model(path):
    """Trains the spam task's model into `path` unless it exists."""
    if os.path.exists(path):
        return
    train = os.path.join(run.DATA_DIR, "spam_train.tsv")
    settings = run.TASKS["spam"]
    run.log(f"training {path} ({run.describe(settings, settings['epochs'])})")
    test = os.path.join(run.DATA_DIR, "spam_test.tsv")
    argv = run.our_train_argv(run.RNN_BIN, train, test, path, settings, settings["epochs"], None)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def ensure_web_venv(python):
    """Installs fastapi, uvicorn and safetensors into the benchmark's venv if it lacks them."""
    if not run.python_has(python, ["fastapi", "uvicorn", "safetensors"]):
        run.log("installing fastapi, uvicorn and safetensors into the venv")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "fastapi", "uvicorn", "safetensors"],
                       check=True)


def start_ours(model, port, threads):
    argv = [run.RNN_BIN, "serve", "--model", model, "--name", MODEL_NAME, "--port", str(port)]
    if threads:
        argv += ["--threads", str(threads)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_python(python, model, port, threads):
    script = os.path.join(run.BENCH_DIR, "torch_serve.py")
    argv = [python, script, model, "--name", MODEL_NAME, "--port", str(port)]
    if threads:
        argv += ["--threads", str(threads)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def check_agreement(bases, texts):
    """Both servers give the same labels (and probabilities within 1e-4) on the first texts."""
    answers = [http_json(base + PATH, {"instances": texts})["predictions"] for base in bases]
    for text, ours, theirs in zip(texts, *answers):
        if ours["label"] != theirs["label"] or any(
            abs(ours["probs"][k] - theirs["probs"][k]) > 1e-4 for k in ours["probs"]
        ):
            raise SystemExit(f"the servers disagree on {text[:80]!r}: {ours} against {theirs}")


def compute_limit(model, texts, threads, workdir, max_wait):
    """Texts/s of `rnn predict` over `texts` repeated, start-up and model loading subtracted."""
    lines = os.path.join(workdir, "limit.txt")
    repeat = -(-COMPUTE_LIMIT_TEXTS // len(texts))
    with open(lines, "w", encoding="utf-8") as f:
        for _ in range(repeat):
            f.writelines(t + "\n" for t in texts)
    empty = os.path.join(workdir, "empty.txt")
    open(empty, "w").close()
    predict = [run.RNN_BIN, "predict", "--model", model]
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    startup = min(run.run_measured(predict + [empty], stdout_path=os.devnull, env=env)["wall_s"] for _ in range(3))
    done = run.run_measured(predict + [lines], stdout_path=os.devnull, env=env, max_wait=max_wait)
    if done["returncode"] != 0:
        raise SystemExit(f"rnn predict failed: {done['stderr']}")
    return repeat * len(texts) / (done["wall_s"] - startup)


def table(results, clients, limit):
    """The report: one row a system and client count, then the ratios."""
    lines = ["| clients | server | requests/s | p50 ms | p99 ms | errors |", "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for c in clients:
        for system in ("rnn serve", "FastAPI + PyTorch"):
            r = results[system][c]
            lines.append(f"| {c} | {system} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | "
                         f"{r['p99_ms']:.2f} | {r['errors']} |")
    lines.append("")
    for c in clients:
        ours, theirs = results["rnn serve"][c], results["FastAPI + PyTorch"][c]
        ratio = ours["requests_per_s"] / theirs["requests_per_s"] if theirs["requests_per_s"] else float("inf")
        lines.append(f"{c} clients: rnn serve does {ratio:.1f}x the requests/s, p99 "
                     f"{ours['p99_ms']:.2f} ms against {theirs['p99_ms']:.2f} ms; rnn serve reaches "
                     f"{100 * ours['requests_per_s'] / limit:.0f}% of the compute limit")
    lines.append(f"compute limit (rnn predict over the same e-mails, batched, without start-up): {limit:,.0f} texts/s")
    return "\n".join(lines)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="an rnn model file [default: train the spam task's model once]")
    p.add_argument("--clients", default="1,16,64", help="comma-separated numbers of concurrent clients")
    p.add_argument("--duration", type=int, default=10, help="seconds of each run")
    p.add_argument("--max-requests", type=int, default=200_000, help="answers a wrk thread waits for at most")
    p.add_argument("--threads", type=int, default=run.cpu_count(), help="threads of each server (rnn --threads, torch.set_num_threads)")
    p.add_argument("--max-wait", type=float, default=120, help="seconds to wait for a quiet machine before each run")
    p.add_argument("--no-build", action="store_true", help="use target/release/rnn as it is")
    return p.parse_args()


def main():
    args = parse_args()
    clients = [int(c) for c in args.clients.split(",") if c]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    if not args.no_build:
        run.build_binary()
    if not os.path.exists(os.path.join(run.DATA_DIR, "spam_test.tsv")):
        subprocess.run([sys.executable, os.path.join(run.BENCH_DIR, "fetch_data.py"), "--tasks", "spam"], check=True)
    model = args.model or os.path.join(run.DATA_DIR, "serve_spam.safetensors")
    ensure_model(model)
    python = run.ensure_venv()
    ensure_web_venv(python)

    texts = [text for text, _ in run.read_tsv(os.path.join(run.DATA_DIR, "spam_test.tsv"))][:BODIES]
    bodies = [json.dumps({"instances": [t]}) for t in texts]
    results = {}
    with tempfile.TemporaryDirectory(prefix="rnn-bench-serve-") as workdir:
        limit = compute_limit(model, texts, args.threads, workdir, args.max_wait)
        run.log(f"compute limit: {limit:,.0f} texts/s")
        script = os.path.join(workdir, "load.lua")
        with open(script, "w", encoding="utf-8") as f:
            f.write(wrk_script(bodies, args.max_requests, PATH))
        ports = {"rnn serve": free_port(), "FastAPI + PyTorch": free_port()}
        bases = {system: f"http://127.0.0.1:{port}" for system, port in ports.items()}
        servers = {
            "rnn serve": start_ours(model, ports["rnn serve"], args.threads),
            "FastAPI + PyTorch": start_python(python, model, ports["FastAPI + PyTorch"], args.threads),
        }
        try:
            for system, base in bases.items():
                wait_ready(base, servers[system])
            check_agreement(list(bases.values()), texts[:50])
            run.log("both servers agree on the first 50 test e-mails")
            for system, base in bases.items():
                # Only one server runs at a time: the other is paused.
                for other, process in servers.items():
                    process.send_signal(signal.SIGCONT if other == system else signal.SIGSTOP)
                run_wrk(script, base, 16, WARM_UP_S, 0)
                results[system] = {}
                for c in clients:
                    r = run_wrk(script, base, c, args.duration, args.max_wait)
                    results[system][c] = r
                    run.log(f"  {system}, {c} clients: {r['requests_per_s']:,.0f} requests/s, "
                            f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['errors']} errors")
        finally:
            for process in servers.values():
                process.send_signal(signal.SIGCONT)
                stop(process)
    print(f"{run.machine_description()}; {args.duration} s a run; {time.strftime('%Y-%m-%d')}")
    print(table(results, clients, limit))
    with open(os.path.join(run.DATA_DIR, "serve_results.json"), "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "machine": run.machine_description(),
                   "threads": args.threads, "duration_s": args.duration, "results": results,
                   "compute_limit_texts_per_s": limit}, f, indent=1)


if __name__ == "__main__":
    main()
