"""Where the agent's settings come from: a TOML file and ``NX_AGENT_`` environment variables.

Pure functions over already-read text and mappings; ``firmware_agent.config``
validates what they return with the settings model. The rules are the ones
pydantic-settings applies, which the backend and the console use (and which
the agent used until its import cost was measured; docs/decisions.md):

- a variable is ``<prefix><FIELD NAME>``, matched without regard to case;
- a structured setting (a table or a list) is JSON in the environment;
- a table from the environment is merged key by key over the file's table;
- the environment wins over the file, and explicit values win over both.

Unlike pydantic-settings, a variable with the prefix that names no setting is
an error, not ignored: ``NX_AGENT_MQTT_PASWORD`` must not silently leave the
agent without its password.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection, Mapping
from typing import Any


class ConfigError(ValueError):
    """The configuration cannot be read: a missing or malformed file or variable."""


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Return the settings table of a TOML document; ``source`` names it in errors."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc


def values_from_environment(
    environ: Mapping[str, str],
    prefix: str,
    fields: Collection[str],
    structured: Collection[str],
) -> dict[str, Any]:
    """Return the settings given by ``prefix`` variables of ``environ``, by field name.

    ``fields`` are the settings' names, ``structured`` those of them whose
    value is JSON (tables, lists). Raises ConfigError naming the variable for
    an unknown setting or a structured value that is not JSON.
    """
    wanted = prefix.upper()
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.upper().startswith(wanted):
            continue
        field = name[len(wanted):].lower()
        if field not in fields:
            raise ConfigError(f"{name} names no setting (known: "
                              f"{', '.join(prefix + f.upper() for f in sorted(fields))})")
        if field in structured:
            try:
                values[field] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name} ({field}) must be JSON: {exc}") from exc
        else:
            values[field] = raw
    return values


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` laid over it; tables are merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged
