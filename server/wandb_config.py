"""The ``wandb.*`` run-config keys, parsed at the edge into ``WandbConfig``.

``parse_config`` leaves dotted keys to their add-ons; these are the W&B
tracker's. Credentials never come from the run config (it is stored with the
run and travels to every node): W&B reads ``WANDB_API_KEY`` from the
ServerApp's environment, and a ``wandb.api-key`` key is refused.

``wandb.mode``:

- ``auto`` (default): ``WANDB_MODE`` from the environment if set, else
  ``online`` when ``WANDB_API_KEY`` (or ``WANDB_IDENTITY_TOKEN_FILE``) is set,
  else ``offline``. A key stored by ``wandb login`` is not looked at: set
  ``online`` explicitly to use it.
- ``online`` / ``offline`` / ``disabled``: as named, whatever the environment says.

Group, job type and tags left empty are derived from the experiment so that a
sweep of presets reads as one table: group = task and partition (a table of
the paper), job type = C, E, B (a row), tags = both plus eta.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.config import ConfigError, ExperimentConfig, did_you_mean

PREFIX = "wandb."
MODES = ("auto", "online", "offline", "disabled")
# What WANDB_MODE may say, mapped to our modes (wandb also accepts the old names).
_ENV_MODES = {
    "online": "online",
    "run": "online",
    "offline": "offline",
    "dryrun": "offline",
    "disabled": "disabled",
}
# The environment variables through which wandb finds credentials.
CREDENTIAL_ENV = ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE")
_CREDENTIAL_KEYS = ("api-key", "api_key", "key", "apikey", "token")
_FORBIDDEN_NAME_CHARS = set("/\\#?%:")
MAX_TAG_LENGTH = 64
MAX_GROUP_LENGTH = 128


@dataclass(frozen=True, kw_only=True)
class WandbConfig:
    """How (and whether) the run is tracked in Weights & Biases."""

    mode: str = "auto"
    project: str = "fedavg"
    entity: str = ""  # empty = the API key's default entity
    group: str = ""  # empty = derived from the experiment
    job_type: str = ""  # empty = derived
    tags: tuple[str, ...] = ()  # added to the derived tags
    name: str = ""  # empty = the results directory's name
    log_model: bool = True  # the final global model as an artifact
    init_timeout: float = 60.0  # seconds for wandb.init before giving up

    def resolved_mode(self, environ: Mapping[str, str] | None = None) -> str:
        """``online``, ``offline`` or ``disabled``: what ``auto`` means here and now."""
        if self.mode != "auto":
            return self.mode
        environ = os.environ if environ is None else environ
        from_env = environ.get("WANDB_MODE", "").strip().lower()
        if from_env in _ENV_MODES:
            return _ENV_MODES[from_env]
        credentials = any(environ.get(name) for name in CREDENTIAL_ENV)
        return "online" if credentials else "offline"

    def run_group(self, config: ExperimentConfig) -> str:
        return self.group or f"{config.task}_{config.partition}"

    def run_job_type(self, config: ExperimentConfig) -> str:
        batch = "inf" if config.batch_size == 0 else str(config.batch_size)
        return self.job_type or f"C{config.fraction_train:g}_E{config.local_epochs}_B{batch}"

    def run_tags(self, config: ExperimentConfig) -> list[str]:
        batch = "inf" if config.batch_size == 0 else str(config.batch_size)
        derived = [
            config.task,
            config.partition,
            f"C={config.fraction_train:g}",
            f"E={config.local_epochs}",
            f"B={batch}",
            f"lr={config.lr:g}",
        ]
        return derived + [tag for tag in self.tags if tag not in derived]


def _string(key: str, value: object, allowed: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, value, allowed)
    return value.strip()


def _name(key: str, value: object, *, empty_ok: bool, max_length: int = 128) -> str:
    allowed = f"a name of at most {max_length} characters without / \\ # ? % :" + (
        " (empty = derived)" if empty_ok else ""
    )
    text = _string(key, value, allowed)
    if (not text and not empty_ok) or len(text) > max_length:
        raise ConfigError(key, value, allowed)
    if _FORBIDDEN_NAME_CHARS & set(text):
        raise ConfigError(key, value, allowed)
    return text


def parse_wandb_config(run_config: Mapping[str, object]) -> WandbConfig:
    """Parse the ``wandb.*`` keys of ``run_config``; other keys are not looked at."""
    values: dict[str, object] = {}
    for full_key, raw in run_config.items():
        if not full_key.startswith(PREFIX):
            continue
        key = full_key[len(PREFIX) :]
        if key in _CREDENTIAL_KEYS:
            raise ConfigError(
                full_key,
                "<hidden>",
                "no credentials in the run config: set WANDB_API_KEY in the ServerApp's "
                "environment (the SuperLink's, in simulation)",
            )
        if key == "mode":
            mode = _string(full_key, raw, f"one of {', '.join(MODES)}").lower()
            if mode not in MODES:
                raise ConfigError(full_key, raw, f"one of {', '.join(MODES)}")
            values["mode"] = mode
        elif key == "project":
            values["project"] = _name(full_key, raw, empty_ok=False)
        elif key in ("entity", "name"):
            values[key] = _name(full_key, raw, empty_ok=True)
        elif key in ("group", "job-type"):
            values[key.replace("-", "_")] = _name(
                full_key, raw, empty_ok=True, max_length=MAX_GROUP_LENGTH
            )
        elif key == "tags":
            allowed = f"comma-separated tags of at most {MAX_TAG_LENGTH} characters each"
            tags = [tag.strip() for tag in _string(full_key, raw, allowed).split(",")]
            tags = [tag for tag in tags if tag]
            if any(len(tag) > MAX_TAG_LENGTH for tag in tags):
                raise ConfigError(full_key, raw, allowed)
            values["tags"] = tuple(dict.fromkeys(tags))
        elif key == "log-model":
            if not isinstance(raw, bool):
                raise ConfigError(full_key, raw, "true or false")
            values["log_model"] = raw
        elif key == "init-timeout":
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
                raise ConfigError(full_key, raw, "a number of seconds > 0")
            values["init_timeout"] = float(raw)
        else:
            known = "mode, project, entity, group, job-type, tags, name, log-model, init-timeout"
            hint = did_you_mean(full_key, [PREFIX + k for k in known.split(", ")])
            raise ConfigError(full_key, raw, f"a known key: wandb.{{{known}}} ({hint})")
    return WandbConfig(**values)  # type: ignore[arg-type]
