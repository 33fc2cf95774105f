"""The toolkit's exception types: each message names the file, line, example or key at fault and what to do."""


class MtlNlpError(Exception):
    """Base class of every error the toolkit raises on bad input."""


class RecipeError(MtlNlpError, ValueError):
    """A recipe key is unknown, missing or has a value of the wrong type or range."""


class DataError(MtlNlpError, ValueError):
    """A data file or split cannot be used as it is (malformed line, unknown label, empty split, …)."""


class ModelLoadError(MtlNlpError, OSError):
    """A backbone or saved model cannot be found or loaded."""


class TrainingError(MtlNlpError, RuntimeError):
    """Training cannot go on: repeated non-finite losses, or a checkpoint that cannot be resumed."""


class ExportError(MtlNlpError, ValueError):
    """A task cannot be exported as a stock transformers model, or an export or upload folder cannot be written."""


class HubError(MtlNlpError, OSError):
    """The Hugging Face Hub refused or could not be reached for an upload."""


class ModelBuildError(MtlNlpError, ValueError):
    """A task's head cannot be built on this backbone, or would behave differently from its stock model."""


class InputError(MtlNlpError, ValueError):
    """An input to predict on is unusable: an empty text, an empty word, an unknown task, a missing question."""


class SearchError(MtlNlpError, ValueError):
    """A hyper-parameter search cannot start: a bad search space, an unknown objective, an unreachable storage."""
