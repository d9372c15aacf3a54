"""The search report: ``RESULT_DIR/report.html`` and its plots, readable during a search and after.

``write_report(result_dir)`` reads whatever the results directory holds so far (see
``results.py``) and writes::

    report.html                  settings, best trial, plots and a sortable table of all trials
    report/rewards.png           validation reward against epoch, one line per trial
    report/hyperparameters.png   each trial's best reward against each hyperparameter

The page links the plots by relative paths, so it opens from disk with no server, and it uses no
external resources. Missing files (no ``best.json`` yet, a trial without ``history.csv``) are
normal mid-search; a file that cannot be read is named in a note on the page.
"""
import csv
import html
import json
import math
import os
import time

import numpy as np

from dlutil.search import checkpoints
from dlutil.search import schedule
from dlutil.search import results

FAILED = ('error', 'diverged')
PLOT_DIR = 'report'


def write_report(result_dir):
    """Write ``result_dir/report.html`` and the PNG plots in ``result_dir/report/``.

    Parameters
    ----------
    result_dir : str
        A results directory, finished or with a search still running.

    Returns
    -------
    str
        The path of ``report.html``.

    Raises
    ------
    FileNotFoundError
        When ``result_dir`` is not a directory. Missing or unreadable files inside it never
        raise: the page shows what there is, and names the files it could not read.
    """
    if not os.path.isdir(result_dir):
        raise FileNotFoundError(f'result_dir {result_dir!r}: no such directory; expected the '
                                '--result directory of a search')
    store = results.ResultStore(result_dir)
    notes = []
    search = _load(store, notes)
    images = []
    for name, plot, title in (('rewards.png', _plot_rewards, 'Validation reward by epoch'),
                              ('hyperparameters.png', _plot_hyperparameters,
                               'Best reward against each hyperparameter')):
        figure = plot(search)
        if figure is not None:  # nothing to plot yet
            results.atomic_write(store.path(PLOT_DIR, name),
                                 lambda f, fig=figure: fig.savefig(f, format='png'), mode='wb')
            images.append((f'{PLOT_DIR}/{name}', title))
    page = _page(store.root, search, images, notes)
    path = store.path('report.html')
    results.atomic_write(path, lambda f: f.write(page))
    return path


# -- reading ------------------------------------------------------------------------------------
def _load(store, notes):
    """Everything the page shows, as plain dicts and lists."""
    settings = _read(results.read_json, store.path('search.json'), {}, notes)
    rows = _read(results.read_csv, store.search_csv, [], notes)
    best = _read(results.read_json, store.best_json, None, notes)
    test = _read(results.read_json, store.path('test_result.json'), None, notes)
    settings = settings if isinstance(settings, dict) else {}
    best = best if isinstance(best, dict) and 'trial' in best else None
    test = test if isinstance(test, dict) else None

    by_trial = {}
    for row in rows:
        if row.get('trial') is not None:
            by_trial.setdefault(str(row['trial']), []).append(row)
    folder = store.path('trials')
    ids = set(by_trial) | {entry.name for entry in (os.scandir(folder) if os.path.isdir(folder)
                                                    else []) if entry.is_dir()}
    trials = [_trial(store, trial, by_trial.get(trial, []), notes) for trial in sorted(ids)]
    names = sorted({name for trial in trials for name in trial['config']})
    return {'settings': settings, 'rows': rows, 'best': best, 'test': test, 'trials': trials,
            'hyperparameters': {name: _kind(t['config'].get(name) for t in trials)
                                for name in names}}


def _read(read, path, default, notes):
    if not os.path.exists(path):
        return default
    try:
        return read(path)
    except (OSError, ValueError, csv.Error) as error:
        notes.append(f'{path}: could not read it ({type(error).__name__}: {error})')
        return default


def _trial(store, trial, rows, notes):
    """One trial's summary from its rung evaluations, config.json, history.csv and error.txt."""
    rows = sorted(rows, key=lambda r: _finite(r.get('epochs')) or 0)
    config = _read(results.read_json, store.trial_file(trial, 'config.json'), {}, notes)
    history = _read(results.read_csv, store.trial_file(trial, 'history.csv'), [], notes)
    epochs = [_finite(r.get('epoch')) for r in history]
    rewards = [_finite(r.get('hyperband_reward')) for r in history]
    rung_rewards = [_finite(r.get('reward')) for r in rows]
    trained = int(max([e for e in epochs if e is not None] or  # no history: what rungs say
                      [_finite(r.get('epochs')) or 0 for r in rows if r.get('status') == 'ok'],
                      default=0))
    finite = [r for r in rewards + rung_rewards if r is not None]
    status = str(rows[-1].get('status')) if rows else 'pending'  # sampled, not trained yet
    recorded = (_finite(rows[-1].get('epochs')) or 0) if rows else 0
    if status not in FAILED and trained > recorded:
        status = 'running'  # training towards its next rung
    error = _read(_read_text, store.trial_file(trial, 'error.txt'), '', notes)
    bracket = _finite(rows[0].get('bracket')) if rows else None
    return {'id': trial, 'bracket': None if bracket is None else int(bracket),
            'config': _flatten(config) if isinstance(config, dict) else {},
            'history': history, 'epochs': epochs, 'rewards': rewards, 'trained': trained,
            'last': rewards[-1] if history else (rung_rewards[-1] if rows else None),
            'best': max(finite) if finite else None, 'status': status,
            'rung_best': rung_statistic(rows),
            'error': (error.strip().splitlines() or [''])[-1], 'error_text': error.strip()}


def rung_statistic(rows):
    """What the search ranks a trial by when it picks the best trial: its highest reward at the
    end of a rung (``search.csv``, status ok), as ``HyperbandSearch.best`` does; None without."""
    rewards = [_finite(r.get('reward')) for r in rows if r.get('status') == 'ok']
    rewards = [r for r in rewards if r is not None]
    return max(rewards) if rewards else None


def _read_text(path):
    with open(path, encoding='utf-8', errors='replace') as handle:
        return handle.read()


def _flatten(config, prefix=''):
    """``{'conv': {'filters': 8}}`` → ``{'conv.filters': 8}``; lists stay values."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def _kind(values):
    """How to plot a hyperparameter: ``'numeric'`` (a scatter), ``'levels'`` (a few numbers,
    repeated: a choice, drawn as categories in numeric order) or ``'categorical'``."""
    present = [v for v in values if v is not None]
    if not present or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                              for v in present):
        return 'categorical'
    distinct = len(set(present))
    return 'levels' if distinct < len(present) and distinct <= 8 else 'numeric'


def _finite(value):
    """``value`` as a float when it is a finite number, else None (NaN, inf, text, missing)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _text(value, digits=6):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    if isinstance(value, float):
        return f'{value:.{digits}g}'
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


# -- plots --------------------------------------------------------------------------------------
def _bracket_colors(trials):
    """Bracket s → colour, the largest s (most configurations) first; no bracket yet → grey."""
    from matplotlib import colormaps
    brackets = sorted({t['bracket'] for t in trials if t['bracket'] is not None}, reverse=True)
    palette = colormaps['tab10'].colors
    colors = {s: palette[i % len(palette)] for i, s in enumerate(brackets)}
    return {**colors, None: (0.6, 0.6, 0.6)}


def _bracket_legend(trials, colors):
    from matplotlib.lines import Line2D
    counts = {}
    for trial in trials:
        counts[trial['bracket']] = counts.get(trial['bracket'], 0) + 1
    return [Line2D([], [], color=color, marker='o', label=(f'bracket {s}' if s is not None
                                                          else 'no rung yet') + f' ({counts[s]})')
            for s, color in colors.items() if s in counts]


def _clip_low(ax, values):
    """Keep a few awful rewards (a first epoch, a blow-up) from squashing the rest of the axis."""
    values = np.asarray(values, dtype=float)
    low, high = np.percentile(values, [5, 100])
    if high > low and values.min() < low - (high - low):
        ax.set_ylim(low - 0.3 * (high - low), high + 0.05 * (high - low))
        ax.text(0.01, 0.01, f'rewards down to {values.min():.3g} below the axis', fontsize=8,
                color='0.4', transform=ax.transAxes)


def _plot_rewards(search):
    """Validation reward against epoch, one line per trial, coloured by bracket; best in black."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, nothing left open
    from matplotlib.ticker import MaxNLocator, NullLocator
    trials = [t for t in search['trials'] if any(r is not None for r in t['rewards'])]
    if not trials:
        return None
    best = search['best']['trial'] if search['best'] else None
    colors = _bracket_colors(search['trials'])
    figure = Figure(figsize=(10, 5.5), dpi=100, layout='constrained')
    ax = figure.add_subplot()
    for bracket, color in colors.items():
        # one Line2D per bracket, trials split by NaN: 150 separate lines draw several times slower
        group = [t for t in trials if t['bracket'] == bracket and t['id'] != best]
        if group:
            ax.plot(*_joined(group), color=color, lw=1, alpha=0.6, marker='.', ms=4)
    for trial in trials:
        if trial['id'] == best:
            ax.plot(*_joined([trial]), color='black', lw=2.5, marker='o', ms=4, zorder=3,
                    label=f'best: {trial["id"]}')
    # the whole planned range, R epochs, so that the plot shows how far the search has come
    rungs = {r['epochs'] for r in search['rows'] if _finite(r.get('epochs'))}
    last = max([t['trained'] for t in trials] + list(rungs))
    planned = search['settings'].get('epoch')
    last = max(last, planned) if _finite(planned) else last
    if last > 10:  # rungs grow geometrically: give each room
        ax.set_xscale('log')
        ax.xaxis.set_minor_locator(NullLocator())
        ticks = sorted(rungs | {1, last})
        ax.set_xticks(ticks, [f'{e:g}' for e in ticks])
        ax.set_xlim(0.9, last * 1.1)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.7, last + 0.3)
    _clip_low(ax, [r for t in trials for r in t['rewards'] if r is not None])
    handles = _bracket_legend(search['trials'], colors) + ax.get_legend_handles_labels()[0]
    figure.legend(handles=handles, loc='outside right upper', fontsize='small')
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation reward (hyperband_reward)')
    ax.grid(alpha=0.3)
    return figure


def constants(search):
    """``{name: value}`` of the hyperparameters every trial has the same value of."""
    out = {}
    for name in search['hyperparameters']:
        values = {json.dumps(t['config'].get(name), sort_keys=True, default=str)
                  for t in search['trials']}
        if len(values) == 1 and len(search['trials']) > 1:
            out[name] = search['trials'][0]['config'].get(name)
    return out


def _joined(trials):
    """The epochs and rewards of ``trials`` end to end, a NaN between trials to break the line."""
    x, y = [], []
    for trial in trials:
        x += [np.nan if e is None else e for e in trial['epochs']] + [np.nan]
        y += [np.nan if r is None else r for r in trial['rewards']] + [np.nan]
    return x, y


def _plot_hyperparameters(search):
    """Each trial's best reward against each hyperparameter, one small subplot each."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    trials = [t for t in search['trials'] if t['best'] is not None]
    names = [name for name in search['hyperparameters'] if name not in constants(search)]
    if not trials or not names:
        return None
    best = search['best']['trial'] if search['best'] else None
    colors = _bracket_colors(search['trials'])
    columns = min(len(names), 3)
    figure = Figure(figsize=(4.2 * columns, 0.6 + 3.2 * math.ceil(len(names) / columns)),
                    dpi=100, layout='constrained')
    axes = figure.subplots(math.ceil(len(names) / columns), columns, squeeze=False, sharey=True)
    jitter = np.random.default_rng(0)  # strip-plot jitter, the same on every redraw
    for ax, name in zip(axes.flat, names):
        points = [t for t in trials if t['config'].get(name) is not None]
        y = [t['best'] for t in points]
        ax.set_title(name if len(name) <= 40 else name[:39] + '…', fontsize=9)
        ax.grid(alpha=0.3)
        if not points:  # a key only in configs still training, or always None
            ax.text(0.5, 0.5, 'no values', ha='center', transform=ax.transAxes)
            ax.set_xticks([])
            continue
        if search['hyperparameters'][name] == 'numeric':
            x = [float(t['config'][name]) for t in points]
            if min(x) > 0 and max(x) / min(x) > 100:  # spans more than 2 orders of magnitude
                ax.set_xscale('log')
        else:
            labels = [_text(t['config'][name]) for t in points]
            categories = sorted(set(labels))
            if search['hyperparameters'][name] == 'levels':
                categories = [_text(v) for v in sorted({t['config'][name] for t in points})]
            x = [categories.index(label) + jitter.uniform(-0.15, 0.15) for label in labels]
            ax.set_xticks(range(len(categories)),
                          [c if len(c) <= 16 else c[:15] + '…' for c in categories],
                          rotation=30 if len(categories) > 3 else 0, fontsize=8)
            ax.set_xlim(-0.5, len(categories) - 0.5)
        for marker, failed in (('o', False), ('x', True)):  # failed: best reward before that
            group = [i for i, t in enumerate(points) if (t['status'] in FAILED) == failed]
            ax.scatter([x[i] for i in group], [y[i] for i in group], s=18, alpha=0.7,
                       c=[colors[points[i]['bracket']] for i in group], marker=marker)
        for xi, yi, trial in zip(x, y, points):
            if trial['id'] == best:
                ax.scatter([xi], [yi], s=160, marker='*', color='black', zorder=3)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel('best reward', fontsize=9)
    _clip_low(axes[0, 0], [t['best'] for t in trials])
    handles = _bracket_legend(search['trials'], colors)
    if any(t['status'] in FAILED for t in trials):
        handles.append(Line2D([], [], marker='x', ls='', color='0.3', label='failed'))
    figure.legend(handles=handles, loc='outside upper center', ncols=7, fontsize='small')
    return figure


# -- the page -----------------------------------------------------------------------------------
def _page(root, search, images, notes):
    settings, best, trials = search['settings'], search['best'], search['trials']
    usage = checkpoints.disk_usage(root)
    disk = (f'disk {checkpoints.human_bytes(usage["total"])}, of which checkpoints '
            f'{checkpoints.human_bytes(usage["checkpoints"])} in {usage["checkpoint_files"]} '
            f'files')
    parts = [f'<h1>Hyperband search report</h1><p class="meta">{_e(root)} · updated '
             f'{_e(time.strftime("%Y-%m-%d %H:%M:%S"))} · {_e(_progress(search))} · '
             f'{_e(disk)}</p>']
    parts += [f'<p class="note">{_e(note)}</p>' for note in notes]
    parts.append('<h2>Settings</h2>' + _pairs(settings.items()))
    parts.append(_best_section(best, trials, search['test']))
    parts.append(_errors_section(trials))
    fixed = constants(search)
    for src, title in images:
        parts.append(f'<h2>{_e(title)}</h2><img src="{_e(src)}" alt="{_e(title)}">')
        if src.endswith('hyperparameters.png') and fixed:
            parts.append('<p class="meta">The same in every trial (no plot): ' + ', '.join(
                f'{_e(name)} = {_e(_text(value))}' for name, value in fixed.items()) + '</p>')
    parts.append(f'<h2>All trials ({len(trials)})</h2><p class="rule">Sorted by <strong>rung '
                 'reward</strong>, each trial\'s highest reward at the end of a rung: the '
                 'statistic Hyperband promotes on and picks the best trial by, so the best trial '
                 'is the top row. <strong>Best reward</strong> is the highest at any epoch (the '
                 'epoch whose weights best.pt holds). Click a column header to sort; empty cells '
                 'stay last.</p>' + _trial_table(search))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<title>Search report: {_e(os.path.basename(root))}</title>'
            f'<style>{STYLE}</style></head>\n<body>\n' + '\n'.join(parts) +
            f'\n<script>{SCRIPT}</script>\n</body></html>\n')


def _progress(search):
    rows, trials = search['rows'], search['trials']
    counts = {s: sum(r.get('status') == s for r in rows) for s in ('ok',) + FAILED}
    text = ', '.join(f'{n} {s}' for s, n in counts.items() if n)
    try:
        total = schedule.totals(search['settings']['epoch'], search['settings']['eta'])[1]
        done = f'{len(rows)} of {total} rung evaluations'
    except (KeyError, TypeError, ValueError):  # no or odd search.json: no total to show
        done = f'{len(rows)} rung evaluations'
    return f'{len(trials)} trials, {done}' + (f' ({text})' if text else '')


def _best_section(best, trials, test):
    if best is None:
        failed = [t for t in trials if t['status'] in FAILED]
        if failed and len(failed) == len(trials):
            return (f'<h2>Best trial</h2><p class="failed">Every trial failed ({len(failed)} '
                    f'of {len(trials)}): there is no best trial. The errors are below; fix '
                    f'def.py and run the search again.</p>')
        if failed:
            return (f'<h2>Best trial</h2><p>No trial has finished a rung yet; {len(failed)} '
                    f'failed (errors below).</p>')
        return '<h2>Best trial</h2><p>No trial has finished a rung yet.</p>'
    history = next((t['history'] for t in trials if t['id'] == best['trial']), [])
    row = next((r for r in history if r.get('epoch') == best.get('epoch')), {})
    summary = [('reward', best.get('reward')), ('at epoch', best.get('epoch')),
               ('rung epochs', best.get('rung_epochs')), ('rung reward', best.get('rung_reward'))]
    config = best.get('config')
    text = (f'<h2>Best trial: {_e(best["trial"])}</h2><p class="rule">Chosen by its <strong>rung '
            f'reward</strong> {_e(_text(best.get("rung_reward")))}: the highest reward at the end of '
            f'a rung in search.csv (after {_e(_text(best.get("rung_epochs")))} epochs), the '
            f'statistic Hyperband promotes on; it is the top row of the table of all trials. '
            f'-e, -p and --interpret use the weights of its best epoch, '
            f'{_e(_text(best.get("epoch")))} (reward {_e(_text(best.get("reward")))}).</p>'
            f'<div class="row"><div><h3>Result</h3>'
            f'{_pairs(summary)}</div><div><h3>Configuration</h3>'
            f'{_pairs(_flatten(config).items() if isinstance(config, dict) else [])}</div>')
    # metrics side by side: train_loss, val_loss and the test loss on one line
    splits = {'train': {}, 'validation': {}, 'test': dict(test or {})}
    for key, value in row.items():
        for prefix, split in (('train_', 'train'), ('val_', 'validation')):
            if key.startswith(prefix):
                splits[split][key[len(prefix):]] = value
    metrics = list(dict.fromkeys(k for values in splits.values() for k in values))
    columns = [s for s in splits if splits[s]]
    if metrics:
        head = ''.join(f'<th>{_e(s)}</th>' for s in columns)
        body = ''.join(f'<tr><th>{_e(m)}</th>' + ''.join(
            f'<td>{_e(_text(splits[s].get(m), 4))}</td>' for s in columns) + '</tr>'
            for m in metrics)
        text += (f'<div><h3>Metrics at epoch {_e(_text(best.get("epoch")))}</h3>'
                 f'<table><tr><th></th>{head}</tr>{body}</table></div>')
    return text + '</div>'


def _trial_table(search):
    best = search['best']['trial'] if search['best'] else None
    names = list(search['hyperparameters'])
    columns = ['trial', 'bracket', 'epochs', 'rung reward', 'last reward', 'best reward',
               'status'] + names
    head = ''.join(f'<th onclick="sortTable(this)"'
                   f'{" aria-sort=descending" if c == "rung reward" else ""}>{_e(c)}</th>'
                   for c in columns)
    order = sorted(search['trials'], key=lambda t: (t['rung_best'] is None,
                                                    -(t['rung_best'] or 0), t['id'] != best,
                                                    t['status'] in FAILED, t['best'] is None,
                                                    -(t['best'] or 0), t['id']))
    rows = []
    for trial in order:
        cells = [_cell(trial['id'], label='★ ' + trial['id'] if trial['id'] == best else None),
                 _cell(trial['bracket']), _cell(trial['trained']),
                 _cell(trial['rung_best'], 4), _cell(trial['last'], 4), _cell(trial['best'], 4),
                 _cell(trial['status'], title=trial['error'])]
        cells += [_cell(trial['config'].get(name)) for name in names]
        classes = ' '.join(c for c in ('best' if trial['id'] == best else '',
                                       trial['status']) if c)
        rows.append(f'<tr class="{_e(classes)}">{"".join(cells)}</tr>')
    return (f'<div class="wide"><table class="trials"><thead><tr>{head}</tr></thead>'
            f'<tbody>\n' + '\n'.join(rows) + '\n</tbody></table></div>')


def _cell(value, digits=6, title='', label=None):
    """A ``<td>`` whose ``data-v`` is what the table sorts on: the full number, or the text."""
    number = _finite(value)
    key = repr(number) if number is not None else _text(value)
    title = f' title="{_e(title)}"' if title else ''
    shown = _text(value, digits) if label is None else label
    return f'<td data-v="{_e(key)}"{title}>{_e(shown)}</td>'


def _errors_section(trials):
    """Failed trials grouped by their error's last line, with the first one's error.txt."""
    failed = [t for t in trials if t['status'] in FAILED]
    if not failed:
        return ''
    groups = {}
    for trial in failed:
        groups.setdefault(trial['error'] or trial['status'], []).append(trial)
    parts = [f'<h2>Errors ({len(failed)} failed trials)</h2>']
    for message, members in sorted(groups.items(), key=lambda g: -len(g[1])):
        ids = ', '.join(t['id'] for t in members[:20]) + (' …' if len(members) > 20 else '')
        text = members[0]['error_text'] or '(no error.txt)'
        lines = text.splitlines()
        if len(lines) > 40:  # the end of a traceback says most
            text = '\n'.join(['…'] + lines[-40:])
        parts.append(f'<h3 class="failed">{len(members)} × {_e(message)}</h3>'
                     f'<p class="meta">trials {_e(ids)}; trials/{_e(members[0]["id"])}/'
                     f'error.txt:</p><pre>{_e(text)}</pre>')
    return '\n'.join(parts)


def _pairs(items):
    rows = ''.join(f'<tr><th>{_e(key)}</th><td>{_e(_text(value))}</td></tr>'
                   for key, value in items)
    return f'<table>{rows}</table>' if rows else '<p>–</p>'


def _e(text):
    return html.escape(str(text))


STYLE = '''
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { margin: 0.3em 0; font-size: 1em; }
.meta { color: #666; } .note { background: #fff3cd; padding: 0.4em 0.8em; }
.row { display: flex; gap: 2.5em; flex-wrap: wrap; align-items: flex-start; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; }
th { background: #f3f3f3; font-weight: 600; } tr:nth-child(even) td { background: #fafafa; }
.wide { overflow-x: auto; max-width: 100%; }
table.trials th { cursor: pointer; position: sticky; top: 0; white-space: nowrap; }
table.trials td { font-variant-numeric: tabular-nums; white-space: nowrap; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
tr.best td { background: #e3f2e1; font-weight: 600; }
.rule { background: #eef4fb; border-left: 4px solid #4a7fb5; padding: 0.4em 0.8em;
        max-width: 60em; }
.failed { color: #a33; } pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto;
                                font-size: 12px; max-width: 100%; }
tr.error td, tr.diverged td { color: #a33; } tr.running td, tr.pending td { color: #36c; }
img { max-width: 100%; border: 1px solid #eee; }
'''

SCRIPT = '''
function sortTable(th) {
  const body = th.closest('table').tBodies[0], col = th.cellIndex;
  const up = th.getAttribute('aria-sort') !== 'ascending';
  const key = row => row.cells[col].dataset.v;
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === '' || y === '') return (x === '') - (y === '');  // empty cells last either way
    const nx = Number(x), ny = Number(y);
    const c = isNaN(nx) || isNaN(ny) ? x.localeCompare(y, undefined, {numeric: true}) : nx - ny;
    return up ? c : -c;
  });
  for (const h of th.parentNode.cells) h.removeAttribute('aria-sort');
  th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
  body.append(...rows);
}
'''
