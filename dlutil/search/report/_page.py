"""``report.html``: settings, best trial, plots and a sortable table of every trial.

The page links the plots by relative paths, so it opens from disk with no server, and it uses no
external resources.
"""
import html
import os
import time

from dlutil.search import checkpoints, schedule
from dlutil.search.report._data import FAILED, as_number, as_text, constants, flatten


def page(root, search, images, reload=None):
    """The page's HTML; ``reload``: seconds after which a browser reloads it (a running
    search), None for a page that stays as it is (a finished or stopped search)."""
    settings, best, trials = search['settings'], search['best'], search['trials']
    usage = checkpoints.disk_usage(root)
    disk = (f'disk {checkpoints.human_bytes(usage["total"])}, of which checkpoints '
            f'{checkpoints.human_bytes(usage["checkpoints"])} in {usage["checkpoint_files"]} '
            f'files')
    parts = [f'<h1>Hyperband search report</h1><p class="meta">{_e(root)} · updated '
             f'{_e(time.strftime("%Y-%m-%d %H:%M:%S"))} · {_e(_progress(search))} · '
             f'{_e(disk)}</p>']
    if reload:
        parts.append(f'<p class="live">The search is running: this page reloads itself every '
                     f'{reload} s.</p>')
    parts += [f'<p class="note">{_e(note)}</p>' for note in search['notes']]
    parts.append('<h2>Settings</h2>' + _pairs(settings.items()))
    parts.append(_best_section(best, trials, search['test']))
    parts.append(_errors_section(trials))
    fixed = constants(search)
    for src, title in images:
        parts.append(f'<h2>{_e(title)}</h2><img src="{_e(src)}" alt="{_e(title)}">')
        if 'hyperparameters.png' in src and fixed:
            parts.append('<p class="meta">The same in every trial (no plot): ' + ', '.join(
                f'{_e(name)} = {_e(as_text(value))}' for name, value in fixed.items()) + '</p>')
    parts.append(f'<h2>All trials ({len(trials)})</h2><p class="rule">Sorted by <strong>rung '
                 'reward</strong>, each trial\'s highest reward at the end of a rung: the '
                 'statistic Hyperband promotes on and picks the best trial by, so the best trial '
                 'is the top row. <strong>Best reward</strong> is the highest at any epoch (the '
                 'epoch whose weights best.pt holds). Click a column header to sort; empty cells '
                 'stay last.</p>' + _trial_table(search))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<title>Search report: {_e(os.path.basename(root))}</title>'
            f'<style>{STYLE}</style></head>\n<body>\n' + '\n'.join(parts) +
            f'\n<script>{SCRIPT}{RELOAD.format(ms=reload * 1000) if reload else ""}</script>'
            f'\n</body></html>\n')


def _progress(search):
    rows, trials = search['rows'], search['trials']
    counts = {s: sum(r.get('status') == s for r in rows) for s in ('ok',) + FAILED}
    text = ', '.join(f'{n} {s}' for s, n in counts.items() if n)
    try:
        settings = search['settings']
        total = schedule.totals(settings['epoch'], settings['eta'], settings.get('trials'))[1]
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
            f'reward</strong> {_e(as_text(best.get("rung_reward")))}: the highest reward at the end of '
            f'a rung in search.csv (after {_e(as_text(best.get("rung_epochs")))} epochs), the '
            f'statistic Hyperband promotes on; it is the top row of the table of all trials. '
            f'-e, -p and --interpret use the weights of its best epoch, '
            f'{_e(as_text(best.get("epoch")))} (reward {_e(as_text(best.get("reward")))}).</p>'
            f'<div class="row"><div><h3>Result</h3>'
            f'{_pairs(summary)}</div><div><h3>Configuration</h3>'
            f'{_pairs(flatten(config).items() if isinstance(config, dict) else [])}</div>')
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
            f'<td>{_e(as_text(splits[s].get(m), 4))}</td>' for s in columns) + '</tr>'
            for m in metrics)
        text += (f'<div><h3>Metrics at epoch {_e(as_text(best.get("epoch")))}</h3>'
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
    number = as_number(value)
    key = repr(number) if number is not None else as_text(value)
    title = f' title="{_e(title)}"' if title else ''
    shown = as_text(value, digits) if label is None else label
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
    rows = ''.join(f'<tr><th>{_e(key)}</th><td>{_e(as_text(value))}</td></tr>'
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
.live { color: #36c; }
'''

SCRIPT = '''
function sortTable(th, up) {
  const body = th.closest('table').tBodies[0], col = th.cellIndex;
  if (up === undefined) up = th.getAttribute('aria-sort') !== 'ascending';
  try { sessionStorage.setItem('dlutil-sort:' + location.pathname, JSON.stringify([col, up])); } catch (e) {}
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
// the order a reader chose survives the page's reloads
try {
  const [col, up] = JSON.parse(sessionStorage.getItem('dlutil-sort:' + location.pathname));
  const th = document.querySelector('table.trials thead tr').cells[col];
  if (th) sortTable(th, up);
} catch (e) {}
'''

# the page of a running search reloads itself (a browser keeps the scroll position)
RELOAD = '''
setTimeout(() => location.reload(), {ms});
'''
