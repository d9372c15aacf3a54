#!/usr/bin/env bash
# The pysster example: make pysster's artificial tutorial data, then search, test and predict.
# Extra arguments go to main.py (e.g. bash run.sh --seed 0 -c). To train on your own FASTA
# files instead, put one file per class in a folder and pass it as --data (see README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -f data/predict/sample.fa ]; then
	python3 make_data.py --out data
fi

python3 ../../main.py -f def.py -d data -r results -y -e --interpret -p 'predict/*.fa' -ep 9 "$@"
echo "motifs: $(pwd)/results/interpret/summary.html" 
