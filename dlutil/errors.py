"""Every error class of the tool, in one leaf module that imports nothing of ours.

Which errors stop a search and which fail one configuration is decided here, once:

    DataShapeError            the data does not fit: the data, not one configuration, is wrong
    ├── LabelShapeError       the labels do not fit the network's output
    ├── InputShapeError       the inputs do not fit the network
    ├── DataLayoutError       the model cannot learn the layout (shape, classes) of its data
    └── OneShotGeneratorError a generator exhausted after one epoch
    SimulationError           a simulator raised, hung, returned the wrong shapes, or died
    CorruptFileError          a results file exists but cannot be read
    StorageError (OSError)    a file could not be written: disk full, read-only, permissions
    WeightInitError           ``--init-from`` weights that do not fit the network

:data:`STOPS_SEARCH` (these, ``OSError`` and ``MemoryError``) stop a search at once: a fault of the
data or the environment fails every configuration alike. Any other exception raised while
training is one configuration's failure (a failed trial).

Beside them, errors a command reports before any work: :class:`DefinitionError` (the def.py),
:class:`SearchSettingsError` (the results directory), :class:`ResultInUseError` (another run
holds the results directory), :class:`InputError` (an input file), :class:`UnsafeFileError` (a
file that would run code when loaded); and after one, :class:`SearchFailedError` (every trial of
a search failed).
"""


class DataShapeError(ValueError):
    """The data does not fit the network: the data, not one configuration, is wrong.

    The search stops at once on it instead of failing every trial.
    """


class LabelShapeError(DataShapeError):
    """The labels do not fit the network's output."""


class InputShapeError(DataShapeError):
    """The inputs do not fit the network; the data, not one configuration, is wrong."""


class DataLayoutError(DataShapeError):
    """The model cannot learn the input shape or classes of its data: not one configuration's
    fault, so the search stops instead of failing every trial."""


class OneShotGeneratorError(DataShapeError):
    """A generator that is its own iterator: exhausted after one epoch."""


class SimulationError(ValueError):
    """The simulator raised, returned something else than ``(data, label)`` of the declared
    shapes, hung, or its process died; the message names the simulator and the example."""


class StorageError(OSError):
    """A file could not be written: the disk is full, read-only or failing, or permission is
    lacking. Not a configuration's fault: the search stops, and the same command continues it."""


class CorruptFileError(ValueError):
    """A results file exists but cannot be read (truncated, edited, or not ours)."""


class UnsafeFileError(CorruptFileError):
    """A checkpoint or network file that holds more than tensors: loading it would run code."""


class DefinitionError(ValueError):
    """The def.py breaks the contract, or one of its functions failed."""


class SearchSettingsError(ValueError):
    """The results directory holds a search made with other settings or another def.py."""


class SearchFailedError(ValueError):
    """Every trial of a search failed or diverged: no configuration gave a result."""


class ResultInUseError(OSError):
    """Another process holds the results directory's lock: the message names the directory and
    that process."""


class InputError(ValueError):
    """Bad input or arguments; the message names the file and the line or record."""


class WeightInitError(ValueError):
    """``--init-from``: the checkpoint's tensors do not fit the network (missing, unexpected or
    differently shaped keys), or a layer prefix names nothing."""


#: raised while training, these stop the whole search; anything else fails one trial
STOPS_SEARCH = (DataShapeError, SimulationError, CorruptFileError, OSError, MemoryError,
                WeightInitError)
