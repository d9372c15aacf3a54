"""The command-line side of variant effects and attributions: ``--vep`` and ``--attribute``.

    python main.py -f def.py -d DATA -r RESULTS --vep calls.vcf.gz --genome hg38.fa
    python main.py -f def.py -d DATA -r RESULTS --attribute --motifs JASPAR.meme

Both use the best trial of RESULTS (or ``--checkpoint PATH``, a ``best.pt``/``last.pt`` of any
trial). ``--vep`` writes ``RESULTS/vep/<vcf name>.h5``, ``.top.tsv``, ``.vcf.gz`` and
``.vcf.gz.tbi`` (see :mod:`dlutil.variants.outputs`); ``--attribute`` writes
``RESULTS/interpret/attributions.html`` and its files.
"""
import os
import re

from dlutil.flags import add_renamed, count
from dlutil.sequences.onehot import UNKNOWN_POLICIES
from dlutil.variants.scores import POSITION_RULES, SCORES, TASK_RULES

__all__ = ['add_arguments', 'check', 'wanted', 'load_checkpoint_model', 'run']


def add_arguments(parser):
    group = parser.add_argument_group(
        'variant effects and attributions (best trial, or --checkpoint)')
    group.add_argument('--vep', metavar='VCF',
                       help='score every REF/ALT of a VCF/BCF: predictions for the reference and '
                            'alternative windows (centred on each allele) as -p predicts them, '
                            'and the --vep-score scores per task (a two-class classifier: '
                            'class 1, the positive class, only); writes '
                            'RESULT_DIR/vep/<name>.h5, <name>.top.tsv (largest effects) and '
                            '<name>.vcf.gz (+ .tbi: the records with the scores in INFO '
                            'fields). Needs --genome')
    group.add_argument('--vep-score', action='append', metavar='S[,S…]',
                       help='--vep: the scores, comma-separated or repeated: diff (alt - ref), '
                            'log_fold_change (log2 alt/ref: of probabilities from the logits, '
                            'of other outputs with --vep-pseudocount), ratio (alt/ref, the same '
                            'way), log_odds (logit alt - logit ref, float64 from the logits; '
                            'probabilities only). Default: diff, and log_odds for '
                            'probabilities. The first ranks the TSV')
    group.add_argument('--vep-aggregate-tasks', default='none', choices=TASK_RULES,
                       metavar='RULE',
                       help='--vep: one score over all tasks instead of one per task: sum, '
                            'mean, max, min, meanabs (mean absolute value) or maxabs (the '
                            'value of largest magnitude, signed) (default: %(default)s)')
    group.add_argument('--vep-aggregate-positions', default=None, choices=POSITION_RULES,
                       metavar='RULE',
                       help='--vep, for models with positional outputs (n, tasks, positions): '
                            'sum, mean or max of each window\'s profile, then scored; or '
                            'meanabs/maxabs of the scores of every position (needed for such '
                            'models; refused for others)')
    group.add_argument('--vep-shifts', type=int, default=0, metavar='S',
                       help='--vep: average the model\'s outputs over the windows moved by '
                            '-S … +S bp (2S + 1 pairs per variant; default: %(default)s)')
    group.add_argument('--vep-pseudocount', type=float, default=1.0, metavar='C',
                       help='--vep: log_fold_change and ratio of outputs that are not '
                            'probabilities are of (value + C) (default: %(default)s)')
    group.add_argument('--vep-iupac', choices=UNKNOWN_POLICIES,
                       default='uniform',
                       help='--vep: N (the genome\'s, and past a chromosome end) and other IUPAC '
                            'codes in the windows, as the training data had them (prepare '
                            '--iupac): uniform = 0.25 in all four rows; fractional; zeros = an '
                            'all-zero column, as fasta_data and pysster (default: %(default)s)')
    group.add_argument('--vep-info-prefix', default='dlutil', metavar='P',
                       help='--vep: the annotated VCF\'s INFO fields are P_<score>_<task> '
                            '(default: %(default)s)')
    group.add_argument('--genome', metavar='FASTA',
                       help='the reference genome of --vep (FASTA, plain or bgzipped; pyfaidx '
                            'writes FASTA.fai beside it)')
    group.add_argument('--checkpoint', metavar='PATH',
                       help='use this checkpoint (a trial\'s best.pt or last.pt) instead of the '
                            'best trial, for -e, -p, --interpret, --vep and --attribute')
    group.add_argument('--seq-len', type=int, default=None, metavar='L',
                       help='window length, when the network has no seq_len attribute and the '
                            'config no seq_len key')
    group.add_argument('--strand-average', action='store_true',
                       help='--vep: average each window\'s outputs with its reverse '
                            'complement\'s, as a model with strand_average = True does in '
                            '-e and -p (such a model averages in --vep without this flag)')
    group.add_argument('--max-ref-mismatch', type=float, default=0.01, metavar='F',
                       help='--vep: stop with an error when more than this fraction of alleles '
                            'has a REF that does not match the genome (those are never scored; '
                            'default: %(default)s)')
    group.add_argument('--vep-rows', dest='vep_top', type=count, default=1000, metavar='N',
                       help='--vep: rows of the largest-effects TSV (default: %(default)s)')
    add_renamed(group, '--vep-top', '--vep-rows', 'vep_top', count)
    group.add_argument('--attribute', action='store_true',
                       help='DeepLIFT/SHAP (with its convergence check), gradient x input and '
                            'saturation mutagenesis logos for the test set\'s top sequences, '
                            'and TF-MoDISco motifs over them, in RESULT_DIR/interpret/'
                            'attributions.html')
    group.add_argument('--attribute-sequences', dest='attribute_top', type=count, default=500,
                       metavar='N', help='--attribute: the N test sequences with the highest '
                                         'target output (default: %(default)s)')
    add_renamed(group, '--attribute-top', '--attribute-sequences', 'attribute_top', count)
    group.add_argument('--attribute-target', default=None, metavar='T',
                       help='--attribute: the output to explain, an index or a CLASS_NAMES name '
                            '(default: 1, the positive class, for a two-class classifier; '
                            'else 0)')
    group.add_argument('--attribute-logos', type=int, default=5, metavar='K',
                       help='--attribute: draw logos for the first K of them (default: '
                            '%(default)s)')
    group.add_argument('--modisco-window', type=int, default=21, metavar='W',
                       help='--attribute: TF-MoDISco\'s seqlet window (flank W // 2); about the '
                            'width of the motifs sought (default: %(default)s)')
    group.add_argument('--motifs', metavar='MEME',
                       help='--attribute: match the TF-MoDISco motifs against this MEME file '
                            '(e.g. JASPAR) with TOMTOM')


def check(args):
    """The problems with these options, as a list of messages."""
    problems = []
    if args.vep and not args.genome:
        problems.append('--vep needs --genome FASTA')
    if args.genome and not args.vep:
        problems.append('--genome is for --vep; give --vep VCF too')
    if args.motifs and not args.attribute:
        problems.append('--motifs is for --attribute')
    problems += _check_vep(args)
    if not 0 <= args.max_ref_mismatch <= 1:
        problems.append(f'--max-ref-mismatch must be in [0, 1], got {args.max_ref_mismatch}')
    for name in ('seq_len', 'vep_top', 'attribute_top', 'modisco_window'):
        value = getattr(args, name)
        if value is not None and value < 1:
            problems.append(f'--{name.replace("_", "-")} must be at least 1, got {value}')
    if args.attribute_logos < 0:
        problems.append(f'--attribute-logos must be at least 0, got {args.attribute_logos}')
    for name in ('vep', 'genome', 'checkpoint', 'motifs'):
        path = getattr(args, name)
        if path and not os.path.isfile(path):
            problems.append(f'--{name} {path}: no such file')
    return problems


def vep_scores(args):
    """The --vep-score names, split at commas (None: the default)."""
    if not getattr(args, 'vep_score', None):
        return None
    return [name.strip() for value in args.vep_score for name in value.split(',')
            if name.strip()]


def _check_vep(args):
    problems = []
    scores = vep_scores(args) or []
    unknown = sorted({name for name in scores if name not in SCORES})
    if unknown:
        problems.append(f'--vep-score {", ".join(unknown)}: expected some of {", ".join(SCORES)}')
    if len(set(scores)) != len(scores):
        problems.append(f'--vep-score names a score twice: {", ".join(scores)}')
    if args.vep_shifts < 0:
        problems.append(f'--vep-shifts must be at least 0, got {args.vep_shifts}')
    if args.vep_pseudocount < 0:
        problems.append(f'--vep-pseudocount must be at least 0, got {args.vep_pseudocount}')
    if not re.fullmatch(r'[A-Za-z_][0-9A-Za-z_.]*', args.vep_info_prefix):
        problems.append(f'--vep-info-prefix {args.vep_info_prefix!r}: a VCF INFO ID starts '
                        f'with a letter or _ and holds letters, digits, _ and . only')
    given = [flag for flag, value, default in (
        ('--vep-score', args.vep_score, None),
        ('--vep-aggregate-tasks', args.vep_aggregate_tasks, 'none'),
        ('--vep-aggregate-positions', args.vep_aggregate_positions, None),
        ('--vep-shifts', args.vep_shifts, 0), ('--vep-pseudocount', args.vep_pseudocount, 1.0),
        ('--vep-info-prefix', args.vep_info_prefix, 'dlutil'),
        ('--vep-iupac', args.vep_iupac, 'uniform')) if value != default]
    if given and not args.vep:
        problems.append(f'{", ".join(given)}: for --vep; give --vep VCF too')
    return problems


def wanted(args):
    """Whether the command line asks for --vep or --attribute."""
    return bool(getattr(args, 'vep', None) or getattr(args, 'attribute', False))


def load_checkpoint_model(definition, path, device):
    """The def.py's Model with the weights and config of the checkpoint at ``path``."""
    from dlutil import files, torchfile
    from dlutil.errors import CorruptFileError, UnsafeFileError
    try:
        checkpoint = torchfile.load(path, '--checkpoint')
    except UnsafeFileError:
        raise
    except CorruptFileError as error:
        reason = str(error).rpartition(' (')[2].rstrip(')')
        raise ValueError(f'--checkpoint {path}: cannot load it as a PyTorch checkpoint '
                         f'({reason})') from None
    if not isinstance(checkpoint, dict) or 'model' not in checkpoint:
        raise ValueError(f'--checkpoint {path}: not a checkpoint of this tool (expected a dict '
                         f'with "model" and "config", as trials/<id>/best.pt)')
    config = checkpoint.get('config')
    if config is None:
        config_path = os.path.join(os.path.dirname(path), 'config.json')
        if not os.path.exists(config_path):
            raise ValueError(f'--checkpoint {path}: it holds no config and there is no '
                             f'config.json beside it')
        config = files.read_json(config_path)
    model = definition.Model(config, device=device)
    model.load_state_dict(checkpoint['model'], optimizer=False)
    return model


def vep_name(vcf):
    """``calls`` for calls.vcf, calls.vcf.gz, calls.vcf.bgz or calls.bcf."""
    name = os.path.basename(vcf)
    for suffix in ('.gz', '.bgz', '.vcf', '.bcf'):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    return name or 'variants'


def run(args, definition, store, model):
    """Carry out ``--vep`` with ``model`` (``--attribute``: :func:`dlutil.runner.attribute`)."""
    names = getattr(definition.module, 'CLASS_NAMES', None) or getattr(model, 'task_names', None)
    if args.vep:
        from dlutil.variants.effects import score_vcf
        out = store.path('vep', vep_name(args.vep) + '.h5')
        source = os.path.basename(definition.path) + ', ' + (
            args.checkpoint or f'the best trial of {store.root}')
        score_vcf(model, args.vep, args.genome, out, length=args.seq_len,
                  batch_size=args.batch_size,
                  strand_average=True if args.strand_average else None,
                  max_ref_mismatch=args.max_ref_mismatch, top=args.vep_top,
                  tasks=list(names) if names else None, scores=vep_scores(args),
                  aggregate_tasks=args.vep_aggregate_tasks,
                  aggregate_positions=args.vep_aggregate_positions, shifts=args.vep_shifts,
                  pseudocount=args.vep_pseudocount, info_prefix=args.vep_info_prefix,
                  source=source, iupac=args.vep_iupac)
