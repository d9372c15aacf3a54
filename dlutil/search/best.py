"""Where a search stands: its best trial, derived from ``search.csv`` and the trials' histories.

One statistic decides everything: a rung evaluation's reward is the **highest validation reward
the trial reached in its first ``epochs`` epochs** (the epoch ``best.pt`` holds). Promotion ranks
trials by it, the best trial is the one with the highest, and ``-e``/``-p`` load the weights of
that very epoch. So the best trial's reward in the report is the highest in its own table, and
early-stopped trials are judged the same way as the others.

``best.json`` is derived state: it is rewritten from ``search.csv`` on every run, never trusted.
"""
import os

from dlutil.search import results


def best_row(rows):
    """The row with the highest reward among ``ok`` rows (ties: the earliest), or None.

    Parameters
    ----------
    rows: list of dict
        ``search.csv`` rows in the search's order.
    """
    ok = [(position, row) for position, row in enumerate(rows)
          if row['status'] == 'ok' and not results.is_failure(row['reward'])]
    if not ok:
        return None
    return min(ok, key=lambda item: (-item[1]['reward'], item[0]))[1]


def best_epoch(history, epochs):
    """``(epoch, reward)`` of the highest finite reward in the first ``epochs`` epochs, or None.

    Ties go to the earlier epoch: later ones must beat it to replace best.pt.
    """
    finite = [row for row in history if row['epoch'] <= epochs
              and not results.is_failure(row['hyperband_reward'])]
    if not finite:
        return None
    top = min(finite, key=lambda r: (-r['hyperband_reward'], r['epoch']))
    return top['epoch'], top['hyperband_reward']


def summary(store, row):
    """The contents of ``best.json`` for the best rung evaluation ``row``."""
    trial = row['trial']
    epoch, reward = best_epoch(store.read_history(trial), row['epochs']) or (None, None)
    return {'trial': trial, 'config': store.read_config(trial), 'epoch': epoch,
            'reward': reward, 'rung_epochs': row['epochs'], 'rung_reward': row['reward']}


def write_best(store, row):
    """Make ``best.json`` say ``row`` (None: no best yet, so no best.json); writes only if it
    differs from what is there."""
    path = store.best_json
    if row is None:
        if os.path.exists(path):
            os.remove(path)
        return None
    wanted = summary(store, row)
    try:
        if os.path.exists(path) and results.read_json(path) == wanted:
            return wanted
    except results.CorruptFileError:
        pass  # derived state: rewritten below
    results.write_json(path, wanted)
    return wanted


def refresh(store):
    """Rewrite ``best.json`` from ``search.csv`` (for ``-e``/``-p`` without ``-y``)."""
    rows = list(store.read_search().values())
    return write_best(store, best_row(rows))


def trial_outcomes(rows):
    """``{trial: 'finished' | 'failed' | 'diverged'}``: failed when any of its rung evaluations
    failed, diverged when one diverged, else finished."""
    out = {}
    for row in rows:
        status = {'ok': 'finished', 'error': 'failed'}.get(row['status'], row['status'])
        before = out.get(row['trial'], 'finished')
        out[row['trial']] = status if status != 'finished' and before != 'failed' else before
    return out


def closing_lines(store, rows, report=None):
    """What a search says when it ends: its trials by outcome (naming those that failed or
    diverged), the best configuration and its reward, and where the report is."""
    outcomes = trial_outcomes(rows)
    counts = []
    for outcome in ('finished', 'failed', 'diverged'):
        trials = sorted(t for t, o in outcomes.items() if o == outcome)
        if not trials:
            continue
        named = ', '.join(trials[:8]) + (f' and {len(trials) - 8} more' if len(trials) > 8
                                          else '')
        counts.append(f'{len(trials)} {outcome}' + ('' if outcome == 'finished' else
                                                     f' ({named})'))
    lines = [f'search done: {len(outcomes)} trials, ' + ', '.join(counts)
             + (f'; why each failed: {store.trial_file("<trial>", "error.txt")}'
                if 'failed' in outcomes.values() else '')]
    row = best_row(rows)
    best = store.read_best() if row is not None else None
    if best is not None:
        lines.append(f'best: trial {best["trial"]}, reward {best["reward"]:.6g} at epoch '
                     f'{best["epoch"]} (its best in {row["epochs"]} epochs; -e and -p use '
                     f'this epoch); config {best["config"]}')
    if report is not None and os.path.exists(report):
        lines.append(f'report: {report}')
    return lines
