"""mtl: a multi-task sentence transformer with freezing as a first-class idea."""

__version__ = "0.1.0"

from .config import ModelConfig, TrainConfig  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, MTLError  # noqa: E402

__all__ = ["ModelConfig", "TrainConfig", "MTLError", "DataError", "CheckpointError", "ConfigError"]
