"""Errors a user can cause, raised by the library and turned into messages by its drivers."""


class NMTError(Exception):
    """Base class of every error the library raises on purpose."""


class ModelLoadError(NMTError):
    """A model directory is missing, incomplete, corrupted or of an unknown format."""


class InputError(NMTError):
    """Input text or files that cannot be used as given."""
