#!/usr/bin/env bash
# The hotspot example through the command line: a short Hyperband search over phi, g and h on
# msprime simulations made on the fly, a test on fresh simulations, predictions for
# data/observed.npy. Extra arguments go to main.py (e.g. bash run.sh --threads 1 --seed 0).
# Small as shipped (5 batches of 50 an epoch, R = 3); see README.md for a real run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -f data/observed.npy ]; then
	python3 make_data.py --out data
fi

python3 ../../main.py -f def.py -d data -r results -y -e -p observed.npy -ep 3 -bs 50 "$@"
echo "truth: $(python3 -c 'import numpy; print(numpy.load("data/observed_labels.npy").tolist())')"
