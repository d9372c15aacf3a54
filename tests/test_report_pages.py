"""The report's rules (best trial = top row, failed searches, constant hyperparameters, disk) and
the interpretation page's index, top-N, clustering labels and legible optimized inputs."""
import re

import numpy as np
import pytest
from PIL import Image

from dlutil.interpret import kernel_report as interpret
from dlutil.interpret.motif import Motif
from dlutil.interpret.plots import kernel_ticks
from dlutil.search import report
from test_report import Page, config, make_results, read


def test_best_trial_is_the_top_row_by_the_search_statistic(tmp_path):
    # t0000 peaked at epoch 1 (-0.1) but ended its rung at -0.5; t0001 ended its rung at -0.3:
    # Hyperband picks t0001, and so must the table's order
    trials = {'t0000': (config(0.01, 8), [-0.1, -0.5], [(0, 0, 2, -0.5, 'ok')]),
              't0001': (config(0.02, 4), [-0.4, -0.3], [(0, 0, 2, -0.3, 'ok')])}
    best = {'trial': 't0001', 'config': config(0.02, 4), 'epoch': 2, 'reward': -0.3,
            'rung_epochs': 2, 'rung_reward': -0.3}
    make_results(tmp_path, trials, best=best)
    text = read(report.write_report(str(tmp_path)))
    rows = Page(text).rows
    assert [r[0] for r in rows] == ['★ t0001', 't0000']
    assert [r[3] for r in rows] == ['-0.3', '-0.5'] and [r[5] for r in rows] == ['-0.3', '-0.1']
    assert 'Chosen by its <strong>rung reward</strong> -0.3' in text
    assert 'class="rule"' in text


def test_every_trial_failed_shows_the_errors(tmp_path):
    trials = {'t0000': (config(0.01, 8), None, [(1, 0, 1, None, 'error')]),
              't0001': (config(0.02, 4), None, [(1, 0, 1, None, 'error')])}
    store = make_results(tmp_path, trials)
    store.write_error('t0001', 'Traceback (most recent call last):\n  File "def.py", line 9\n'
                               'ValueError: lr 0.02 is not supported\n')
    text = read(report.write_report(str(tmp_path)))
    assert 'No trial has finished a rung yet' not in text
    assert 'Every trial failed (2 of 2): there is no best trial' in text
    assert 'Errors (2 failed trials)' in text
    assert '1 × RuntimeError: &lt;out of memory&gt;' in text
    assert '1 × ValueError: lr 0.02 is not supported' in text
    pre = re.findall(r'<pre>(.*?)</pre>', text, re.S)
    assert any('File &quot;def.py&quot;, line 9' in p for p in pre)


def test_constant_hyperparameters_get_no_panel(tmp_path):
    trials = {f't000{i}': (config(lr, 8), [-0.5 + i / 10], [(1, 0, 1, -0.5 + i / 10, 'ok')])
              for i, lr in enumerate((0.1, 0.01, 0.001))}
    make_results(tmp_path, trials)
    search = report.read_search(str(tmp_path))
    assert report.constants(search) == {'conv.filters': 8, 'conv.kernel': [3, 5],
                                        'activation': 'relu', 'batchnorm': True}
    figure = report.plot_hyperparameters(search)
    titles = [ax.get_xlabel() for ax in figure.axes if ax.get_visible()]
    assert titles == ['lr']
    text = read(report.write_report(str(tmp_path)))
    assert ('The same in every trial (no plot): activation = relu, batchnorm = True, '
            'conv.filters = 8, conv.kernel = [3, 5]') in text


def test_the_report_shows_the_disk_the_search_uses(tmp_path):
    store = make_results(tmp_path, {'t0000': (config(0.1, 8), [-0.5], [(1, 0, 1, -0.5, 'ok')])})
    with open(store.trial_file('t0000', 'best.pt'), 'wb') as handle:
        handle.write(b'\0' * 3 * 2 ** 20)
    text = read(report.write_report(str(tmp_path)))
    assert re.search(r'disk 3\.\d+ MiB, of which checkpoints 3 MiB in 1 files', text), text[:600]


@pytest.fixture
def acts():
    """Activations of 6 kernels on 40 random sequences, kernel 4 enriched in class 1."""
    rng = np.random.default_rng(0)
    n, k, length = 40, 6, 30
    labels = np.zeros((n, 2), np.float32)
    labels[np.arange(n), np.arange(n) % 2] = 1
    values = rng.random((n, k)).astype(np.float32)
    values[1::2, 4] += 2
    sequences = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))].transpose(0, 2, 1)
    maps = rng.random((n, k, length - 4)).astype(np.float32)
    return {'activations': values, 'labels': labels, 'class_names': ['class_a_polyCG',
                                                                      'class_b_polyAT'],
            'sequences': sequences, 'starts': rng.integers(0, length - 5, (n, k)),
            'kernel_length': 5, 'pad': (0, 0), 'maps': maps, 'layer': 'conv', 'stride': 1,
            'dilation': 1, 'multilabel': False, 'input_shape': (4, length)}


def test_top_n_draws_the_most_important_kernels_and_indexes_all(acts, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(interpret, 'visualize_kernel',
                        lambda a, d, k, folder, colors=None: (drawn.append(k) or
                                                              (interpret._kernel_motif(a, d, k)[0],
                                                               0.0)))
    motifs = interpret.visualize_all_kernels(acts, 'ACGT', tmp_path, top=2)
    scores = interpret.importance_scores(acts)
    order = list(np.argsort(-scores, kind='stable'))
    assert order[0] == 4 and sorted(drawn) == sorted(order[:2])
    assert len(motifs) == 6
    page = (tmp_path / 'summary.html').read_text()
    index = page[page.index('Kernels by importance'):page.index('</table>')]
    assert re.findall(r'<td>\d+</td><td>(?:<a href="#kernel-\d+">)?kernel (\d+)', index) == \
        [str(k) for k in order]
    assert re.findall(r'href="#kernel-(\d+)"', index) == [str(k) for k in order[:2]]
    assert 'the 2 most important of 6 kernels (--interpret-top)' in page
    assert (tmp_path / 'motifs.meme').read_text().count('MOTIF') == 6
    with pytest.raises(ValueError, match='--interpret-top must be at least 1, got 0'):
        interpret.visualize_all_kernels(acts, 'ACGT', tmp_path, top=0)


@pytest.mark.parametrize('kernels', [8, 100, 128, 300, 1000])
def test_clustering_labels_always_name_their_own_column(kernels):
    width = min(24.0, 5 + 0.18 * kernels)
    step, fontsize = kernel_ticks(kernels, width * 0.62 * 72)
    assert fontsize >= 4.5 and step * (width * 0.62 * 72 / kernels) >= fontsize
    assert step == 1 if kernels <= 128 else step > 1  # 100 kernels: every one named


def test_optimized_input_logo_wraps_into_legible_rows(tmp_path):
    rng = np.random.default_rng(0)
    pwm = rng.dirichlet(np.ones(4) * 0.3, size=300)
    Motif('ACGT', pwm).logo(tmp_path / 'long.png', per_row=50)
    width, height = Image.open(tmp_path / 'long.png').size
    assert width <= 1500 and height >= 6 * 120  # six rows of 50 positions, not 3000 × 190
    Motif('ACGT', pwm[:20]).logo(tmp_path / 'short.png', per_row=50)
    assert Image.open(tmp_path / 'short.png').size[1] < 250  # short motifs: one row, as before
