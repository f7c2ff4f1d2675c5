#!/usr/bin/env bash
# The Python package's tests, as CI runs them: a fresh virtual environment, the package built
# from this checkout with the one documented command (`pip install ./python`), its test
# dependencies from PyPI by name, and pytest. The tests compare with the `rnn` binary, built
# here first. PyTorch (for to_torch's tests) is installed unless RNN_TEST_TORCH=0: PyPI's Linux
# wheel of torch brings the CUDA libraries, a few GB.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${RNN_PYTHON_VENV:-target/python-test-venv}
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "./python[test,progress]"
if [ "${RNN_TEST_TORCH:-1}" = 1 ]; then
    "$venv/bin/pip" install --quiet --no-cache-dir torch
fi
cargo build --release --quiet
# a real set for the data-parallel tests: 10,566 movie reviews from PyPI's vaderSentiment
python3 bench/fetch_suite.py --sets movies
RNN_BIN="$PWD/target/release/rnn" "$venv/bin/pytest" -q python/tests
