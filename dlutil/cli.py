"""Command line: Hyperband search, test and prediction for the model a ``def.py`` defines.

    python main.py --model def.py --data DATA --result RESULTS -y -e -p 'test*.h5'

This module parses arguments and dispatches to :mod:`runner`; it does nothing on import.
"""
import argparse
import logging
import os
import sys

CONTRACT = """\
the def.py contract:
  get_config()                          -> one randomly sampled, JSON-serialisable dict  (-y)
  get_space()                           -> a hyperopt space, instead of get_config         (-y)
  get_train_generator(data_dir, batch_size)
                                        -> a batch generator, or (train, val)             (-y)
  get_val_generator(data_dir)           -> validation generator, unless the above
                                           returns (train, val)                           (-y)
  get_test_generator(data_dir)          -> test generator                                 (-e)
  get_pred_generator(pred_path)         -> generator of inputs, once per file -p matches  (-p)
  save_prediction(pred_path, Y)         optional; replaces predictions/<file>.npy         (-p)
  ALPHABET = 'ACGU'                     optional; the letters of the one-hot channels,
                                        in channel order (default: ACGT for 4)   (--interpret)
  CLASS_NAMES = ['bound', 'unbound']    optional; names of the classes           (--interpret)
  class Model(base_model.BaseModel)     init_model(self) builds network, criterion and
                                        optimizer from self.config and calls
                                        super().init_model(network, criterion, optimizer,
                                        constraints=...); train_metrics(y_true, y_pred),
                                        eval_metrics(y_true, y_pred) -> {name: scalar};
                                        get_hyperband_reward(result) -> number to maximise.
                                        ClassificationModel / RegressionModel supply the
                                        criterion, metrics and reward (-val_loss).
  Batch generators yield (x, y) numpy batches: batch_generator.MatrixBatchGenerator(X, Y,
  batch_size, shuffle), H5pyBatchGenerator(glob, batch_size, shuffle) over the 'data' and
  'label' datasets of HDF5 files. def.py may read environment variables:
  VAR=value python main.py ...

results (--result):
  search.csv, best.json, report.html, trials/<id>/{config.json, history.csv, last.pt,
  best.pt}, test_result.json (-e), predictions/<input file name>.npy (-p),
  interpret/summary.html, motifs.meme, performance.html (--interpret),
  interpret/attributions.html (--attribute), vep/<vcf name>.{h5,top.tsv} (--vep).
  Interrupt a search at any time (Ctrl-C, a crash): the same command continues it.
"""


def program_name(argv0=None):
    """How the user started us, for usage lines and hints: main.py, dlutil or python -m dlutil."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if name == '__main__.py':
        return 'python -m dlutil'
    return 'dlutil' if name == 'dlutil' else f'python {name or "main.py"}'


def build_parser():
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description='Hyperband hyperparameter search, training with checkpoints, evaluation '
                    'and prediction for a PyTorch model defined in one def.py file.',
        epilog=CONTRACT, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-f', '--model', required=True, metavar='DEF_PY',
                        help='the def.py file with loaders, Model and get_config')
    parser.add_argument('-d', '--data', required=True, metavar='DATA_DIR',
                        help='data directory, passed to the def.py loaders as data_dir')
    parser.add_argument('-r', '--result', required=True, metavar='RESULT_DIR',
                        help='results directory (created; an existing search there continues)')
    parser.add_argument('-p', '--predict', metavar='PATTERN',
                        help='predict every file matching this glob, relative to DATA_DIR '
                             '(quote it); writes RESULT_DIR/predictions/<file>.npy')
    parser.add_argument('-y', '--hyper', action='store_true',
                        help='run (or continue) the Hyperband search; on a finished search, '
                             'report the best trial')
    parser.add_argument('-e', '--eval', action='store_true',
                        help='evaluate the best trial on get_test_generator(data_dir); '
                             'writes RESULT_DIR/test_result.json')
    parser.add_argument('--interpret', action='store_true',
                        help='interpret the best trial on get_test_generator(data_dir), as '
                             'pysster does: a motif logo, positions and per-class activations '
                             'of every first-layer kernel sorted by importance, motifs.meme, a '
                             'clustering, optimized inputs and a per-class performance report, '
                             'in RESULT_DIR/interpret/ (open summary.html). Needs a network '
                             'whose first layer is a convolution over one-hot sequences; the '
                             'letters are ALPHABET from def.py (e.g. ALPHABET = "ACGU"), '
                             'default ACGT for 4 channels')
    parser.add_argument('--debug', action='store_true',
                        help='verbose log, and full tracebacks on errors')
    parser.add_argument('-c', '--cpu', action='store_true',
                        help='use the CPU even when CUDA is available')
    parser.add_argument('-ep', '--epoch', type=int, default=27, metavar='R',
                        help="Hyperband's R: the most epochs one configuration trains "
                             '(default: %(default)s)')
    parser.add_argument('-bs', '--batch-size', type=int, default=128, metavar='N',
                        help='training batch size, passed to get_train_generator; also the '
                             'batch size of evaluation and prediction (default: %(default)s)')
    parser.add_argument('--eta', type=int, default=3,
                        help="Hyperband's eta: keep 1/eta of the configurations at each rung "
                             '(default: %(default)s)')
    parser.add_argument('--workers', type=int, default=1, metavar='N',
                        help='train trials in N worker processes (default: %(default)s); the '
                             'results are the same for any N. On CPU the cores are split '
                             'between workers; on CUDA each worker takes a GPU of --gpus')
    parser.add_argument('--threads', type=int, default=None, metavar='T',
                        help='torch CPU threads per trial (default: the cores divided by '
                             '--workers). Results are bit-identical for any --workers at the '
                             'same --threads; another thread count may change the last bits')
    parser.add_argument('--gpus', default=None, metavar='IDS',
                        help='comma-separated CUDA device ids for the workers, e.g. 0,1 '
                             '(default: all visible)')
    parser.add_argument('--sampler', choices=['random', 'tpe'], default='random',
                        help='how configurations are drawn: random (default), or tpe: '
                             "hyperopt's TPE fitted on the rewards seen so far (BOHB); tpe "
                             'needs get_space() in def.py')
    parser.add_argument('--trials', type=int, default=None, metavar='N',
                        help='budget of configurations: Hyperband iterations repeat until N '
                             'configurations are sampled (default: one iteration)')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the search: the same seed gives the same configurations, '
                             'brackets and (on CPU) results; default: a new one, recorded in '
                             'RESULT_DIR/search.json and reused when the search continues')
    from dlutil.variants import command as variants_command  # light: no torch
    variants_command.add_arguments(parser)
    return parser


def check_args(parser, args):
    """Every problem with the numbers at once, before any work."""
    problems = []
    if args.epoch < 1:
        problems.append(f'-ep/--epoch must be at least 1, got {args.epoch}')
    if args.eta < 2:
        problems.append(f'--eta must be at least 2, got {args.eta}')
    if args.batch_size < 1:
        problems.append(f'-bs/--batch-size must be at least 1, got {args.batch_size}')
    if args.workers < 1:
        problems.append(f'--workers must be at least 1, got {args.workers}')
    if args.threads is not None and args.threads < 1:
        problems.append(f'--threads must be at least 1, got {args.threads}')
    if args.trials is not None and args.trials < 1:
        problems.append(f'--trials must be at least 1, got {args.trials}')
    if args.gpus is not None:
        try:
            args.gpus = [int(g) for g in args.gpus.split(',') if g.strip()]
        except ValueError:
            problems.append(f'--gpus must be comma-separated integers like 0,1, got {args.gpus!r}')
    if args.seed is not None and args.seed < 0:
        problems.append(f'--seed must be a non-negative integer, got {args.seed}')
    from dlutil.variants import command as variants_command
    problems += variants_command.check(args)
    if problems:
        parser.error('; '.join(problems))


class _TqdmHandler(logging.Handler):
    """Log lines that do not tear through progress bars."""

    def emit(self, record):
        from tqdm import tqdm
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def setup_logging(debug):
    logger = logging.getLogger('dlutil')
    logger.handlers[:] = []
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter('%(message)s'))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    setup_logging(args.debug)
    try:
        from dlutil import runner  # deferred: --help needs no torch
        runner.run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print('interrupted: re-run the same command to continue where it stopped',
              file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        known = isinstance(error, (ValueError, TypeError, OSError, NotImplementedError))
        message = str(error) if known and str(error) else f'{type(error).__name__}: {error}'
        print(f'error: {message}', file=sys.stderr)
        print('(run with --debug for the traceback)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
