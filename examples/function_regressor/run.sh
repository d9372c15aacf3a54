#!/usr/bin/env bash
# The function_regressor example, as in the README: make the data, then search, test and predict.
# VAL_RATIO (read by reg_model.py) sets the validation fraction of X_train/Y_train.
# Extra arguments go to main.py (e.g. bash run.sh --seed 0 -c).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -f data/X_pred.csv ]; then
	python3 make_data.py --out data
fi

VAL_RATIO=${VAL_RATIO:-0.25} python3 ../../main.py -f reg_model.py -d data -r results -y -e -p X_pred.csv -ep 50 -bs 100 "$@"
