"""Command line: Hyperband search, test and prediction for the model a ``def.py`` defines.

    python main.py --model def.py --data DATA --result RESULTS -y -e -p 'test*.h5'

This module parses arguments and dispatches to :mod:`runner`; it does nothing on import.
"""
import argparse
import logging
import os
import sys

from dlutil._program import has_useful_traceback  # noqa: F401 (its old home)
from dlutil import extras
from dlutil._program import program_name, run_cli
from dlutil.contract import CONTRACT
from dlutil.flags import add_renamed


def build_parser():
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description='Hyperband hyperparameter search (or one configuration, --config), '
                    'training with checkpoints, evaluation and prediction for a PyTorch model '
                    'defined in one def.py file. `%(prog)s export RESULT_DIR -o MODEL_DIR` '
                    'writes the best model as a folder that loads with torch alone (see '
                    '`%(prog)s export --help`).',
        epilog=CONTRACT + '\n' + extras.help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-f', '--model', metavar='DEF_PY',
                        help='the def.py file with loaders, Model and get_config (required, '
                             'unless RESULT_DIR holds a search: then its search.json says '
                             'which, so -r RESULT_DIR -y alone continues it)')
    parser.add_argument('-d', '--data', metavar='DATA_DIR',
                        help='data directory, passed to the def.py loaders as data_dir '
                             '(required, unless RESULT_DIR holds a search: then its '
                             'search.json says which)')
    parser.add_argument('-r', '--result', required=True, metavar='RESULT_DIR',
                        help='results directory (created; an existing search there continues)')
    parser.add_argument('-p', '--predict', metavar='PATTERN', action='append',
                        help='predict every file matching this glob, relative to DATA_DIR '
                             '(quote it; repeat -p for more patterns); writes '
                             'RESULT_DIR/predictions/<file>.npy, and <file>.h5 (and .tsv for '
                             'up to 100000 rows) with the prediction beside the name (and '
                             'chrom, start, end) of each input row')
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
    parser.add_argument('--interpret-kernels', type=int, default=None, metavar='N',
                        help='--interpret: draw the plots of the N most important kernels only '
                             '(summary.html still lists every kernel in its index, and '
                             'motifs.meme holds them all); default: every kernel')
    add_renamed(parser, '--interpret-top', '--interpret-kernels', 'interpret_kernels', int)
    parser.add_argument('--debug', action='store_true',
                        help='verbose log, and full tracebacks on errors')
    parser.add_argument('--check', action='store_true',
                        help='only load the def.py and check it against the contract for the '
                             'modes given (-y, -e, -p; all three when none is), then exit: '
                             'no data is read and nothing is written')
    parser.add_argument('-c', '--cpu', action='store_true',
                        help='use the CPU even when CUDA is available')
    parser.add_argument('--epoch', type=int, default=None, metavar='R',
                        help="Hyperband's R: the most epochs one configuration trains "
                             '(default: 27, or the existing search\'s)')
    parser.add_argument('-ep', dest='epoch', type=int, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)  # the older spelling, kept
    parser.add_argument('--batch-size', type=int, default=None, metavar='N',
                        help='training batch size, passed to get_train_generator; also the '
                             'batch size of evaluation and prediction (default: 128, or the '
                             'existing search\'s)')
    parser.add_argument('-bs', dest='batch_size', type=int, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)  # the older spelling, kept
    parser.add_argument('--eta', type=int, default=None,
                        help="Hyperband's eta: keep 1/eta of the configurations at each rung "
                             '(default: 3, or the existing search\'s)')
    parser.add_argument('--workers', type=int, default=1, metavar='N',
                        help='train trials in N worker processes (default: %(default)s); the '
                             'results are the same for any N. On CPU the cores are split '
                             'between workers; on CUDA each worker takes a GPU of --gpus')
    parser.add_argument('--threads', type=int, default=None, metavar='T',
                        help='torch CPU threads per trial (default: the existing search\'s; '
                             'else OMP_NUM_THREADS if set, else the idle cores now (cores less '
                             'the load average), at most 4, divided by --workers; 1 per task '
                             'with --ray. On a shared machine one thread is often the fastest). '
                             'The number is recorded in RESULT_DIR/search.json: results are '
                             'bit-identical for any --workers at the same --threads, while '
                             'another thread count may change the last bits, so a search that '
                             'holds results refuses another one, like other flags')
    parser.add_argument('--gpus', type=_gpu_ids, default=None, metavar='IDS',
                        help='comma-separated CUDA device ids for the workers, e.g. 0,1 '
                             '(default: all visible)')
    parser.add_argument('--ray', nargs='?', const='', default=None, metavar='ADDRESS',
                        help='run the trials as tasks on a Ray cluster: ADDRESS is auto (the '
                             'cluster this node belongs to) or HOST:PORT of its head; --ray '
                             'alone uses RAY_ADDRESS, else starts Ray on this machine. Same '
                             'results as a local run with the same --seed and --threads '
                             '(default 1 CPU per trial); no shared filesystem is needed for '
                             '--result (see README). A HOST:PORT where no head node answers '
                             f'within {RAY_CONNECT_SECONDS} s is refused. Needs pip install '
                             'dlutil[ray]')
    parser.add_argument('--gpus-per-trial', type=float, default=None, metavar='G',
                        help='with --ray: GPUs per trial, a fraction shares one '
                             '(default: 1 on a cluster with GPUs, unless --cpu); with --ddp N, '
                             'per process: a task reserves N times this and N times --threads '
                             'CPUs, on one node')
    parser.add_argument('--ddp', type=int, default=1, metavar='N',
                        help='train each trial with N data-parallel processes (torch.distributed: '
                             'NCCL, one GPU each, on CUDA; gloo on the CPU). Each batch of '
                             '--batch-size rows is shared among them, so results match one '
                             'process to float rounding; evaluation covers every sample once. '
                             'With --workers W, W groups run at once on N GPUs each; with '
                             '--ray, each trial is one task running its group on one node. On '
                             'the CPU, N may not exceed the cores this process may use '
                             '(default: %(default)s)')
    parser.add_argument('--sampler', choices=['random', 'tpe'], default=None,
                        help='how configurations are drawn: random (default), or tpe: '
                             "hyperopt's TPE fitted on the rewards seen so far (BOHB); tpe "
                             'needs get_space() in def.py')
    parser.add_argument('--trials', type=int, default=None, metavar='N',
                        help='budget of configurations: Hyperband iterations repeat until N '
                             'configurations are sampled (default: one iteration)')
    parser.add_argument('--restart', action='store_true',
                        help='with -y: start the search afresh even though RESULT_DIR holds '
                             'one made with other flags, data or def.py; the old results move '
                             'to RESULT_DIR.<timestamp> (nothing is deleted). Without it, a '
                             'changed search continues only while none of its rung '
                             'evaluations has succeeded')
    parser.add_argument('--keep-results', action='store_true',
                        help='with -y: continue a search whose def.py, environment variables '
                             'or data changed, keeping its finished rung evaluations; failed '
                             'ones run again with the new files, and search.csv\'s def_version '
                             'column (search.json\'s def_versions) says which def.py made each '
                             'row. For a change that does not alter what the finished ones '
                             'computed, such as a fix for the configurations that failed; '
                             'changed flags are still refused. --trials N larger than before '
                             'needs neither: it adds configurations to a search')
    parser.add_argument('--keep-checkpoints', choices=['all', 'best', 'none'], default='best',
                        help='which checkpoints a trial keeps once the search is done with it '
                             '(not promoted at a rung, failed, or its bracket finished). best: '
                             'best.pt with the weights alone, no last.pt (optimizer, RNG); '
                             'none: nothing, except the best trial\'s best.pt; all: last.pt '
                             'and best.pt of every trial. Trials that may still be promoted '
                             'keep both whatever the policy, and -e/-p/--interpret always find '
                             'the best weights (default: %(default)s)')
    parser.add_argument('--tensorboard', action='store_true',
                        help='with -y: also write TensorBoard logs, one run per trial with its '
                             'hyperparameters and its losses, metrics and reward by epoch, in '
                             'RESULT_DIR/tensorboard/<trial>/; see them with tensorboard '
                             "--logdir RESULT_DIR. Needs pip install 'dlutil[tensorboard]'")
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the search: the same seed gives the same configurations, '
                             'brackets and (on CPU, at the same --threads) results. Left out: '
                             'the existing search\'s seed, else a new one drawn at random; '
                             'either way it is recorded in RESULT_DIR/search.json')
    add_training_arguments(parser)
    from dlutil.variants import command as variants_command  # light: no torch
    variants_command.add_arguments(parser)
    return parser


def add_training_arguments(parser):
    """``--config``, ``--init-from`` and its companions."""
    group = parser.add_argument_group('one configuration, and starting from trained weights')
    group.add_argument('--config', metavar='FILE|JSON',
                       help='train this one configuration instead of a search (a JSON object, '
                            'or a JSON file such as a best.json), for --epoch epochs, with the '
                            'checkpoints, resume, early stopping and report of a trial: '
                            'RESULT_DIR reads like a search of one (trials/t0000/, search.csv, '
                            'best.json) and -e/-p use it. Its keys must be those get_config() or '
                            'get_space() gives (missing or unknown keys are an error naming them). '
                            'Same seed, same results as trial t0000 of a search with that '
                            'configuration')
    group.add_argument('--init-from', metavar='CHECKPOINT',
                       help='with -y or --config: start every trial from these weights: a '
                            'best.pt or last.pt of this tool, a state_dict file, or a results '
                            'directory (its best trial). Strict: keys missing, unexpected or of '
                            'another shape are one error naming them')
    group.add_argument('--init-layers', metavar='PREFIX[,PREFIX]',
                       help='--init-from: load only the tensors under these module prefixes '
                            '(e.g. layer1,layer2); default: the whole network')
    group.add_argument('--freeze', nargs='?', const='', default=None, metavar='PREFIX[,PREFIX]',
                       help='--init-from: keep parameters fixed while training (requires_grad '
                            'False): alone, every loaded parameter; with prefixes, those '
                            'modules\' parameters')
    group.add_argument('--init-partial', action='store_true',
                       help='--init-from: load the tensors that fit and warn about the rest, '
                            'instead of refusing')


RAY_CONNECT_SECONDS = 5  # dlutil.search.executors.ray.CONNECT_SECONDS: --help needs no torch


def _gpu_ids(text):
    """``--gpus 0,1`` → ``[0, 1]``."""
    try:
        return [int(g) for g in text.split(',') if g.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers like 0,1, '
                                         f'got {text!r}') from None


def check_args(parser, args):
    """Every problem with the numbers at once, before any work (``args`` is left as it is)."""
    problems = []
    if args.epoch is not None and args.epoch < 1:
        problems.append(f'--epoch must be at least 1, got {args.epoch}')
    if args.eta is not None and args.eta < 2:
        problems.append(f'--eta must be at least 2, got {args.eta}')
    if args.batch_size is not None and args.batch_size < 1:
        problems.append(f'--batch-size must be at least 1, got {args.batch_size}')
    if args.workers < 1:
        problems.append(f'--workers must be at least 1, got {args.workers}')
    if args.threads is not None and args.threads < 1:
        problems.append(f'--threads must be at least 1, got {args.threads}')
    if args.interpret_kernels is not None and args.interpret_kernels < 1:
        problems.append(f'--interpret-kernels must be at least 1, got {args.interpret_kernels}')
    if args.trials is not None and args.trials < 1:
        problems.append(f'--trials must be at least 1, got {args.trials}')
    if args.ddp < 1:
        problems.append(f'--ddp must be at least 1, got {args.ddp}')
    if args.ray is not None:
        if args.workers > 1:
            problems.append('--workers and --ray do not go together: on Ray, the cluster\'s '
                            'CPUs (or GPUs) divided by --threads (or --gpus-per-trial) set how '
                            'many trials run at once')
    if args.gpus_per_trial is not None and (args.ray is None or args.gpus_per_trial < 0):
        problems.append(f'--gpus-per-trial must be a number >= 0, with --ray; got '
                        f'{args.gpus_per_trial}' + ('' if args.ray is not None else
                                                    ' without --ray'))
    if args.seed is not None and args.seed < 0:
        problems.append(f'--seed must be a non-negative integer, got {args.seed}')
    if args.restart and not (args.hyper or args.config is not None):
        problems.append('--restart starts a search afresh: it needs -y/--hyper (or --config)')
    if args.keep_results and not args.hyper:
        problems.append('--keep-results continues a search: it needs -y/--hyper')
    if args.keep_results and args.restart:
        problems.append('--keep-results keeps a search\'s results and --restart moves them '
                        'aside: choose one')
    if args.tensorboard and not args.hyper:
        problems.append('--tensorboard logs the trials of a search: it needs -y/--hyper')
    problems += training_problems(args)
    from dlutil.variants import command as variants_command
    problems += variants_command.check(args)
    problems += missing_extras(args)
    if problems:
        parser.error('; '.join(problems))


def take_from_result(parser, args):
    """``-f`` and ``-d`` left out: the ones the search in ``-r`` was made with (its
    ``search.json``), said in one line; an error when there is none to take them from."""
    missing = [flag for flag, name in (('-f/--model', 'model'), ('-d/--data', 'data'))
               if getattr(args, name) is None]
    if not missing:
        return
    path = os.path.join(args.result, 'search.json')
    if not os.path.isfile(path):
        parser.error(f'{" and ".join(missing)} required: {args.result} holds no search '
                     f'(no search.json) to take {"them" if len(missing) > 1 else "it"} from')
    from dlutil.files import CorruptFileError, read_json
    try:
        saved = read_json(path)
        taken = {'model': saved['model'], 'data': saved['data']['path']}
    except (CorruptFileError, KeyError, TypeError) as error:
        parser.error(f'{" and ".join(missing)} required: {path} does not say which '
                     f'({type(error).__name__}: {error})')
    for name in ('model', 'data'):
        if getattr(args, name) is None:
            setattr(args, name, taken[name])
    logging.getLogger('dlutil').info(
        f'{path}: using ' + ', '.join(f'{flag.split("/")[0]} {taken[name]}' for flag, name in
                                      (('-f', 'model'), ('-d', 'data')) if flag in
                                      ''.join(missing)) + ' (left out: taken from search.json)')


def missing_extras(args):
    """The install hints of the optional packages the flags given need and lack."""
    given = {'--attribute': args.attribute, '--motifs': args.motifs, '--vep': args.vep,
             '--ray': args.ray is not None, '--tensorboard': args.tensorboard}
    where = {'--ray': ', on the driver and on every node of the cluster'}
    return [line + where.get(flag, '') for flag, (packages, extra) in extras.FEATURES.items()
            if given.get(flag) for line in extras.missing(packages, flag, extra)]


def training_problems(args):
    """What is wrong with ``--config`` and ``--init-from`` and their companions."""
    problems = []
    if args.config is not None:
        if args.hyper:
            problems.append('--config trains one configuration and -y/--hyper searches: give '
                            'one of them')
        given = [flag for flag, value in (('--eta', args.eta), ('--sampler', args.sampler),
                                          ('--trials', args.trials)) if value is not None]
        if given:
            problems.append(f'{", ".join(given)} belong to a search; --config trains one '
                            f'configuration for --epoch epochs')
    if args.init_from is not None and not (args.hyper or args.config is not None):
        problems.append('--init-from sets the first weights of training: it needs -y or '
                        '--config')
    for flag, value in (('--init-layers', args.init_layers), ('--freeze', args.freeze),
                        ('--init-partial', args.init_partial or None)):
        if value is not None and args.init_from is None:
            problems.append(f'{flag} goes with --init-from CHECKPOINT')
    return problems


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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['export']:
        return export_main(argv[1:])
    args = parse(build_parser(), argv)
    return run_cli(lambda: execute(args), args.debug,
                   interrupted='interrupted: re-run the same command to continue where it stopped')


def parse(parser, argv):
    """The checked arguments of ``argv`` (``parser.error`` on any problem)."""
    args = parser.parse_args(argv)
    check_args(parser, args)
    setup_logging(args.debug)  # take_from_result says what it took
    take_from_result(parser, args)
    return args


def execute(args):
    """Carry out parsed arguments: ``--check``, or :func:`dlutil.runner.run` (also what
    :mod:`dlutil.api` calls); returns the exit status."""
    if args.workers > 1 or args.ddp > 1:
        from dlutil import processes
        processes.start()  # the workers' parent imports torch while we do
    if args.check:
        return check_definition(args)
    from dlutil import runner  # deferred: --help needs no torch
    return runner.run(args)


def export_main(argv):
    """``dlutil export RESULT -o MODEL_DIR``: see :mod:`dlutil.export`."""
    from dlutil import export  # deferred: torch
    args = export.build_parser().parse_args(argv)
    setup_logging(args.debug)
    return run_cli(lambda: export.run(args), args.debug)


def check_definition(args):
    """``--check``: load the def.py and check it for the modes asked for (all when none is)."""
    from dlutil.definition import Definition
    modes = {'hyper': args.hyper, 'eval': args.eval, 'predict': bool(args.predict)}
    if not any(modes.values()):
        modes = dict.fromkeys(modes, True)
    Definition.load(args.model, **modes)
    shown = ', '.join(flag for flag, mode in (('-y', 'hyper'), ('-e', 'eval'), ('-p', 'predict'))
                      if modes[mode])
    print(f'{args.model}: meets the contract for {shown}')
    return 0


def console(argv=None):
    """The program's entry point: :func:`main`, then an exit that skips the interpreter's teardown.

    By the time :func:`main` returns, every file the command wrote is closed (atomic writes) and
    its workers are gone. What remains is Python tearing down torch, hyperopt and their kin
    module by module, one to two seconds of CPU on every run that nobody waits for gladly: a
    short search with ``--workers 2`` spent a sixth of its time there. Exit handlers still run
    (multiprocessing's, Ray's, logging's), and the streams are flushed; only then the process
    ends with ``os._exit``.
    """
    code = main(argv)
    import atexit
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say there
            pass
    os._exit(code)


if __name__ == '__main__':
    console()
