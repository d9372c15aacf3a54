"""dlutil export: the best model as a folder that loads with torch alone and predicts as -p does."""
import json
import subprocess
import sys

import numpy as np

from conftest import write_def

MULTILABEL_DEF = '''
import os
from torch import nn, optim
from base_model import MultiLabelModel
from batch_generator import H5pyBatchGenerator

CLASS_NAMES = ['motif']

def get_train_generator(data_dir, batch_size):
    return H5pyBatchGenerator(os.path.join(data_dir, 'train.h5'), batch_size, shuffle=True)

def get_val_generator(data_dir):
    return H5pyBatchGenerator(os.path.join(data_dir, 'valid.h5'))

def get_pred_generator(pred_path):
    return H5pyBatchGenerator(pred_path)

class Model(MultiLabelModel):
    strand_average = True
    def init_model(self):
        network = nn.Sequential(nn.Conv2d(4, 4, (1, 6)), nn.ReLU(), nn.MaxPool2d((1, 35)),
                                nn.Flatten(), nn.Linear(4, 1))
        super().init_model(network, optim.Adam(network.parameters(), lr=0.01))

def get_config():
    return {}
'''

# the exported folders are loaded with torch and numpy alone: dlutil and the facades cannot be
# imported there, and the check says so
LOAD = '''
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('dlutil', 'base_model', 'batch_generator', 'models',
                                  'constraints'):
            raise ImportError(f'{name} must not be needed')
sys.meta_path.insert(0, Refuse())
import numpy as np, torch
for folder in sys.argv[1:]:
    model = torch.export.load(folder + '/model.pt2').module()
    with torch.no_grad():
        np.save(folder + '/exported.npy', model(torch.from_numpy(np.load(folder + '/x.npy'))).numpy())
print(sorted(m for m in sys.modules if m.split('.')[0] in ('dlutil', 'base_model')))
'''


def test_exported_models_predict_as_p_in_a_bare_interpreter(cli, classifier_def, h5_data,
                                                            tmp_path):
    import h5py
    multilabel = write_def(tmp_path, MULTILABEL_DEF, 'multilabel_def.py')
    folders = []
    for definition, name in ((classifier_def, 'classifier'), (multilabel, 'multilabel')):
        result, folder = tmp_path / f'{name}_result', tmp_path / f'{name}_model'
        code, err = cli('-f', definition, '-d', h5_data, '-r', result, '--config',
                        json.dumps({'filters': 4, 'lr': 0.01} if name == 'classifier' else {}),
                        '--epoch', 1, '--threads', 1, '-p', 'test_pred_a.h5')
        assert code == 0, err
        code, err = cli('export', result, '-o', folder)
        assert code == 0, err
        with h5py.File(h5_data / 'test_pred_a.h5') as f:
            np.save(folder / 'x.npy', f['data'][:].astype(np.float32))
        folders.append((folder, result / 'predictions' / 'test_pred_a.h5.npy'))
    done = subprocess.run([sys.executable, '-I', '-c', LOAD, *(str(f) for f, _ in folders)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]'
    for folder, predicted in folders:
        exported, expected = np.load(folder / 'exported.npy'), np.load(predicted)
        assert exported.shape == expected.shape == (30, 2 if 'classifier' in folder.name else 1)
        np.testing.assert_allclose(exported, expected, rtol=0, atol=1e-6)
    described = json.loads((folders[1][0] / 'model.json').read_text())
    assert described['inputs'] == {'shape': ['batch', 4, 1, 40], 'dtype': 'float32',
                                   'alphabet': 'ACGT', 'window_length': 40,
                                   'layout': described['inputs']['layout']}
    assert described['outputs']['activation'] == 'sigmoid'
    assert described['outputs']['names'] == ['motif'] and described['outputs']['strand_average']
    assert described['training']['best']['trial'] == 't0000'
    assert 'torch.export.load' in (folders[0][0] / 'README.md').read_text()
    # an occupied folder is refused
    code, err = cli('export', tmp_path / 'classifier_result', '-o', folders[0][0])
    assert code == 1 and 'holds files' in err, err
