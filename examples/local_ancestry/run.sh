#!/usr/bin/env bash
# The local-ancestry example: simulate a 3-population panel and admixed people with msprime,
# then prepare -> search -> evaluate -> predict. Extra arguments go to main.py (e.g. --seed 1).
# To run on your own data, fill a folder as README.md describes and pass it as DATA=folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
DATA=${DATA:-data}

if [ ! -f "$DATA/reference.vcf.gz" ] && [ ! -f "$DATA/reference.h5" ]; then
	python3 simulate.py --out "$DATA"
fi
if [ -f "$DATA/reference.vcf.gz" ] && [ ! "$DATA/reference.h5" -nt "$DATA/reference.vcf.gz" ]; then
	PYTHONPATH=../..${PYTHONPATH:+:$PYTHONPATH} python3 -m dlutil.prepare vcf "$DATA/reference.vcf.gz" --samples "$DATA/reference.samples.tsv" \
		-o "$DATA/reference.h5"
fi

export LAI_OUT=${LAI_OUT:-results/predictions}
python3 ../../main.py -f def.py -d "$DATA" -r results -y -e -p 'query.vcf.gz' -ep 9 -bs 16 \
	--threads 1 "$@"
echo "tracts: $(pwd)/$LAI_OUT/query.vcf.gz.tracts.tsv and .tracts.png"
