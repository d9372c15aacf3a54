"""--config (one configuration, as a search of one) and --init-from / --init-layers / --freeze."""
import json

import pytest
import torch
from torch import nn

from dlutil.errors import WeightInitError
from dlutil.search import results
from dlutil.training.initial_weights import FREEZE_LOADED, WeightInit

FLAGS = ('--threads', '1', '--batch-size', '32')


def history(root, trial='t0000'):
    return results.ResultStore(root).read_history(trial)


def network(root, trial='t0000', name='best.pt'):
    return torch.load(f'{root}/trials/{trial}/{name}', weights_only=True)['model']['network']


def test_config_trains_like_the_same_trial_of_a_search(cli, classifier_def, h5_data, tmp_path):
    search, single = tmp_path / 'search', tmp_path / 'single'
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', search, '-y', '--epoch', 3,
                    '--seed', 11, *FLAGS)
    assert code == 0, err
    config = json.loads((search / 'trials' / 't0000' / 'config.json').read_text())
    epochs = len(history(search))
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', single, '--config',
                    json.dumps(config), '--epoch', epochs, '--seed', 11, '-e', *FLAGS)
    assert code == 0, err
    # the same losses, epoch by epoch, and the same weights
    columns = ('train_loss', 'val_loss', 'hyperband_reward')
    assert [[row[c] for c in columns] for row in history(single)] == \
        [[row[c] for c in columns] for row in history(search)]
    ours, theirs = network(single), network(search)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
    # and it reads like a search of one: -e used it, search.csv has its one row
    best = json.loads((single / 'best.json').read_text())
    assert best['trial'] == 't0000' and best['config'] == config
    assert list(results.ResultStore(single).read_search()) == [('t0000', epochs)]
    assert set(json.loads((single / 'test_result.json').read_text())) >= {'accuracy', 'loss'}
    recorded = json.loads((single / 'search.json').read_text())
    assert recorded['config'] == config and recorded['seed'] == 11
    # re-running the same command continues (nothing to train); -y there is refused
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', single, '--config',
                    json.dumps(config), '--epoch', epochs, *FLAGS)
    assert code == 0 and 'done before' in err, err
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', single, '-y', *FLAGS)
    assert code == 1 and 'holds one configuration trained with --config' in err, err
    # --init-from a search directory: its best trial; --freeze alone keeps every loaded weight
    best = json.loads((search / 'best.json').read_text())
    frozen = tmp_path / 'frozen'
    run = ('-f', classifier_def, '-d', h5_data, '-r', frozen, '--config',
           json.dumps(best['config']), '--epoch', 1, '--init-from', search, '--freeze', *FLAGS)
    code, err = cli(*run)
    assert code == 1 and 'every parameter of the network would be frozen' in err, err
    code, err = cli(*run, '--init-layers', 'classifier')
    assert code == 0, err
    start, after = network(search, best['trial']), network(frozen)
    assert torch.equal(after['classifier.0.weight'], start['classifier.0.weight'])
    assert not torch.equal(after['features.0.weight'], start['features.0.weight'])


def test_config_keys_are_checked_against_the_space(cli, classifier_def, h5_data, tmp_path):
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '--config',
                    '{"filters": 4, "lr": "fast", "depth": 2}', *FLAGS)
    assert code == 1
    assert 'unknown depth' in err and "lr='fast' is text" in err and 'a number' in err, err
    code, err = cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '--config',
                    '{"lr": 0.01}', *FLAGS)
    assert code == 1 and 'missing filters' in err, err
    assert not (tmp_path / 'r' / 'trials').exists()  # refused before any training
    with pytest.raises(SystemExit):
        cli('-f', classifier_def, '-d', h5_data, '-r', tmp_path / 'r', '--config', '{}', '-y')


FREEZE_DEF = '''
import os
from torch import nn, optim
from base_model import ClassificationModel, ConvClassificationNetwork
from batch_generator import H5pyBatchGenerator

def get_train_generator(data_dir, batch_size):
    return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)

def get_val_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5'))

class Model(ClassificationModel):
    def init_model(self):
        network = ConvClassificationNetwork(
            features=nn.Sequential(nn.Conv2d(4, self.config['filters'], (1, 6)), nn.ReLU(),
                                   nn.MaxPool2d((1, 35))),
            classifier=nn.Sequential(nn.Linear(self.config['filters'], 2)))
        super().init_model(network, optim.Adam(network.parameters(), lr=0.05))

def get_config():
    return {'filters': 4}
'''


def test_init_layers_and_freeze_from_the_command_line(cli, h5_data, tmp_path):
    definition = tmp_path / 'freeze_def.py'
    definition.write_text(FREEZE_DEF)
    base, tuned = tmp_path / 'base', tmp_path / 'tuned'
    run = ('-f', definition, '-d', h5_data, *FLAGS)
    assert cli(*run, '-r', base, '--config', '{"filters": 4}', '--epoch', 1, '--seed', 1)[0] == 0
    code, err = cli(*run, '-r', tuned, '--config', '{"filters": 4}', '--epoch', 2, '--seed', 2,
                    '--init-from', base / 'trials/t0000/best.pt', '--init-layers', 'features',
                    '--freeze', 'features', '--keep-checkpoints', 'all')
    assert code == 0, err
    start, end = network(base), network(tuned, name='last.pt')
    assert torch.equal(end['features.0.weight'], start['features.0.weight'])
    assert torch.equal(end['features.0.bias'], start['features.0.bias'])
    assert not torch.equal(end['classifier.0.weight'], start['classifier.0.weight'])
    # another architecture: one error naming the keys, before any trial
    code, err = cli(*run, '-r', tmp_path / 'wide', '--config', '{"filters": 8}', '--epoch', 1,
                    '--init-from', base)
    assert code == 1 and 'shape mismatch: classifier.0.weight (checkpoint [2, 4], network ' \
        '[2, 8])' in err, err
    assert 'features.0.weight' in err and 'Traceback' not in err, err
    assert len([line for line in err.splitlines() if line.startswith('error')]) == 1, err
    assert not (tmp_path / 'wide' / 'trials' / 't0000' / 'history.csv').exists()
    with pytest.raises(SystemExit):
        cli(*run, '-r', tmp_path / 'x', '--config', '{"filters": 4}', '--freeze')


class Small(nn.Module):
    def __init__(self, width=3, head=True):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width))
        if head:
            self.head = nn.Linear(width, 1)


def saved(tmp_path, module, name='w.pt'):
    path = tmp_path / name
    torch.save({'model': {'network': module.state_dict()}}, path)
    return str(path)


def test_matching_keys_load_every_tensor(tmp_path):
    source, target = Small(), Small()
    with torch.no_grad():
        source.body[1].running_mean.fill_(0.5)
    loaded, frozen = WeightInit(saved(tmp_path, source)).apply(target)
    assert sorted(loaded) == sorted(source.state_dict()) and not frozen
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())
    # a plain state_dict (BaseModel.save_weights) loads the same
    plain = tmp_path / 'plain.pt'
    torch.save(source.state_dict(), plain)
    assert sorted(WeightInit(str(plain)).apply(Small())[0]) == sorted(loaded)


def test_missing_unexpected_and_shapes_are_one_error(tmp_path):
    headless = saved(tmp_path, Small(head=False), 'headless.pt')
    with pytest.raises(WeightInitError, match=r'missing \(in the network, not in the '
                                              r'checkpoint\): head\.bias, head\.weight'):
        WeightInit(headless).apply(Small())
    with pytest.raises(WeightInitError, match=r'unexpected \(in the checkpoint, not in the '
                                              r'network\): head\.bias, head\.weight'):
        WeightInit(saved(tmp_path, Small())).apply(Small(head=False))
    with pytest.raises(WeightInitError) as error:
        WeightInit(saved(tmp_path, Small(width=5), 'wide.pt')).apply(Small())
    assert 'body.0.weight (checkpoint [5, 4], network [3, 4])' in str(error.value)
    assert 'and 1 more' in str(error.value)  # 7 tensors differ; 6 are named
    # --init-layers: only the body, which fits; --init-partial loads what fits
    target = Small()
    head_before = target.head.weight.detach().clone()
    loaded, _ = WeightInit(headless, layers=('body',)).apply(target)
    assert all(key.startswith('body.') for key in loaded) and len(loaded) == 7
    assert torch.equal(target.head.weight, head_before)
    assert len(WeightInit(headless, partial=True).apply(Small())[0]) == 7
    with pytest.raises(WeightInitError, match='--init-layers tail: no such module'):
        WeightInit(headless, layers=('tail',)).apply(Small())


def test_frozen_parameters_stay_and_the_others_learn(tmp_path):
    source, target = Small(), Small()
    loaded, frozen = WeightInit(saved(tmp_path, source), freeze=('body.0',)).apply(target)
    assert frozen == {'body.0.weight', 'body.0.bias'}
    optimizer = torch.optim.Adam(target.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        target.head(target.body(torch.randn(8, 4))).sum().backward()
        optimizer.step()
    assert torch.equal(target.body[0].weight, source.body[0].weight)
    assert not torch.equal(target.body[1].weight, source.body[1].weight)
    assert not torch.equal(target.head.weight, source.head.weight)
    # FREEZE_LOADED: every loaded parameter, here the body alone
    _, frozen = WeightInit(saved(tmp_path, source), layers=('body',),
                           freeze=FREEZE_LOADED).apply(Small())
    assert frozen == {'body.0.weight', 'body.0.bias', 'body.1.weight', 'body.1.bias'}
