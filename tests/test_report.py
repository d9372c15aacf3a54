"""The search report on hand-made results directories: finished, mid-search, damaged."""
import json
import os
from html.parser import HTMLParser

import pytest

from dlutil.search import report
from dlutil.search import results

SETTINGS = {'epoch': 3, 'eta': 3, 'batch_size': 32, 'seed': 0, 'model': 'def.py'}


def config(lr, filters, activation='relu'):
    return {'lr': lr, 'conv': {'filters': filters, 'kernel': [3, 5]},
            'activation': activation, 'batchnorm': filters > 4}


def history(rewards):
    """history.csv rows, one per reward; a NaN reward makes the row's metrics NaN too."""
    return [{'epoch': epoch, 'train_seconds': 0.5, 'train_loss': -reward, 'train_accuracy': 0.5,
             'val_loss': -reward, 'val_accuracy': 0.6 + 0.01 * epoch, 'hyperband_reward': reward}
            for epoch, reward in enumerate(rewards, start=1)]


def make_results(root, trials, best=None, test=None):
    """A results directory as ``search.py`` writes it.

    ``trials`` maps trial id → (config, history rewards, search.csv rows as
    (bracket, rung, epochs, reward, status)); a history of None writes no history.csv.
    """
    store = results.ResultStore(root)
    results.write_json(store.path('search.json'), SETTINGS)
    rows = []
    for trial, (conf, rewards, evaluations) in trials.items():
        store.write_config(trial, conf)
        if rewards is not None:
            store.write_history(trial, history(rewards))
        for bracket, rung, epochs, reward, status in evaluations:
            rows.append({'trial': trial, 'bracket': bracket, 'rung': rung, 'epochs': epochs,
                         'reward': reward, 'status': status})
            if status == 'error':
                store.write_error(trial, 'Traceback (most recent call last):\n'
                                         'RuntimeError: <out of memory>\n')
    store.write_search(rows)
    if best is not None:
        results.write_json(store.best_json, best)
    if test is not None:
        results.write_json(store.path('test_result.json'), test)
    return store


FINISHED = {
    # bracket 1: three configurations at 1 epoch, the best goes on to 3
    't0000': (config(0.01, 8), [-0.6, -0.4, -0.2],
              [(1, 0, 1, -0.6, 'ok'), (1, 1, 3, -0.2, 'ok')]),
    't0001': (config(0.001, 4, activation='<b>'), [-0.7], [(1, 0, 1, -0.7, 'ok')]),
    't0002': (config(0.3, 16), None, [(1, 0, 1, None, 'error')]),
    # bracket 0: two configurations at 3 epochs
    't0003': (config(0.0001, 4), [-0.8, -0.5, -0.45], [(0, 0, 3, -0.45, 'ok')]),
    't0004': (config(1.0, 8), [-0.9, float('nan')], [(0, 0, 3, None, 'diverged')]),
}
BEST = {'trial': 't0000', 'config': config(0.01, 8), 'epoch': 3, 'reward': -0.2,
        'rung_epochs': 3, 'rung_reward': -0.2}


def read(path):
    with open(path) as handle:
        return handle.read()


class Page(HTMLParser):
    """The parts of report.html the tests look at: images, trial table headers and rows."""

    def __init__(self, text):
        super().__init__()
        self.images, self.headers, self.rows, self.cells = [], [], [], None
        self.in_trials = self.in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'img':
            self.images.append(attrs['src'])
        elif tag == 'table':
            self.in_trials = 'trials' in (attrs.get('class') or '')
        elif self.in_trials and tag == 'th':
            self.headers.append(attrs)
        elif self.in_trials and tag == 'tr' and self.headers:
            self.cells = []
            self.rows.append(self.cells)
        elif self.in_trials and tag == 'td':
            self.in_cell = True
            self.cells.append('')

    def handle_endtag(self, tag):
        self.in_cell = self.in_cell and tag != 'td'
        self.in_trials = self.in_trials and tag != 'table'

    def handle_data(self, data):
        if self.in_cell:
            self.cells[-1] += data
        if self.in_trials and self.headers and 'text' not in self.headers[-1]:
            self.headers[-1]['text'] = data


def test_report_of_a_finished_search(tmp_path):
    make_results(tmp_path, FINISHED, best=BEST, test={'loss': 0.21, 'accuracy': 0.875})
    path = report.write_report(str(tmp_path))
    assert path == str(tmp_path / 'report.html')
    text = read(path)
    page = Page(text)

    assert 'Best trial: t0000' in text
    for value in ('0.01', 'conv.filters', '[3, 5]', '0.875', '0.21'):  # config, test metrics
        assert value in text, value

    # one row per trial, sorted by the search's statistic (the best rung reward): the best
    # trial is the top row, marked; failed trials last
    assert [row[0] for row in page.rows] == ['★ t0000', 't0003', 't0001', 't0004', 't0002']
    assert [row[3] for row in page.rows] == ['-0.2', '-0.45', '-0.7', '', '']
    assert [row[6] for row in page.rows] == ['ok', 'ok', 'ok', 'diverged', 'error']
    assert page.rows[-1][2] == '0' and page.rows[-1][5] == ''  # no history, no reward
    columns = [h['text'] for h in page.headers]
    assert columns[:7] == ['trial', 'bracket', 'epochs', 'rung reward', 'last reward',
                           'best reward', 'status']
    assert page.headers[3].get('aria-sort') == 'descending'
    assert set(columns[7:]) == {'lr', 'conv.filters', 'conv.kernel', 'activation', 'batchnorm'}

    # sortable: every header calls the script's sortTable
    assert all(h.get('onclick') == 'sortTable(this)' for h in page.headers)
    assert 'function sortTable(th, up)' in text

    # the plots: relative paths to non-empty PNG files
    assert len(page.images) == 2
    for src in page.images:
        assert not os.path.isabs(src) and '://' not in src
        with open(tmp_path / src, 'rb') as handle:
            assert handle.read(8) == b'\x89PNG\r\n\x1a\n'
        assert os.path.getsize(tmp_path / src) > 1000

    # text from the results is escaped
    assert '<b>' not in text and '&lt;b&gt;' in text
    assert '&lt;out of memory&gt;' in text  # error.txt's last line, as the status's tooltip

    # atomic writes leave no temporary files behind, also when written again
    report.write_report(str(tmp_path))
    leftovers = [name for _, _, names in os.walk(tmp_path) for name in names
                 if name.endswith('.tmp')]
    assert leftovers == []


def test_report_mid_search(tmp_path):
    """No best.json, no test result, a trial being trained, one with only a config."""
    trials = {
        't0000': (config(0.01, 8), [-0.6], [(1, 0, 1, -0.6, 'ok')]),
        't0001': (config(0.02, 4), [-0.7], []),     # trained one epoch, rung not recorded yet
        't0002': (config(0.03, 4), None, []),       # sampled, not trained
    }
    make_results(tmp_path, trials)
    text = read(report.write_report(str(tmp_path)))
    page = Page(text)
    assert 'No trial has finished a rung yet' in text
    assert [row[0] for row in page.rows] == ['t0000', 't0001', 't0002']
    assert [row[6] for row in page.rows] == ['ok', 'running', 'pending']
    assert '3 trials, 1 of 6 rung evaluations' in text  # R=3, η=3: 3 + 2 + 1 evaluations
    assert all(os.path.getsize(tmp_path / src) > 0 for src in page.images)


def test_report_of_an_empty_or_damaged_results_directory(tmp_path):
    empty = tmp_path / 'empty'
    with pytest.raises(FileNotFoundError, match='empty'):
        report.write_report(str(empty))            # a typo, not a search that has not begun
    empty.mkdir()
    text = read(report.write_report(str(empty)))
    assert 'All trials (0)' in text and '<img' not in text

    store = make_results(tmp_path / 'damaged', FINISHED, best=BEST)
    with open(store.trial_file('t0003', 'config.json'), 'w') as handle:
        handle.write('{"lr": 0.0')                  # cut short
    with open(store.path('search.json'), 'w') as handle:
        json.dump(['not', 'a', 'dict'], handle)
    with open(store.path('trials', 'notes.txt'), 'w') as handle:
        handle.write('not a trial')
    store.write_config('t0005', {**config(0.01, 8), 'momentum': None})  # sampled, not trained
    text = read(report.write_report(store.root))
    assert 'config.json: could not read it' in text  # said on the page, not raised
    assert [row[0] for row in Page(text).rows] == ['★ t0000', 't0003', 't0001', 't0005',
                                                   't0004', 't0002']


def test_reward_cells_sort_on_the_full_number(tmp_path):
    make_results(tmp_path, FINISHED, best=BEST)
    text = read(report.write_report(str(tmp_path)))
    rewards = {row[0]: row[5] for row in Page(text).rows}
    assert rewards['t0003'] == '-0.45' and f'data-v="{-0.45!r}"' in text


def test_the_count_of_rung_evaluations_follows_the_trials_budget(tmp_path):
    """With --trials 40 at R = 9 the search plans 53 rung evaluations, not one iteration's 22."""
    store = make_results(tmp_path, {'t0000': (config(0.1, 8), [-0.5], [(2, 0, 1, -0.5, 'ok')])})
    results.write_json(store.path('search.json'), {**SETTINGS, 'epoch': 9, 'trials': 40})
    text = read(report.write_report(str(tmp_path)))
    assert '1 of 53 rung evaluations' in text
    results.write_json(store.path('search.json'), {**SETTINGS, 'epoch': 9, 'trials': None})
    assert '1 of 22 rung evaluations' in read(report.write_report(str(tmp_path)))
