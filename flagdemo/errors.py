"""Typed errors with messages meant for the person at the keyboard.

Every failure the engine expects (bad input, a model that cannot load, a layer out of range) is one of these, so
the app can show the message as it is and tests can assert on the type.
"""

from __future__ import annotations


class FlagDemoError(Exception):
    """Base class: the message is a complete sentence a user can act on."""


class InvalidInputError(FlagDemoError, ValueError):
    """An argument has the wrong type, shape or value."""


class EmptyInputError(InvalidInputError):
    """A list of texts or pairs was empty."""


class UnknownModelError(FlagDemoError, ValueError):
    """A model name matches no catalog entry, local folder or reachable hub id."""


class MissingModelFilesError(FlagDemoError, FileNotFoundError):
    """A model folder lacks files the model class needs (weights, heads, tokenizer)."""


class RemoteCodeNotAllowedError(FlagDemoError, PermissionError):
    """The model needs trust_remote_code and it was not both allowed by the catalog and opted into."""


class ModelLoadError(FlagDemoError, RuntimeError):
    """Loading failed for another reason (corrupt files, unsupported architecture)."""


class LayerOutOfRangeError(InvalidInputError):
    """A requested layer is outside the model's valid range."""


class ResourceLimitError(FlagDemoError, RuntimeError):
    """The work does not fit in memory even at the smallest batch, or exceeds a configured limit."""
