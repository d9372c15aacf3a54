"""Install the tool: its modules, the predefined models, and the ``dlutil`` console commands."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

setup(
    name='dlutil',
    version='0.1.0',
    description='Hyperband search, training, evaluation and prediction for PyTorch models on '
                'DNA, RNA and genotype data, driven by one def.py file',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    # every top-level module is part of the tool (def.py files import them by name)
    py_modules=sorted(name[:-3] for name in os.listdir(HERE)
                      if name.endswith('.py') and name != 'setup.py'),
    packages=find_packages(include=['models', 'models.*']),
    install_requires=[
        'torch>=2.0',
        'numpy>=1.23',
        'h5py>=3.0',
        'scikit-learn>=1.1',
        'hyperopt>=0.2.7',
        'tqdm>=4.60',
        'matplotlib>=3.5',
        'pyfaidx>=0.7',
        'logomaker>=0.8',
        'scipy>=1.8',
    ],
    extras_require={'test': ['pytest>=7']},
    entry_points={'console_scripts': ['dlutil=main:main', 'dlutil-prepare=prepare:main']},
)
