"""The run config now lives in ``protocol.config`` (shared with the ClientApp); re-exported here.

New code imports ``protocol.config``; this module keeps older imports working.
"""

from protocol.config import (
    DERIVE,
    INPUT_SCALINGS,
    KNOWN_PARTITIONS,
    SCHEMA,
    ConfigError,
    ExperimentConfig,
    parse_config,
)

__all__ = [
    "DERIVE",
    "INPUT_SCALINGS",
    "KNOWN_PARTITIONS",
    "SCHEMA",
    "ConfigError",
    "ExperimentConfig",
    "parse_config",
]
