"""The run config lives in ``protocol.config`` (shared with the ClientApp); re-exported here.

``parse_config`` here is ``tasks.registry.parse_run_config``: it checks the task
name against the registered tasks. This module keeps older imports working.
"""

from protocol.config import (
    DERIVE,
    INPUT_SCALINGS,
    KNOWN_PARTITIONS,
    SCHEMA,
    ConfigError,
    ExperimentConfig,
)
from tasks.registry import parse_run_config as parse_config

__all__ = [
    "DERIVE",
    "INPUT_SCALINGS",
    "KNOWN_PARTITIONS",
    "SCHEMA",
    "ConfigError",
    "ExperimentConfig",
    "parse_config",
]
