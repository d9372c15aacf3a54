"""Screenshots of report.html in headless Chromium while a search runs and after it has finished,
and whether the page reloads itself in each state (it should while running, and not after).

    python benchmarks/report_screenshots.py OUT_DIR [--chromium /usr/bin/chromium]

Needs playwright (``pip install playwright``) and a Chromium: playwright's own
(``playwright install chromium``) or the system's (``apt-get install chromium``). A small
search (random one-hot sequences, six hyperparameters, epochs slowed to about a second each)
runs in a temporary folder; OUT_DIR gets ``running.png`` and ``finished.png``. Not a test:
look at the pictures.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEF = '''
import os
import random
import time

from torch import nn, optim

from base_model import ClassificationModel, ConvClassificationNetwork
from batch_generator import H5pyBatchGenerator


def get_train_generator(data_dir, batch_size):
    return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)


def get_val_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5'))


class Model(ClassificationModel):
    def init_model(self):
        c = self.config
        act = {'relu': nn.ReLU, 'elu': nn.ELU, 'gelu': nn.GELU}[c['activation']]
        network = ConvClassificationNetwork(
            features=nn.Sequential(nn.Conv2d(4, c['filters'], (1, c['kernel'])), act(),
                                   nn.MaxPool2d((1, 41 - c['kernel'])), nn.Dropout(c['dropout'])),
            classifier=nn.Sequential(nn.Linear(c['filters'], 2)))
        optimizer = optim.Adam(network.parameters(), lr=c['lr'], weight_decay=c['weight_decay'])
        super().init_model(network, optimizer)

    def run_epoch(self, *args, **kwargs):
        time.sleep(1.0)  # an epoch long enough to look at the search while it runs
        return super().run_epoch(*args, **kwargs)


def get_config():
    return {'filters': random.choice([4, 8, 16]), 'kernel': random.choice([4, 6, 8]),
            'lr': 10 ** random.uniform(-3.5, -1), 'dropout': random.uniform(0, 0.5),
            'weight_decay': 10 ** random.uniform(-6, -2),
            'activation': random.choice(['relu', 'elu', 'gelu'])}
'''


def write_data(folder):
    """Random one-hot DNA, length 40; class 1 rows carry a planted motif."""
    rng = np.random.default_rng(0)
    for name, n in (('train', 400), ('valid', 100)):
        letters = rng.integers(0, 4, size=(n, 40))
        y = rng.integers(0, 2, size=n)
        for i in np.flatnonzero(y):
            start = rng.integers(0, 34)
            letters[i, start:start + 6] = (0, 1, 2, 3, 3, 2)
        x = np.eye(4, dtype=np.float32)[letters].transpose(0, 2, 1)[:, :, None, :]
        with h5py.File(os.path.join(folder, f'{name}.h5'), 'w') as handle:
            handle['data'], handle['label'] = x, y.astype(np.float32)


def loads(browser, url, seconds):
    """A new tab showing ``url``, and how many times it loaded in ``seconds``."""
    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    count = []
    page.on('load', lambda _: count.append(1))
    page.goto(url)
    page.wait_for_timeout(seconds * 1000)
    return page, len(count)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='folder for running.png and finished.png')
    parser.add_argument('--chromium', default=shutil.which('chromium'),
                        help="a Chromium executable (default: the system's, else playwright's)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix='report-shots-')
    data, result = os.path.join(work, 'data'), os.path.join(work, 'result')
    os.makedirs(data)
    write_data(data)
    with open(os.path.join(work, 'def.py'), 'w') as handle:
        handle.write(DEF)
    search = subprocess.Popen([sys.executable, os.path.join(ROOT, 'main.py'), '-f',
                               os.path.join(work, 'def.py'), '-d', data, '-r', result, '-y',
                               '--epoch', '9', '--batch-size', '50', '--seed', '1'],
                              cwd=ROOT)
    report = os.path.join(result, 'report.html')
    url = 'file://' + report
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium)
        # the search runs: wait for a page with plots on it
        while search.poll() is None:
            if os.path.exists(report) and '<img' in open(report).read():
                break
            time.sleep(1)
        if search.poll() is None:
            page, count = loads(browser, url, 20)
            print(f'running: {count} loads of the page in 20 s')
            page.screenshot(path=os.path.join(args.out, 'running.png'), full_page=True)
        else:
            print('the search ended before its page had plots: no running.png')
        search.wait()
        page, count = loads(browser, url, 20)
        print(f'finished (exit {search.returncode}): {count} loads of the page in 20 s')
        page.screenshot(path=os.path.join(args.out, 'finished.png'), full_page=True)
        browser.close()
    shutil.rmtree(work)


if __name__ == '__main__':
    main()
