"""deepLAI's SegNet for local ancestry inference (Aguirre et al., github.com/maguirre1/deepLAI).

A facade of :mod:`dlutil.models.segnet` (the same objects).
"""
from dlutil.models.segnet import (SEGNET_DEFAULTS, SegNet, segnet_parameter_count, DEEPLAI_GRID,
                                  parameter_table, main)

if __name__ == '__main__':
    main()
