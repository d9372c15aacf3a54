"""The results directory read into plain dicts and lists: what the report shows.

:func:`read_search` reads whatever a results directory holds so far (see
:mod:`dlutil.search.results`); missing files are normal mid-search, and a file that cannot be
read is named in ``notes`` rather than raised.
"""
import csv
import json
import math
import os

from dlutil.search import results

FAILED = ('error', 'diverged')


def read_search(result_dir):
    """Everything the report shows of ``result_dir``, as plain dicts and lists.

    Returns
    -------
    dict
        ``settings`` (search.json), ``rows`` (search.csv), ``best`` (best.json or None),
        ``test`` (test_result.json or None), ``trials`` (one dict per trial, by id),
        ``hyperparameters`` (name → ``'numeric'``, ``'levels'`` or ``'categorical'``) and
        ``notes`` (the files that could not be read, in words).
    """
    store = results.ResultStore(result_dir)
    notes = []
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
            'notes': notes,
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
    rows = sorted(rows, key=lambda r: as_number(r.get('epochs')) or 0)
    config = _read(results.read_json, store.trial_file(trial, 'config.json'), {}, notes)
    history = _read(results.read_csv, store.trial_file(trial, 'history.csv'), [], notes)
    epochs = [as_number(r.get('epoch')) for r in history]
    rewards = [as_number(r.get('hyperband_reward')) for r in history]
    rung_rewards = [as_number(r.get('reward')) for r in rows]
    trained = int(max([e for e in epochs if e is not None] or  # no history: what rungs say
                      [as_number(r.get('epochs')) or 0 for r in rows if r.get('status') == 'ok'],
                      default=0))
    finite = [r for r in rewards + rung_rewards if r is not None]
    status = str(rows[-1].get('status')) if rows else 'pending'  # sampled, not trained yet
    recorded = (as_number(rows[-1].get('epochs')) or 0) if rows else 0
    if status not in FAILED and trained > recorded:
        status = 'running'  # training towards its next rung
    error = _read(_read_text, store.trial_file(trial, 'error.txt'), '', notes)
    bracket = as_number(rows[0].get('bracket')) if rows else None
    return {'id': trial, 'bracket': None if bracket is None else int(bracket),
            'config': flatten(config) if isinstance(config, dict) else {},
            'history': history, 'epochs': epochs, 'rewards': rewards, 'trained': trained,
            'last': rewards[-1] if history else (rung_rewards[-1] if rows else None),
            'best': max(finite) if finite else None, 'status': status,
            'rung_best': rung_statistic(rows),
            'error': (error.strip().splitlines() or [''])[-1], 'error_text': error.strip()}


def rung_statistic(rows):
    """What the search ranks a trial by when it picks the best trial: its highest reward at the
    end of a rung (``search.csv``, status ok), as ``HyperbandSearch.best`` does; None without."""
    rewards = [as_number(r.get('reward')) for r in rows if r.get('status') == 'ok']
    rewards = [r for r in rewards if r is not None]
    return max(rewards) if rewards else None


def _read_text(path):
    with open(path, encoding='utf-8', errors='replace') as handle:
        return handle.read()


def flatten(config, prefix=''):
    """``{'conv': {'filters': 8}}`` → ``{'conv.filters': 8}``; lists stay values."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f'{prefix}{key}.'))
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


def as_number(value):
    """``value`` as a float when it is a finite number, else None (NaN, inf, text, missing)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def as_text(value, digits=6):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    if isinstance(value, float):
        return f'{value:.{digits}g}'
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def constants(search):
    """``{name: value}`` of the hyperparameters every trial has the same value of."""
    out = {}
    for name in search['hyperparameters']:
        values = {json.dumps(t['config'].get(name), sort_keys=True, default=str)
                  for t in search['trials']}
        if len(values) == 1 and len(search['trials']) > 1:
            out[name] = search['trials'][0]['config'].get(name)
    return out
