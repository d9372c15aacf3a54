"""dlutil: Hyperband search, training, evaluation and prediction for PyTorch models of DNA, RNA
and genotypes, driven by one ``def.py``.

The package is the machinery behind ``main.py``; a ``def.py`` imports the contract modules at
the top level (``base_model``, ``batch_generator``, ``constraints``) and the model zoo as
``dlutil.models`` (or ``models`` in a checkout).

    search/      the Hyperband plan, sampling, trials, executors, the results store, the report
    sequences/   FASTA/BED/genome readers, the one-hot encoder, pysster-style FASTA data
    prepare/     the data-preparation command: FASTA/BED to chunked HDF5
    interpret/   first-layer kernels, motifs, optimized inputs, the classification report
    training/    pieces of the training loop and a network summary
"""
__version__ = '0.2.0'
