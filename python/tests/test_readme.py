"""Every Python block of the README, run as written (issue 27, item 1).

The blocks are read from README.md itself, so that a block that no longer runs fails here
rather than in a reader's hands. A section's blocks run in order in one namespace, as a reader
runs them in one session, in a temporary folder that holds what they read: the demo's
sentences in ``data/sample`` and the model the README's ``rnn train`` command writes to
``runs/sample.safetensors`` (made by running that command, from the README's text). What each
block computes is then checked against the command line where the README says they agree.

Three substitutions are made, all named here: the Ray Train block's ``/shared/`` (a folder
every machine sees) is the temporary folder's ``shared/``, and ``ray`` itself, when it is not
installed, is a stand-in whose ``TorchTrainer.fit`` makes the gloo process group of one worker
that Ray's would make and calls the loop in it: what is tested is the README's call of
``rnn.ddp.main`` inside a group a framework made, not Ray. And the PyTorch script runs a second
time on a model of the README's ``rnn train`` command with ``--subwords`` (its path in place of
``runs/sample.safetensors``), whose branch the README's own model does not take.
"""

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import REPO

README = REPO / "README.md"


def python_blocks(text):
    """Every ```python block of ``text``: (section, first line number, code), in order; the
    section is the ``## `` heading above the block."""
    blocks, section = [], None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.strip() == "```python":
            start = i + 1
            end = lines.index("```", start)
            blocks.append((section, start + 1, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
SECTIONS = list(dict.fromkeys(section for section, _, _ in BLOCKS))


def blocks_of(section):
    return [code for name, _, code in BLOCKS if name == section]


def test_the_readme_has_the_python_blocks_this_file_runs():
    # a parser that found nothing would make every test below pass vacuously
    assert len(BLOCKS) >= 5, BLOCKS
    assert {"Model files and PyTorch", "From Python", "Training on several machines"} <= set(
        SECTIONS
    ), SECTIONS


def readme_train_command():
    """The README's first ``$ rnn train`` command (with its continuation lines), as arguments."""
    text = README.read_text(encoding="utf-8")
    start = text.index("$ rnn train ")
    command, rest = "", text[start + 2 :]
    for line in rest.split("\n"):
        command += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            break
    return shlex.split(command)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, rnn_bin):
    """A folder with the demo's sentences and the model of the README's `rnn train` command."""
    work = tmp_path_factory.mktemp("readme")
    (work / "data").mkdir()
    shutil.copytree(REPO / "data/sample", work / "data/sample")
    args = readme_train_command()
    assert args[:2] == ["rnn", "train"] and "runs/sample.safetensors" in args, args
    subprocess.run([rnn_bin] + args[1:], cwd=work, check=True, capture_output=True)
    (work / "shared").mkdir()
    shutil.copy(work / "data/sample/train.tsv", work / "shared/train.tsv")
    return work


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_stand_in():
    """Modules ray, ray.train and ray.train.torch whose TorchTrainer runs the loop once, in a
    gloo process group of one worker made before the loop, as Ray Train's workers have it."""
    ray = types.ModuleType("ray")
    train = types.ModuleType("ray.train")
    train_torch = types.ModuleType("ray.train.torch")

    class ScalingConfig:
        def __init__(self, num_workers=1, **_):
            self.num_workers = num_workers

    class TorchConfig:
        def __init__(self, backend="gloo", **_):
            self.backend = backend

    class TorchTrainer:
        def __init__(self, loop, scaling_config=None, torch_config=None):
            self.loop, self.backend = loop, torch_config.backend

        def fit(self):
            import torch.distributed as dist

            dist.init_process_group(
                self.backend,
                init_method=f"tcp://127.0.0.1:{free_port()}",
                rank=0,
                world_size=1,
            )
            try:
                self.loop({})
            finally:
                dist.destroy_process_group()

    train.ScalingConfig = ScalingConfig
    train_torch.TorchConfig = TorchConfig
    train_torch.TorchTrainer = TorchTrainer
    ray.train, train.torch = train, train_torch
    return {"ray": ray, "ray.train": train, "ray.train.torch": train_torch}


def run_section(section, workdir, monkeypatch, capsys, replace=None):
    """Runs the section's blocks in order in one namespace, in ``workdir``, with each key of
    ``replace`` in their code replaced by its value; returns the namespace and what each block
    printed."""
    monkeypatch.chdir(workdir)
    namespace = {"__name__": "__readme__"}
    printed = []
    for name, line, code in BLOCKS:
        if name != section:
            continue
        if re.search(r"\btorch\b", code):
            pytest.importorskip("torch")
        if "/shared/" in code:
            code = code.replace("/shared/", f"{workdir}/shared/")
        for old, new in (replace or {}).items():
            assert old in code, old
            code = code.replace(old, new)
        # the README's line numbers in tracebacks
        compiled = compile("\n" * (line - 1) + code, str(README), "exec")
        exec(compiled, namespace)
        printed.append(capsys.readouterr().out)
    return namespace, printed


def predict_probs(rnn_bin, model, text, cwd):
    out = subprocess.run(
        [rnn_bin, "predict", "--model", model, "--probs"],
        input=text + "\n",
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)["probs"]


def test_the_pytorch_script_prints_what_rnn_predict_prints(workdir, monkeypatch, capsys, rnn_bin):
    _, printed = run_section("Model files and PyTorch", workdir, monkeypatch, capsys)
    # a Python dict of float32 values: label -> probability
    probs = eval(printed[-1].strip().split("\n")[-1], {})
    text = re.search(r'tokens\("([^"]*)"', blocks_of("Model files and PyTorch")[0]).group(1)
    assert text == "the food was not bad!", "the README's example text (with punctuation)"
    ours = predict_probs(rnn_bin, "runs/sample.safetensors", text, workdir)
    assert set(probs) == set(ours)
    for label in ours:
        assert abs(probs[label] - ours[label]) <= 1e-5, (label, probs, ours)


def test_the_pytorch_script_reads_subword_vectors(workdir, monkeypatch, capsys, rnn_bin):
    # the README's command with --subwords, small n-grams in a small table (many shared)
    model = "runs/subwords.safetensors"
    args = [a.replace("runs/sample.", "runs/subwords.") for a in readme_train_command()[1:]]
    assert model in args
    args += ["--subwords", "2-4", "--subword-buckets", "512", "--epochs", "5"]
    subprocess.run([rnn_bin, *args], cwd=workdir, check=True, capture_output=True)
    section = "Model files and PyTorch"
    ns, printed = run_section(section, workdir, monkeypatch, capsys,
                              replace={"runs/sample.safetensors": model})
    assert ns["net"].subwords.weight.shape == (512, 64) and len(ns["subs"]) == 6
    probs = eval(printed[-1].strip().split("\n")[-1], {})
    ours = predict_probs(rnn_bin, model, "the food was not bad!", workdir)
    assert set(probs) == set(ours)
    for label in ours:
        assert abs(probs[label] - ours[label]) <= 1e-5, (label, probs, ours)


def test_the_from_python_blocks_run_and_agree_with_the_command_line(
    workdir, monkeypatch, capsys, rnn_bin
):
    ns, printed = run_section("From Python", workdir, monkeypatch, capsys)
    clf, same = ns["clf"], ns["same"]
    # clf.save made runs/ (it was there) and wrote the file that rnn predict reads
    saved = workdir / "runs/sentiment.safetensors"
    assert saved.is_file()
    text = "the food was not bad at all"
    ours = predict_probs(rnn_bin, str(saved), text, workdir)
    np.testing.assert_array_equal(
        same.predict_proba([text])[0],
        np.array([ours[str(c)] for c in same.classes_], dtype=np.float32),
    )
    # fit(valid=): the validation set was scored every epoch and picked the best epoch
    report = clf.report_
    assert report["best_epoch"] is not None
    assert all(e["valid_accuracy"] is not None for e in report["history"])
    best, accuracy = printed[1].split()
    assert int(best) == report["best_epoch"] and float(accuracy) > 0.5
    # the grid search
    search = ns["search"]
    assert search.best_params_["cell"] in ("gru", "lstm")
    assert len(search.cv_results_["params"]) == 4
    # to_torch's predict_proba is the estimator's, to f32 rounding
    if "net" in ns:
        first = ns["net"]
        np.testing.assert_allclose(
            first.predict_proba(ns["test_texts"]),
            same.predict_proba(ns["test_texts"]),
            atol=1e-5,
        )


def test_save_makes_the_folders_it_needs(workdir, monkeypatch, capsys):
    # the block's save in a fresh folder, where runs/ does not exist yet
    fresh = workdir / "fresh"
    fresh.mkdir()
    (fresh / "data").symlink_to(workdir / "data")
    run_section("From Python", fresh, monkeypatch, capsys)
    assert (fresh / "runs/sentiment.safetensors").is_file()


def test_the_ray_block_trains_through_rnn_ddp(workdir, monkeypatch, capsys):
    pytest.importorskip("torch")
    try:
        import ray  # noqa: F401
    except ImportError:
        for name, module in ray_stand_in().items():
            monkeypatch.setitem(sys.modules, name, module)
    run_section("Training on several machines", workdir, monkeypatch, capsys)
    import rnn

    model = rnn.load(str(workdir / "shared/m.safetensors"))
    assert sorted(model.classes_) == ["negative", "positive"]
