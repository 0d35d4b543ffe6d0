"""Errors users can act on. Every one prints as a single line in the CLI."""


class EdgesnnError(Exception):
    """Base class: a problem with the user's model, input or environment, not a bug."""


class GraphError(EdgesnnError):
    """An IR graph that is not well formed (shapes, names, cycles)."""


class ModelFileError(EdgesnnError):
    """A model file that cannot be read: missing, truncated, corrupt, foreign or too new."""


class InputError(EdgesnnError):
    """Input data of the wrong shape or with non-finite values."""


class DataError(EdgesnnError):
    """A dataset that cannot be used: missing files, ragged windows, NaN, unknown labels."""


class BackendError(EdgesnnError):
    """An unknown backend, or a backend that cannot run this model."""


class QuantizationError(EdgesnnError):
    """A model that cannot be quantized, or a fixed-point run of a float-only model."""


class MissingExtraError(EdgesnnError):
    """An optional dependency is not installed."""


def require(module: str, extra: str):
    """Import an optional dependency, or fail naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"'{module}' is not installed; install it with: pip install 'edgesnn[{extra}]'"
        ) from exc
