#!/usr/bin/env bash
# The local-ancestry example: simulate a panel and admixed people from a published human
# demography (stdpopsim), then search -> evaluate -> predict. Extra arguments go to main.py
# (e.g. --seed 1). To run on your own data, fill a folder as README.md describes and pass it as
# DATA=folder; nothing is written into it (the converted panel goes to the cache,
# $DLUTIL_CACHE or ~/.cache/dlutil; predictions to results/predictions).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
DATA=${DATA:-data}

if [ ! -f "$DATA/reference.vcf.gz" ] && [ ! -f "$DATA/reference.h5" ]; then
	python3 simulate.py --out "$DATA"
fi
python3 ../../main.py -f def.py -d "$DATA" -r results -y -e -p 'query.vcf.gz' -ep 9 --threads 1 "$@"
echo "tracts: $(pwd)/results/predictions/query.vcf.gz.tracts.tsv and .tracts.png"
