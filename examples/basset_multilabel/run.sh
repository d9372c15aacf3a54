#!/usr/bin/env bash
# The basset_multilabel example, as in the README: make synthetic sequences with motifs planted
# per task, one-hot encode them with python -m dlutil.prepare, then search, test and predict with the zoo's
# multi-label Basset. The default size suits a CPU; the full size, on a GPU:
#   LENGTH=1000 N=50000 EPOCHS=27 bash run.sh
# WORK (default: this folder) holds raw_data/, data/ and results/, one subfolder per size.
# Extra arguments go to main.py (e.g. bash run.sh --seed 0 --threads 1).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$HERE/../.."
WORK=${WORK:-$HERE}
LENGTH=${LENGTH:-216}
N=${N:-8000}
EPOCHS=${EPOCHS:-3}
SIZE="${LENGTH}bp_${N}"
RAW="$WORK/raw_data/$SIZE"
DATA="$WORK/data/$SIZE"

if [ ! -f "$RAW/labels.tsv" ]; then
	python3 "$HERE/make_data.py" --out "$RAW" --n "$N" --length "$LENGTH"
fi
if [ ! -f "$DATA/test.h5" ]; then
	PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" python3 -m dlutil.prepare fasta "$RAW/sequences.fa" --labels "$RAW/labels.tsv" \
		--task multilabel -o "$DATA"
fi
SEQ_LEN="$LENGTH" python3 "$ROOT/main.py" -f "$HERE/def.py" -d "$DATA" -r "$WORK/results/$SIZE" \
	-y -e -p 'test.h5' -ep "$EPOCHS" -bs 100 "$@"
