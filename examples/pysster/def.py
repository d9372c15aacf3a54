"""def.py of the pysster example: pysster's CNN on the FASTA files in --data, one class each.

    python3 ../../main.py -f def.py -d data -r results -y -e -p 'predict/*.fa' -ep 9

Data: every FASTA file directly in ``--data`` (``.fa``, ``.fasta``, ``.fna``, ``.fas``,
``.faa``, each optionally ``.gz``) is one class, classes in sorted file-name order; at least
two files. Sequences may differ in length (centred, and padded to the longest with zero
columns: peaks of varying width line up on their middle), be lower case or hold N (an all-zero
column); the split is 70/15/15, stratified by class, with seed 0, so small classes are in every
set. Files to predict go in a subfolder (``-p 'predict/*.fa'``), which is
not read as a class. See fasta_data.py for the format and models/pysster.py for the model.

Environment variables:
    ALPHABET   dna, rna, protein or the letters (default: inferred from the sequences)
    STRUCTURE  structure alphabet of sequence-structure records, e.g. HIMS or '().'
               (default: none; records are sequences only)
    PADDING    center (default) or end: where shorter sequences get their zero columns
"""
import logging
import os

from hyperopt import hp

from dlutil.sequences.fasta_data import FastaData, prediction_generator
from models.pysster import PyssterModel

FASTA_SUFFIXES = ('.fa', '.fasta', '.fna', '.fas', '.faa')
log = logging.getLogger('dlutil')
_loaded = {}  # data_dir → FastaData, and 'last': the data this process read last


def class_files(data_dir):
    """The FASTA files directly in ``data_dir``, sorted by name: one class each."""
    names = sorted(name for name in os.listdir(data_dir)
                   if name.lower().removesuffix('.gz').endswith(FASTA_SUFFIXES)
                   and os.path.isfile(os.path.join(data_dir, name)))
    if len(names) < 2:
        found = ', '.join(names) or 'none'
        raise ValueError(f'{data_dir}: found {len(names)} FASTA files ({found}); this example '
                         f'needs one file per class, at least two (suffixes '
                         f'{", ".join(FASTA_SUFFIXES)}, optionally .gz)')
    return [os.path.join(data_dir, name) for name in names]


def padding():
    return os.environ.get('PADDING') or 'center'


def load(data_dir):
    key = os.path.abspath(data_dir)
    if key not in _loaded:
        data = FastaData(class_files(data_dir), alphabet=os.environ.get('ALPHABET') or None,
                         structure=os.environ.get('STRUCTURE') or None, padding=padding(),
                         seed=0)
        unknown = sum(data.unknown_letters['sequence'].values())
        log.info(f'{data}; classes {data.class_names}'
                 + (f'; {unknown} letters outside the alphabet (zero columns)' if unknown else ''))
        _loaded[key] = data
    _loaded['last'] = _loaded[key]
    # what --interpret labels its logos and plots with: the letters and the class file names
    global ALPHABET, CLASS_NAMES
    data = _loaded[key]
    ALPHABET = (data.alphabet, data.structure) if data.structure else data.alphabet
    CLASS_NAMES = list(data.class_names)
    return data


def get_train_generator(data_dir, batch_size):
    data = load(data_dir)
    return data.train(batch_size), data.val()


def get_test_generator(data_dir):
    return load(data_dir).test()


def get_pred_generator(pred_path):
    data = _loaded.get('last')
    if data is None:  # -p alone: the network pads shorter inputs to its length itself
        return prediction_generator(pred_path, os.environ.get('ALPHABET') or None,
                                    os.environ.get('STRUCTURE') or None, padding=padding())
    return prediction_generator(pred_path, data.alphabet, data.structure, data.X.shape[2],
                                data.padding)


class Model(PyssterModel):
    def data_layout(self):
        # None where this process has not read the data (-e/-p after a finished search): the
        # network is then built from the shapes in the best trial's checkpoint
        data = _loaded.get('last')
        return data.layout if data is not None else None


def get_space():
    """pysster's influential parameters (its documentation: conv_num 1–3, kernel_num, neuron_num
    and the dropouts), kernel_num and neuron_num kept small enough for a CPU, and the learning
    rate, which matters when Hyperband gives few epochs. The rest keep pysster's defaults
    (kernel_len 25, pools of 2, one dense layer, patience 5 and 15, …)."""
    return {
        'conv_num': hp.choice('conv_num', [1, 2, 3]),
        'kernel_num': hp.choice('kernel_num', [20, 50, 100]),
        'neuron_num': hp.choice('neuron_num', [50, 100, 300]),
        'dropout_input': hp.uniform('dropout_input', 0.0, 0.2),
        'dropout_conv': hp.uniform('dropout_conv', 0.2, 0.6),
        'dropout_dense': hp.uniform('dropout_dense', 0.2, 0.6),
        'learning_rate': hp.choice('learning_rate', [0.0005, 0.001, 0.002]),
    }
