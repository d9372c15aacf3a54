"""deepLAI's SegNet for local ancestry inference (Aguirre et al., github.com/maguirre1/deepLAI).

An encoder-decoder over one haplotype's variants: ``n_blocks`` down blocks of two 'same'
convolutions (``n_filters · 2^i`` filters of ``width``, He-normal, ReLU, dropout, optional batch
normalization), each followed by a max-pool of ``pool_size`` whose output is kept; then, from the
deepest block up, the kept pool output is concatenated with the current features, upsampled by
``pool_size`` and passed through two more convolutions; a per-variant dense layer gives the
ancestry scores (a softmax over ancestries at every variant). L2 activity regularisation of
every convolution's output is λ · Σx² / batch (Keras' ``activity_regularizer``, λ = 1e-30).

deepLAI needs the number of variants to be a multiple of ``pool_size ** n_blocks``; here the
input is padded with missing variants (all-zero columns) up to the next multiple and the output
cropped, so any number of variants works.

``python -m models.segnet`` (or ``python -m dlutil.models.segnet``) prints deepLAI's
``hparam_to_nparam.tsv``: hyperparameters → number of parameters.
"""
import argparse
import itertools
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

from dlutil.files import atomic_write
from dlutil.genotypes.encoding import AlleleEncoding

SEGNET_DEFAULTS = {'width': 16, 'n_filters': 16, 'pool_size': 4, 'n_blocks': 5,
                   'dropout_rate': 0.01, 'input_dropout_rate': 0.01, 'l2_lambda': 1e-30,
                   'batch_normalization': False, 'encoding': 'one_hot', 'input_pool': 1}


def _he_normal(conv):
    """Keras' he_normal: truncated normal, std sqrt(2 / fan_in), cut at two std; zero bias."""
    fan_in = conv.in_channels * conv.kernel_size[0]
    std = math.sqrt(2.0 / fan_in)
    nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(conv.bias)


class SegNet(nn.Module):
    """deepLAI's SegNet.

    Parameters
    ----------
    n_variants: int
        Variants per haplotype (deepLAI's ``input_shape[0]``; any number).
    n_classes: int
        Ancestries.
    width, n_filters, pool_size, n_blocks, dropout_rate, input_dropout_rate, l2_lambda,
    batch_normalization:
        deepLAI's hyperparameters (defaults 16, 16, 4, 5, 0.01, 0.01, 1e-30, False).
    encoding: 'one_hot' or 'likelihood'
        deepLAI's one-hot alleles, or per variant the log-likelihood of the allele under each
        ancestry's frequency in the training panel (:mod:`dlutil.genotypes.encoding`; fitted with
        ``self.encoder.set_frequencies``): the position-specific information a convolution,
        whose weights are shared across positions, cannot learn from one-hot alleles.
    n_alleles: int
        deepLAI's ``input_shape[1]``: one-hot channels per variant (2: REF, ALT).
    input_pool: int
        Sum the encoded features of this many consecutive variants before the first block, and
        repeat the scores over them at the end (1, deepLAI's: none). The network then runs at
        1 / ``input_pool`` of the variants' resolution, at about that fraction of the cost;
        with the likelihood encoding a pooled feature is the naive-Bayes score of its variants,
        so no ancestry information is lost, only the resolution of the calls.

    Input: alleles, shape=(n, variants) (0, 1, 255 missing), or one-hot, shape=(n, n_alleles,
    variants). Output: logits, shape=(n, n_classes, variants).
    """

    def __init__(self, n_variants, n_classes, width=16, n_filters=16, pool_size=4, n_blocks=5,
                 dropout_rate=0.01, input_dropout_rate=0.01, l2_lambda=1e-30,
                 batch_normalization=False, encoding='one_hot', n_alleles=2, input_pool=1):
        super().__init__()
        for name, value in (('n_variants', n_variants), ('n_classes', n_classes),
                            ('width', width), ('n_filters', n_filters),
                            ('pool_size', pool_size), ('n_blocks', n_blocks),
                            ('input_pool', input_pool)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'SegNet: {name} must be a positive integer, got {value!r}')
        self.n_variants, self.n_classes, self.n_alleles = n_variants, n_classes, n_alleles
        self.pool_size, self.n_blocks, self.l2_lambda = pool_size, n_blocks, float(l2_lambda)
        self.input_pool = input_pool
        self._same = ((width - 1) // 2, width - 1 - (width - 1) // 2)
        self.input_dropout = nn.Dropout(input_dropout_rate)
        self.dropout = nn.Dropout(dropout_rate)

        def conv(c_in, c_out):
            layer = nn.Conv1d(c_in, c_out, width)  # 'same' padding in _conv_block
            _he_normal(layer)
            return layer

        def norm(c):
            return nn.BatchNorm1d(c) if batch_normalization else nn.Identity()

        self.encoder = AlleleEncoding(n_variants, n_classes, encoding, n_alleles)
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        channels = self.encoder.channels
        for i in range(n_blocks):
            f = n_filters * 2 ** i
            self.down.append(nn.ModuleList([conv(channels, f), norm(f), conv(f, f), norm(f)]))
            channels = f
        for i in reversed(range(n_blocks)):
            f = n_filters * 2 ** i
            # the kept pool output of block i (n_filters·2^i channels) joins the features
            self.up.append(nn.ModuleList([conv(f + channels, f), norm(f), conv(f, f), norm(f)]))
            channels = f
        self.output = nn.Conv1d(channels, n_classes, 1)  # Dense(n_classes) at every variant
        nn.init.xavier_uniform_(self.output.weight)  # Keras' glorot_uniform
        nn.init.zeros_(self.output.bias)
        # saved with the weights: a checkpoint says which network and variants it belongs to
        self.register_buffer('layout', torch.tensor([n_variants, n_classes, n_alleles]))
        self.register_buffer('positions', torch.zeros(n_variants, dtype=torch.int64))
        self._activity = None
        self._penalty = 0.0

    def _conv_block(self, layers, x):
        for i in (0, 2):
            x = layers[i](F.pad(x, self._same))  # Keras 'same': the odd pad on the right
            if self.training and self.l2_lambda:
                self._activity = self._activity + x.float().pow(2).sum()
            x = self.dropout(torch.relu(layers[i + 1](x)))
        return x

    def forward(self, x):
        x = self.encoder(x)
        length = x.shape[2]
        multiple = self.pool_size ** self.n_blocks * self.input_pool
        padded = -(-length // multiple) * multiple
        if padded != length:  # missing variants at the end, cropped from the output
            x = F.pad(x, (0, padded - length))
        self._activity = x.new_zeros(())
        x = self.input_dropout(x)
        if self.input_pool > 1:  # sums over input_pool variants
            x = F.avg_pool1d(x, self.input_pool) * self.input_pool
        pools = []
        for layers in self.down:
            x = F.max_pool1d(self._conv_block(layers, x), self.pool_size)
            pools.append(x)
        for i, layers in zip(reversed(range(self.n_blocks)), self.up):
            x = torch.cat([pools[i], x], dim=1)
            x = F.interpolate(x, scale_factor=self.pool_size, mode='nearest')
            x = self._conv_block(layers, x)
        self._penalty = self.l2_lambda * self._activity / x.shape[0]
        x = self.output(x)
        if self.input_pool > 1:
            x = torch.repeat_interleave(x, self.input_pool, dim=2)
        return x[:, :, :length]

    def regularization(self, y_true=None):
        """The L2 activity penalty of the last training forward pass (0 in evaluation)."""
        return self._penalty if self.training else 0.0


def segnet_parameter_count(n_classes, width=16, n_filters=16, pool_size=4, n_blocks=5,
                           batch_normalization=False, encoding='one_hot', n_alleles=2):
    """Trainable parameters of :class:`SegNet`, in closed form (independent of the variants).

    Batch normalization adds 2 trainable parameters per channel (Keras also counts its 2
    non-trainable moving statistics; deepLAI's table has no batch normalization).
    """
    total, channels = 0, n_alleles
    bn = 2 if batch_normalization else 0
    for i in range(n_blocks):
        f = n_filters * 2 ** i
        total += (channels * width + 1) * f + (f * width + 1) * f + 2 * bn * f
        channels = f
    for i in reversed(range(n_blocks)):
        f = n_filters * 2 ** i
        total += ((f + channels) * width + 1) * f + (f * width + 1) * f + 2 * bn * f
        channels = f
    return total + (channels + 1) * n_classes


DEEPLAI_GRID = {'width': [2, 4, 6, 8, 16, 24, 32, 48], 'n_filters': [4, 6, 8, 12, 16, 32, 64],
                'pool_size': [2], 'n_blocks': [2, 3, 4, 5, 6, 7, 8]}


def parameter_table(n_classes=8, grid=None, n_alleles=2):
    """Rows ``(width, n_filters, pool_size, n_blocks, n_params)`` sorted by parameters, as
    deepLAI's ``params.py`` makes ``hparam_to_nparam.tsv`` (8 classes, pool 2)."""
    grid = dict(DEEPLAI_GRID, **(grid or {}))
    rows = [(w, f, p, b, segnet_parameter_count(n_classes, w, f, p, b, n_alleles=n_alleles))
            for w, f, p, b in itertools.product(grid['width'], grid['n_filters'],
                                                grid['pool_size'], grid['n_blocks'])]
    return sorted(rows, key=lambda row: row[-1])


def _ints(text):
    return [int(v) for v in text.split(',') if v.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m models.segnet',
        description="deepLAI's hparam_to_nparam.tsv: SegNet hyperparameters -> number of "
                    "parameters, sorted by parameters (tab-separated, to stdout or --out)")
    parser.add_argument('--n-classes', type=int, default=8, help='ancestries (default: 8)')
    for key, values in DEEPLAI_GRID.items():
        parser.add_argument('--' + key.replace('_', '-'), type=_ints, default=values,
                            metavar='LIST', help=f'comma-separated (default: '
                                                 f'{",".join(map(str, values))})')
    parser.add_argument('-o', '--out', help='write the table here instead of stdout')
    args = parser.parse_args(argv)
    grid = {key: getattr(args, key) for key in DEEPLAI_GRID}
    lines = ['width\tn_filter\tmaxpool\tdepth\tn_par']
    lines += ['\t'.join(map(str, row)) for row in parameter_table(args.n_classes, grid)]
    text = '\n'.join(lines) + '\n'
    if args.out:
        atomic_write(args.out, lambda f: f.write(text))
    else:
        sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())


__all__ = ['SegNet', 'SEGNET_DEFAULTS', 'segnet_parameter_count', 'parameter_table']
