"""def.py of the local-ancestry example: per-variant ancestry of phased haplotypes.

    python3 ../../main.py -f def.py -d data -r results -y -e -p 'query.vcf.gz'

The data folder (``--data``) is input, read by name; nothing is written into it:

    reference.vcf.gz (.vcf, .vcf.bgz, .bcf)
                                    a phased VCF/BCF of the reference panel (one chromosome),
       + reference.samples.tsv      with sample<TAB>population (a header line may be present);
                                    converted once into the cache (dlutil.genotypes.cache:
                                    $DLUTIL_CACHE, else ~/.cache/dlutil), keyed by the content
                                    of both files: an edited table is a new panel
    or reference.h5                 the panel in the genotype HDF5 format, one label per
                                    haplotype (``python -m dlutil.prepare vcf ... --samples``);
                                    read only when there is no reference VCF
    genetic_map.txt                 optional: "position cM" per line (or PLINK .map): admixture
                                    breakpoints and windows in genetic distance (without it,
                                    1 cM per Mb); LAI_GENETIC_MAP names another file
    test.h5                         for -e: admixed haplotypes with per-variant labels
                                    (haplotypes, variants), ancestry names in its "ancestries"
                                    attribute; aligned to the panel's variants by position
    anything else, for -p           VCF/BCF or genotype HDF5 files to label, aligned by position

test.h5 and every -p input must be on the panel's chromosome (``chr22`` and ``22`` are the same)
and hold at least half of the panel's variants (``dlutil.genotypes.align.MIN_SHARED``); others
are refused with a message, never called.

Any number of ancestries, variants and haplotypes: all are read from the data. Training haplotypes
are the panel's, admixed on the fly (deepLAI's simulation); validation is a fixed set of admixed
haplotypes built once from held-out panel samples (20 % of each population).

Predictions (-p) go to ``<--result>/predictions``: ``<file>.ancestry.h5`` (probabilities
float32 (haplotypes, variants, ancestries), calls uint8, positions, samples, attribute
ancestries), ``<file>.tracts.tsv`` (haplotype, chromosome, start, end, ancestry, n_variants) and
``<file>.tracts.png`` (the first 8 haplotypes). When a ``<stem>.truth.h5`` with per-variant
labels lies beside the input, the plot shows the truth too and the accuracy is logged.

Environment variables:
    LAI_VAL_FRACTION  panel samples held out for validation (default 0.2)
    LAI_GENERATIONS   generations of the on-the-fly admixture (default 1,2, deepLAI's)
    LAI_GENETIC_MAP   a genetic map instead of the data folder's genetic_map.txt
    LAI_NETWORKS      networks the search draws from: window (default), segnet, or window,segnet
    LAI_CONFIG        one fixed configuration as JSON instead of the search space, e.g.
                      '{"network": "window", "window": 400, "learning_rate": 0.003}'
"""
import logging
import os

import numpy as np

from batch_generator import GenotypeBatchGenerator
from dlutil.genotypes.admixture import Admixer, read_genetic_map
from dlutil.genotypes.generator import admixed_validation, split_panel
from dlutil.genotypes.align import check_query
from dlutil.genotypes.cache import converted
from dlutil.genotypes.h5 import open_genotypes
from dlutil.genotypes.naive_bayes import WindowedNaiveBayes
from models.local_ancestry import LocalAncestryModel

log = logging.getLogger('dlutil')
VCF_SUFFIXES = ('.vcf', '.vcf.gz', '.vcf.bgz', '.bcf')
EPOCH_HAPLOTYPES = 1024  # founder haplotypes per epoch: -ep counts haplotypes seen, not passes
_state = {}  # 'reference': path, 'info', 'layout', 'val' (built once), 'data_dir'


def _vcf_path(stem):
    return next((stem + s for s in VCF_SUFFIXES if os.path.isfile(stem + s)), None)


def reference_path(data_dir):
    """The reference panel: reference.vcf.gz + reference.samples.tsv converted into the cache
    (keyed by their content: an edited table is a new panel), else reference.h5."""
    h5 = os.path.join(data_dir, 'reference.h5')
    vcf = _vcf_path(os.path.join(data_dir, 'reference'))
    if vcf is None:
        if os.path.isfile(h5):
            return h5
        raise FileNotFoundError(f'{data_dir}: needs reference.vcf.gz (.vcf, .vcf.bgz, .bcf) '
                                f'with reference.samples.tsv, or reference.h5')
    table = os.path.join(data_dir, 'reference.samples.tsv')
    if not os.path.isfile(table):
        raise FileNotFoundError(f'{data_dir}: {os.path.basename(vcf)} needs '
                                f'reference.samples.tsv (sample<TAB>population) beside it')
    if os.path.isfile(h5):
        log.info(f'{h5} is not read: {os.path.basename(vcf)} and reference.samples.tsv are '
                 f'the panel')
    return converted(vcf, table, kind='reference', log=log)


def load(data_dir):
    """The reference panel's metadata; sets the Model's panel layout (ancestries, positions,
    genetic positions, allele frequencies and class weights of the training haplotypes)."""
    key = os.path.abspath(data_dir)
    if _state.get('data_dir') != key:
        path = reference_path(data_dir)
        info = open_genotypes(path)
        if info.label_kind != 'haplotype':
            raise ValueError(f'{path}: a reference panel needs one label per haplotype')
        _state.clear()
        train_rows, val_rows = split_panel(info, val_fraction(), seed=0)
        _state.update(data_dir=key, reference=path, info=info, train_rows=train_rows,
                      val_rows=val_rows)
        _state['layout'] = dict(panel_statistics(path, train_rows, len(info.ancestries)),
                                ancestries=info.ancestries, positions=info.positions,
                                genetic_positions=genetic_positions(info.positions))
        log.info(f'reference panel: {info}')
    return _state


def val_fraction():
    return float(os.environ.get('LAI_VAL_FRACTION') or 0.2)


def genetic_map_path():
    """LAI_GENETIC_MAP, else genetic_map.txt in the data folder, else None."""
    if os.environ.get('LAI_GENETIC_MAP'):
        return os.environ['LAI_GENETIC_MAP']
    path = os.path.join(_state['data_dir'], 'genetic_map.txt')
    return path if os.path.isfile(path) else None


def genetic_positions(positions):
    """cM of every variant: from the genetic map, else 1 cM per Mb (windows in cM then follow
    the variant density)."""
    path = genetic_map_path()
    if path:
        return read_genetic_map(path, positions)
    return np.asarray(positions, dtype=np.float64) * 1e-6


def panel_statistics(path, rows, n_classes):
    """Allele counts per ancestry of the training haplotypes (the likelihood encoding's
    frequencies, computed once) and class weights (1 / share, mean 1) for unequal panels."""
    counts = WindowedNaiveBayes(n_classes)
    reader = GenotypeBatchGenerator(path, 256, rows=rows)
    labels = []
    for x, y in reader:
        counts.update(x, y[:, 0])
        labels.append(y[:, 0])
    reader.close()
    share = np.bincount(np.concatenate(labels), minlength=n_classes) / sum(map(len, labels))
    weights = np.where(share > 0, 1 / np.maximum(share, 1e-12), 0)
    return {'alt_counts': counts.alt, 'allele_totals': counts.total,
            'class_weights': weights / weights[share > 0].mean()}


def admixer():
    generations = os.environ.get('LAI_GENERATIONS') or '1,2'
    genetic_map = None
    if genetic_map_path():
        genetic_map = _state['layout']['genetic_positions']
    return Admixer(generations=[int(g) for g in generations.split(',')],
                   genetic_map=genetic_map)


def get_train_generator(data_dir, batch_size):
    """Training haplotypes admixed on the fly; an epoch is about EPOCH_HAPLOTYPES founders
    (whole passes over the training panel), whatever the panel's size or the batch size."""
    state = load(data_dir)
    if 'val' not in state:  # built once, with a fixed seed: every trial sees the same set
        state['val'] = admixed_validation(state['reference'], state['val_rows'],
                                          admix=admixer(), seed=0)
    passes = max(1, round(EPOCH_HAPLOTYPES / len(state['train_rows'])))
    train = GenotypeBatchGenerator(state['reference'], batch_size, rows=state['train_rows'],
                                   shuffle=True, admix=admixer(), passes=passes)
    return train, state['val']


def get_test_generator(data_dir):
    state = load(data_dir)
    path = os.path.join(data_dir, 'test.h5')
    return _aligned(path, state, ancestries=state['info'].ancestries)


def _aligned(path, state, **kwargs):
    """A generator of ``path`` aligned to the panel's variants; refused when on another
    chromosome or sharing too few variants (dlutil.genotypes.align.MIN_SHARED)."""
    generator = GenotypeBatchGenerator(path, positions=state['info'].positions, **kwargs)
    check_query(path, generator.info.chromosome, state['info'].chromosome,
                generator.alignment)
    log.info(f'{path}: {generator.alignment}')
    return generator


def _model_reference(pred_path):
    """The panel for -p: the data folder read earlier, or the first folder up from the input
    that holds reference.h5 / reference.vcf.gz."""
    if 'info' in _state:
        return _state
    folder = os.path.dirname(os.path.abspath(pred_path))
    while True:
        if os.path.isfile(os.path.join(folder, 'reference.h5')) or _vcf_path(
                os.path.join(folder, 'reference')):
            return load(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            raise FileNotFoundError(f'{pred_path}: no reference panel (reference.h5 or '
                                    f'reference.vcf.gz) in its folder or above')
        folder = parent


def get_pred_generator(pred_path):
    state = _model_reference(pred_path)
    path = pred_path
    if pred_path.endswith(VCF_SUFFIXES):  # converted into the cache, keyed by its content
        path = converted(pred_path, kind='query', log=log)
    generator = _aligned(path, state, labels=False)
    state.setdefault('predicted', {})[pred_path] = generator
    return generator


def save_prediction(pred_path, Y, out_dir):
    """Probabilities and calls (HDF5), tracts (TSV) and a tract plot (PNG) of one input, in
    ``out_dir`` (``--result``/predictions)."""
    import h5py
    from dlutil.genotypes.h5 import IGNORE, write_h5
    from dlutil.genotypes.tracts import plot_tracts, write_tracts
    state = _state
    generator = state['predicted'][pred_path]
    info, names = generator.info, state['info'].ancestries
    positions = state['info'].positions
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, os.path.basename(pred_path))

    def fill(f):
        f.create_dataset('probabilities', data=Y['probabilities'],
                         chunks=(1,) + Y['probabilities'].shape[1:])
        f.create_dataset('calls', data=Y['calls'])
        f.create_dataset('positions', data=positions)
        f.create_dataset('samples', data=np.array(info.samples, dtype=object),
                         dtype=h5py.string_dtype())
        f.attrs.update({'ancestries': names, 'chromosome': info.chromosome})

    write_h5(stem + '.ancestry.h5', fill)
    n = write_tracts(stem + '.tracts.tsv', Y['calls'], positions, info.samples, names,
                     info.chromosome)
    truth = _truth(pred_path, positions, names)
    plot_tracts(stem + '.tracts.png', Y['calls'], positions, info.samples, names,
                truth=None if truth is None else np.where(truth == IGNORE, Y['calls'], truth),
                title=f'{os.path.basename(pred_path)}: called ancestry'
                      + ('' if truth is None else ' (thin bar below: true ancestry)'))
    message = f'{pred_path}: {n} tracts -> {stem}.tracts.tsv, .tracts.png, .ancestry.h5'
    if truth is not None:
        keep = truth != IGNORE
        accuracy = float(np.mean(Y['calls'][keep] == truth[keep]))
        message += f'; per-variant accuracy against the truth file {accuracy:.4f}'
    log.info(message)


def _truth(pred_path, positions, names):
    """Per-variant labels from ``<stem>.truth.h5`` beside the input, on the model's variants."""
    base = os.path.basename(pred_path)
    for suffix in VCF_SUFFIXES + ('.h5',):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    path = os.path.join(os.path.dirname(pred_path), base + '.truth.h5')
    if not os.path.isfile(path):
        return None
    truth = GenotypeBatchGenerator(path, positions=positions, ancestries=names)
    return truth.read_all()[1]


class Model(LocalAncestryModel):
    def panel_layout(self):
        # None where this process has not read the panel (-e/-p after a finished search): the
        # network is then rebuilt from the best trial's checkpoint
        return _state.get('layout')


def get_config():
    """The window network (recommended), sized in centimorgans as gnomix sizes its windows
    (WINDOW_SPACE: windows of 0.05-0.1 cM, a smoother reaching 2.5-5 cM, a linear or small
    hidden base layer). Every configuration trains on the same schedule of haplotypes seen
    (models.local_ancestry), so none depends on the batch size. With
    LAI_NETWORKS=segnet (or window,segnet), deepLAI's SegNet with small widths, with either
    input encoding."""
    import json
    import random
    if os.environ.get('LAI_CONFIG'):
        return json.loads(os.environ['LAI_CONFIG'])
    networks = (os.environ.get('LAI_NETWORKS') or 'window').split(',')
    network = random.choice(networks)
    if network == 'segnet':
        return {'network': 'segnet', 'width': random.choice([8, 16]),
                'n_filters': random.choice([4, 8]), 'pool_size': random.choice([2, 4]),
                'n_blocks': random.choice([3, 4, 5]),
                'input_pool': random.choice([16, 32]),
                'encoding': random.choice(['likelihood', 'one_hot']),
                'learning_rate': random.choice([3e-3, 1e-2])}
    return dict({key: random.choice(values) for key, values in WINDOW_SPACE.items()},
                network='window')


#: the window network's search space; every configuration in it trains stably at any batch size
#: (tests/test_lai_training.py trains each one)
WINDOW_SPACE = {'window_cM': [0.05, 0.1], 'smoother_cM': [2.5, 5.0], 'hidden': [0, 16],
                'input_dropout': [0.0, 0.2], 'learning_rate': [3e-3, 1e-2]}
