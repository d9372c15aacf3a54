#!/usr/bin/env bash
# The conv_seq_classifier example, as in the README: make the data, one-hot encode it into HDF5,
# then search, test and predict. Extra arguments go to main.py (e.g. bash run.sh --seed 0 -c).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -f raw_data/test.target ]; then
	python3 make_data.py --out raw_data
fi

mkdir -p data
for dtype in 'train' 'valid' 'test'
do
	paste - - -d' ' < raw_data/$dtype.fa > data/tmp.tsv
	python3 embedH5.py data/tmp.tsv raw_data/$dtype.target data/$dtype.h5
done
rm -f data/tmp.tsv

python3 ../../main.py -f conv_model.py -d data -r results -y -e -p 'test.h5*' -ep 20 -bs 100 "$@"
