"""Errors that carry a one-line message meant for the user, not a traceback."""


class AetoolError(Exception):
    """A problem the user can fix; its message names the file, column or value and what to do."""


class DataError(AetoolError, ValueError):
    """Input data that aetool cannot use as given."""


class BundleError(AetoolError):
    """A saved model directory that is missing, damaged or unsafe."""


class PluginError(AetoolError):
    """A plugin that cannot be loaded or conflicts with another."""


class TrainingError(AetoolError):
    """Training that cannot go on (for example, a loss that became NaN)."""


class SettingError(AetoolError, ValueError):
    """A setting (``--set`` value or estimator parameter) that no model or trainer can take."""


class OutputError(AetoolError):
    """An output path aetool will not write: it is the input, read-only, or someone else's."""
