"""``-p``: the files to predict, and predictions written with the names of their rows.

For every input file ``<file>`` that ``-p PATTERN`` matches (``-p`` may be repeated), the best
trial's predictions go to ``RESULT_DIR/predictions/``::

    <file>.npy    the array, as before (``<file>.<key>.npy`` per key for dict outputs)
    <file>.h5     dataset ``prediction`` (``prediction/<key>`` for dict outputs) beside ``row``
                  (0, 1, …) and, when the generator names its rows, ``name`` (and ``chrom``,
                  ``start``, ``end``): join on them, not on the row order
    <file>.tsv    the same as a table, for up to ``TSV_MAX_ROWS`` rows of at most
                  ``TSV_MAX_COLUMNS`` values: row, name…, then one column per output
                  (``CLASS_NAMES`` of def.py, else the model's ``task_names``, when there
                  are as many)

A generator names its rows with an optional ``row_names()`` method returning
``{'name': array, 'chrom': …}`` (see ``batch_generator.MatrixBatchGenerator.row_names``:
``H5pyBatchGenerator`` reads what ``python -m dlutil.prepare`` wrote, ``MatrixBatchGenerator``
takes ``names=``), or a ``names`` list. Without them, or when their length does not match the
predictions, the files carry row numbers alone. A def.py ``save_prediction(pred_path, Y)``
replaces all three files.
"""
import csv
import glob
import inspect
import io
import logging
import os

import numpy as np

from dlutil import files, h5output

log = logging.getLogger('dlutil')

TSV_MAX_ROWS = 100_000
TSV_MAX_COLUMNS = 1_000
ROW_COLUMNS = ('name', 'chrom', 'start', 'end')


def prediction_inputs(data_dir, patterns):
    """The files the ``--predict`` patterns match, relative to ``--data``.

    Parameters
    ----------
    data_dir: str
    patterns: str or list of str
        Globs (``**`` recurses) or file paths, one per ``-p``.

    Returns
    -------
    list of str
        Sorted within a pattern, patterns in the order given, each file once.
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    paths = []
    for pattern in patterns:
        full = os.path.join(data_dir, pattern)
        matched = [full] if os.path.isfile(full) else sorted(
            p for p in glob.glob(os.path.join(glob.escape(data_dir), pattern), recursive=True)
            if os.path.isfile(p))
        if not matched:
            raise FileNotFoundError(f'--predict {pattern!r}: no file matches {full!r}')
        paths += [p for p in matched if p not in paths]
    return paths


def prediction_names(paths, data_dir):
    """``<file name>`` per input; where two names collide, every input keeps its folders
    relative to ``--data`` (``predictions/a/x.h5.npy``, ``predictions/b/x.h5.npy``), which
    cannot collide. Inputs outside ``--data`` keep their folders from the root."""
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) < len(names):
        data_dir = os.path.abspath(data_dir)
        names = [os.path.relpath(os.path.abspath(p), data_dir) for p in paths]
        names = [os.path.abspath(p).lstrip(os.sep) if n.startswith(os.pardir) else n
                 for p, n in zip(paths, names)]
    return names


def row_columns(generator, n, source=''):
    """The generator's row names for ``n`` predictions, or ``{}`` (row numbers only).

    Returns
    -------
    dict
        ``{column: numpy.ndarray, shape=(n,)}`` among ``name``, ``chrom``, ``start``, ``end``.
    """
    if getattr(generator, 'shuffle', False):
        log.warning(f'{source}: the prediction generator shuffles its rows, so its row names do '
                    f'not follow the predictions; the files carry row numbers only')
        return {}
    if callable(getattr(generator, 'row_names', None)):
        columns = generator.row_names() or {}
    else:
        names = getattr(generator, 'names', None)
        columns = {} if names is None else {'name': names}
    columns = {key: np.asarray(values) for key, values in columns.items()
               if key in ROW_COLUMNS and values is not None}
    wrong = {key: len(values) for key, values in columns.items() if len(values) != n}
    if wrong:
        log.warning(f'{source}: {n} predictions but the generator names '
                    + ', '.join(f'{len_} rows ({key})' for key, len_ in wrong.items())
                    + '; the files carry row numbers only')
        return {}
    return columns


def output_names(width, class_names=None):
    """Column names of a prediction of ``width`` values per row."""
    if class_names is not None and len(class_names) == width and width > 1:
        return [str(c) for c in class_names]
    return ['prediction'] if width == 1 else [f'prediction_{k}' for k in range(width)]


def fill_h5(f, arrays, columns):
    """Write ``prediction`` (or ``prediction/<key>``), ``row`` and the row-name columns into the
    open ``h5py.File`` ``f``."""
    import h5py
    n = len(next(iter(arrays.values())))
    f.create_dataset('row', data=np.arange(n, dtype=np.int64))
    for key, values in columns.items():
        if values.dtype.kind in 'UO':
            f.create_dataset(key, data=values.astype(str).astype(object),
                             dtype=h5py.string_dtype())
        else:
            f.create_dataset(key, data=values)
    for key, array in arrays.items():
        f.create_dataset('prediction' if key is None else f'prediction/{key}',
                         data=np.asarray(array))


def tsv_text(array, columns, class_names=None):
    """One line per row: row, the row-name columns, the prediction's values (``%.6g``)."""
    flat = np.asarray(array).reshape(len(array), -1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter='\t', lineterminator='\n')
    writer.writerow(['row', *columns, *output_names(flat.shape[1], class_names)])
    for i in range(len(flat)):
        writer.writerow([i, *(columns[key][i] for key in columns),
                         *(f'{v:.6g}' for v in flat[i])])
    return buffer.getvalue()


def write_tsv(path, array, columns, class_names=None):
    """:func:`tsv_text` written to ``path``."""
    files.atomic_write(path, lambda f: f.write(tsv_text(array, columns, class_names)))


def write_outputs(stem, arrays, columns, class_names=None):
    """``stem.npy`` (``stem.<key>.npy`` per key), ``stem.tsv`` when small enough, ``stem.h5``.

    The files of one input are committed together, the ``.h5`` last: an ``.h5`` is there only
    when the ``.npy`` and ``.tsv`` beside it are of the same run. Returns the paths written.
    """
    npy = {key: f'{stem}{"." + key if key else ""}.npy' for key in arrays}
    tsv = f'{stem}.tsv' if None in arrays and small_enough_for_tsv(arrays[None]) else None
    targets = [*npy.values(), *([tsv] if tsv else []), f'{stem}.h5']
    with files.atomic_paths(*targets) as temporaries:
        tmp = dict(zip(targets, temporaries))
        for key, array in arrays.items():
            with open(tmp[npy[key]], 'wb') as handle:
                np.save(handle, array)
        if tsv:
            with open(tmp[tsv], 'w', encoding='utf-8') as handle:
                handle.write(tsv_text(arrays[None], columns, class_names))
        with h5output.H5Output(tmp[targets[-1]], targets[-1]) as output:
            fill_h5(output.file, arrays, columns)
    return targets


def small_enough_for_tsv(array):
    array = np.asarray(array)
    width = int(np.prod(array.shape[1:], dtype=np.int64)) if array.ndim > 1 else 1
    return array.ndim <= 2 and len(array) <= TSV_MAX_ROWS and width <= TSV_MAX_COLUMNS


def _positional_count(function):
    """How many positional arguments ``function`` takes (a large number for ``*args``)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return 1 << 30
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


def predict(definition, store, model, paths, data_dir, batch_size):
    """Predict every file in ``paths`` with ``model``; write ``.npy``, ``.h5`` and ``.tsv``.

    Returns
    -------
    str
        The ``predictions`` folder.
    """
    names = prediction_names(paths, data_dir)
    folder = store.path('predictions')
    class_names = definition.output_names(model)
    for path, name in zip(paths, names):
        generator = definition.generator('get_pred_generator', path)
        y_pred = model.predict(generator, batch_size)
        if definition.has('save_prediction'):
            # save_prediction(pred_path, Y) or save_prediction(pred_path, Y, out_dir): the
            # predictions folder under --result, so that nothing is written into --data
            extra = (folder,) if _positional_count(definition.module.save_prediction) >= 3 else ()
            definition.call('save_prediction', path, y_pred, *extra)
            log.info(f'predicted {path} (saved by def.py save_prediction)')
            continue
        arrays = y_pred if isinstance(y_pred, dict) else {None: y_pred}
        arrays = {key: np.asarray(array) for key, array in arrays.items()}
        n = len(next(iter(arrays.values())))
        columns = row_columns(generator, n, path)
        written = [os.path.relpath(p, folder) for p in
                   write_outputs(os.path.join(folder, name), arrays, columns, class_names)]
        if None not in arrays:
            written = [w for w in written if not w.endswith('.npy')] + [name + '.<key>.npy']
        named = ', '.join(columns) if columns else 'row numbers only'
        shape = np.shape(arrays[None]) if None in arrays else {k: a.shape for k, a in arrays.items()}
        log.info(f'predicted {path}: {shape} -> {folder}/{{{",".join(written)}}} ({named})')
    return folder
