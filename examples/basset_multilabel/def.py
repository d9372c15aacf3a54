"""def.py of the basset_multilabel example: the zoo's multi-label Basset on dlutil.prepare's HDF5.

    SEQ_LEN=216 python3 ../../main.py -f def.py -d data/216bp_8000 -r results/216bp_8000 \
        -y -e -p 'test.h5' -ep 3 -bs 100

SEQ_LEN (default 1000) is the length of the sequences in the data; the network is built for it.
"""
import os
import random

import models.basset
from batch_generator import H5pyBatchGenerator


def get_train_generator(data_dir, batch_size):
    train = H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True,
                               reverse_complement=True)  # motifs sit on either strand
    return train, H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5'))


def get_test_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'test.h5'))


def get_pred_generator(pred_path):
    return H5pyBatchGenerator(pred_path)


def get_config():
    return {'n_classes': 4, 'seq_len': int(os.environ.get('SEQ_LEN', '1000')),
            'lr': random.choice([1e-4, 3e-4, 1e-3]), 'dropout': random.choice([0.3, 0.5])}


class Model(models.basset.BassetMultiLabel):
    task_names = ['ctcf', 'ap1', 'gata', 'nrf1']  # the columns of labels.tsv: auroc_ctcf, ...
