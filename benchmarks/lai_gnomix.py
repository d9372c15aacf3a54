"""Run gnomix (Hilmarsson et al. 2021, github.com/AI-sandbox/gnomix) on a local-ancestry data
folder of ``examples/local_ancestry`` and score its calls per variant against the truth.

gnomix is not a dependency: point ``--gnomix`` at a clone of its repository and ``--python`` at
an interpreter with its requirements (xgboost, scikit-allel, sklearn-crfsuite, seaborn,
uncertainty-calibration). It is run as its README says for training from scratch::

    python gnomix.py QUERY OUT CHR False GENETIC_MAP REFERENCE SAMPLE_MAP CONFIG

(through ``python -c`` that first restores ``numpy.int``, an alias numpy 2 removed and gnomix
still uses; its liblinear logistic regressions need scikit-learn < 1.6, e.g. 1.5.2)
with its default ``config.yaml`` except ``n_cores`` and ``seed`` (and ``smooth_size`` on
chromosomes shorter than 30 cM, where gnomix refuses 75: half the windows): logistic-regression
base models on 0.2 cM windows, an XGBoost smoother over 75 windows, its own simulation of admixed
training individuals (generations 0-24) from the reference panel. The genetic map is the
constant rate the data were simulated with (``--rate``, per bp per generation; the default is
stdpopsim's HomSap chr22 mean rate), as three columns ``chromosome position cM``.

    python benchmarks/lai_gnomix.py --data DATA --work WORK --gnomix CLONE --python PY
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def write_inputs(data, work, gnomix, rate, cores, seed):
    """gnomix's sample map, genetic map and config in ``work``; returns their paths."""
    import yaml
    os.makedirs(work, exist_ok=True)
    sample_map = os.path.join(work, 'reference.smap')
    with open(os.path.join(data, 'reference.samples.tsv')) as src, open(sample_map, 'w') as out:
        for line in src:
            sample, population = line.split()[:2]
            if (sample, population) != ('sample', 'population'):
                out.write(f'{sample}\t{population}\n')
    chromosome, first, last = vcf_span(os.path.join(data, 'reference.vcf.gz'))
    genetic_map = os.path.join(work, 'constant.gmap')
    grid = np.linspace(first - 1, last + 1, 201).astype(np.int64)
    with open(genetic_map, 'w') as out:
        out.write('#chm\tpos\tpos_cm\n')
        out.writelines(f'{chromosome}\t{p}\t{(p - grid[0]) * rate * 100:.6f}\n' for p in grid)
    config = os.path.join(work, 'config.yaml')
    with open(os.path.join(gnomix, 'config.yaml')) as handle:
        settings = yaml.safe_load(handle)
    settings['model']['n_cores'] = cores
    # gnomix needs at least twice the smoother's 75 windows (0.2 cM each, 30 cM); on a shorter
    # chromosome the smoother sees half of the windows
    windows = int((last - first) * rate * 100 / settings['model']['window_size_cM'])
    settings['model']['smooth_size'] = min(settings['model']['smooth_size'], windows // 2 - 1)
    settings['seed'] = seed
    settings['verbose'] = True
    with open(config, 'w') as handle:
        yaml.safe_dump(settings, handle)
    return sample_map, genetic_map, config, chromosome


def h5_to_vcf(h5, path):
    """A phased VCF of a genotype file (REF A, ALT G, as the example's VCFs), bgzipped."""
    import h5py
    import pysam
    with h5py.File(h5) as f:
        data, positions = f['data'][:], f['positions'][:]
        samples = [s.rsplit('_', 1)[0] for s in f['samples'].asstr()[::2]]
        chromosome = str(f.attrs['chromosome'])
    plain = path[:-3]
    with open(plain, 'w') as out:
        out.write('##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,'
                  'Description="Genotype">\n')
        out.write('\t'.join(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO',
                             'FORMAT', *samples]) + '\n')
        for j, position in enumerate(positions):
            calls = '\t'.join(f'{a}|{b}' for a, b in zip(data[0::2, j], data[1::2, j]))
            out.write(f'{chromosome}\t{position}\t.\tA\tG\t.\tPASS\t.\tGT\t{calls}\n')
    pysam.tabix_compress(plain, path, force=True)
    os.remove(plain)


def vcf_span(path):
    chromosome, first, last = None, None, None
    with gzip.open(path, 'rt') as handle:
        for line in handle:
            if line.startswith('#'):
                continue
            fields = line.split('\t', 2)
            chromosome = fields[0]
            first = int(fields[1]) if first is None else first
            last = int(fields[1])
    return chromosome, first, last


def read_msp(path):
    """gnomix's .msp: windows (start, end positions) and calls (haplotype names, windows)."""
    with open(path) as handle:
        order = handle.readline()  # '#Subpopulation order/codes: AFR=0\tASIA=1...'
        header = handle.readline().rstrip('\n').lstrip('#').split('\t')
        rows = [line.rstrip('\n').split('\t') for line in handle if line.strip()]
    codes = {}
    for item in order.split(':', 1)[1].split():
        name, code = item.split('=')
        codes[int(code)] = name
    starts = np.array([int(r[1]) for r in rows])
    ends = np.array([int(r[2]) for r in rows])
    calls = np.array([[int(v) for v in r[6:]] for r in rows]).T  # (haplotypes, windows)
    return header[6:], starts, ends, calls, codes


def score(msp, truth_path):
    """Per-variant accuracy of the msp calls at the truth file's variants inside the windows."""
    import h5py
    names, starts, ends, calls, codes = read_msp(msp)
    with h5py.File(truth_path) as f:
        positions = f['positions'][:]
        label = f['label'][:]
        samples = list(f['samples'].asstr()[:])
        ancestries = list(f.attrs['ancestries'])
    # gnomix names haplotypes <sample>.0 / <sample>.1; ours <sample>_A / <sample>_B
    row = {f'{s.rsplit("_", 1)[0]}.{"AB".index(s.rsplit("_", 1)[1])}': i
           for i, s in enumerate(samples)}
    window = np.searchsorted(ends, positions, side='left')
    inside = (window < len(ends)) & (positions >= starts[np.minimum(window, len(ends) - 1)])
    as_ours = np.array([ancestries.index(codes[c]) for c in range(len(codes))])
    correct = total = 0
    for j, name in enumerate(names):
        truth = label[row[name]][inside]
        called = as_ours[calls[j][window[inside]]]
        correct += int((called == truth).sum())
        total += truth.size
    return correct / total, int(inside.sum()), len(positions)


def run(data, work, gnomix, python, rate, cores, seed, query=None):
    """gnomix trained on DATA's panel, calling ``query`` (default: test.h5's haplotypes on all
    of the panel's variants, written as a VCF) scored against its truth."""
    data, work = os.path.abspath(data), os.path.abspath(work)  # gnomix runs in its folder
    sample_map, genetic_map, config, chromosome = write_inputs(data, work, gnomix, rate, cores,
                                                               seed)
    truth = os.path.join(data, 'query.truth.h5' if query else 'test.h5')
    if query is None:
        query = os.path.join(work, 'test.vcf.gz')
        h5_to_vcf(os.path.join(data, 'test.h5'), query)
    out = os.path.join(work, 'out')
    # gnomix (2021) uses numpy.int, an alias numpy 2 removed: restore it, then run gnomix.py
    shim = ('import sys, runpy, numpy; numpy.int = int; sys.argv = sys.argv[1:]; '
            'runpy.run_path(sys.argv[0], run_name="__main__")')
    command = [python, '-c', shim, 'gnomix.py', os.path.join(data, query), out, chromosome,
               'False', genetic_map, os.path.join(data, 'reference.vcf.gz'), sample_map, config]
    env = dict(os.environ, OMP_NUM_THREADS=str(cores), MKL_NUM_THREADS=str(cores),
               OPENBLAS_NUM_THREADS=str(cores))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=gnomix, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    with open(os.path.join(work, 'gnomix.log'), 'w') as handle:
        handle.write(' '.join(command) + '\n' + done.stdout + done.stderr)
    if done.returncode:
        sys.exit(f'gnomix failed (rc {done.returncode}); see {work}/gnomix.log:\n'
                 f'{done.stderr[-2000:]}')
    stem = os.path.join(out, 'query_results.msp')
    accuracy, scored, variants = score(stem, truth)
    return {'accuracy': accuracy, 'seconds': seconds, 'scored_variants': scored,
            'variants': variants, 'command': ' '.join(command)}


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', required=True)
    parser.add_argument('--work', required=True)
    parser.add_argument('--gnomix', required=True, help='a clone of AI-sandbox/gnomix')
    parser.add_argument('--python', default=sys.executable)
    parser.add_argument('--rate', type=float, default=2.1057233894035443e-08)
    parser.add_argument('--cores', type=int, default=2)
    parser.add_argument('--seed', type=int, default=94305)
    parser.add_argument('--query', default=None,
                        help='a VCF in DATA to call (with query.truth.h5); default test.h5')
    args = parser.parse_args()
    print(json.dumps(run(args.data, args.work, args.gnomix, args.python, args.rate, args.cores,
                         args.seed, args.query), indent=1))
