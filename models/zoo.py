"""What the predefined genomics architectures share: length arithmetic, input checks, ready models.

A facade of :mod:`dlutil.models.zoo` (the same objects).
"""
from dlutil.models.zoo import (InputShapeError, conv_length, pool_length, minimum_seq_len,
                               check_seq_len, check_input, OneHotInput, UnbuiltNetwork, OPTIMIZERS,
                               Training,
                               TRAINING_KEYS, ZooModel, TASKS, READY_DOC, ready_models)
