#!/usr/bin/env bash
# defiNETti's Gaussian example: train() on simulations made on the fly, then compare the network
# with the sample mean and standard deviation. Extra arguments go to run.py (e.g. --batches 3000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export PYTHONPATH="$(cd ../.. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
python3 run.py "$@"
