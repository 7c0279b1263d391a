"""User-facing errors: one clear message, never a traceback."""


class MTLError(Exception):
    """Base class for errors a user can fix (bad data, bad options, bad checkpoint)."""


class DataError(MTLError):
    """A data file is missing, malformed or inconsistent."""


class CheckpointError(MTLError):
    """A checkpoint is missing, corrupted or does not match its base model."""


class ConfigError(MTLError, ValueError):
    """An option is out of range or unknown."""
