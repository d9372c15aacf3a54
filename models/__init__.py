"""The model zoo by the name a def.py uses: ``from models.basset import Basset``.

Facades: each ``models/<name>.py`` re-exports :mod:`dlutil.models.<name>`, where the code lives, so
``models.basset.Basset is dlutil.models.basset.Basset``. Installed by the wheel beside ``dlutil``.
"""
