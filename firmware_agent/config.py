"""Agent settings: a TOML file plus ``NX_AGENT_`` environment variables (which win).

The settings are a pydantic model, validated as the backend's are; reading the
two sources is ``firmware_agent.config_sources``. The agent does not use
pydantic-settings: importing it costs 4.8 MB (asyncio, argparse, subprocess,
python-dotenv, importlib.metadata and every cloud provider's source come with
it), and leaving it out took 2.6 MB off the agent's peak, which brought it
under the 40 MB budget; the two sources the agent reads take a few lines
(docs/decisions.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from firmware_agent.config_sources import ConfigError, merge, parse_toml, values_from_environment
from firmware_agent.wire.topics import MACHINE_ID_PATTERN

if TYPE_CHECKING:
    from firmware_agent.nxlink.link import LinkTiming

__all__ = ["ENV_PREFIX", "AgentSettings", "ConfigError"]

ENV_PREFIX = "NX_AGENT_"

DEX_SELECTION_PATTERN = r"^[!-)+-~]{1,20}$"
"""A DEX selection id (PA1 field 01): 1-20 printable ASCII characters, no space or ``*``."""
_DEX_SELECTION_RE = re.compile(DEX_SELECTION_PATTERN)
Slot = Annotated[int, Field(ge=1, le=99)]


class AgentSettings(BaseModel):
    """Everything one agent needs; the defaults suit a Pi with a USB serial adapter.

    Built directly, it takes only the values given; ``load`` adds the TOML
    file and the environment, as ``nx-agent run`` does.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    machine_id: str = Field(pattern=MACHINE_ID_PATTERN)
    driver: Literal["nxlink", "dex"] = "nxlink"
    serial_port: str = "/dev/ttyUSB0"
    """A device path or a pyserial URL (``loop://``, ``socket://host:port``)."""
    baudrate: int = Field(default=115200, gt=0)
    dex_poll_s: float = Field(default=300.0, gt=0)
    dex_counters_since_reset: bool = False
    """Count DEX vends from PA2/PA4 field 03 (machines such as Animo keep lifetime counts there)."""
    dex_slot_map: dict[str, Slot] = Field(default_factory=dict)
    """DEX selection id -> slot, for selections whose id is not already their slot number.

    A selection that is not in the map feeds the slot of its own number if that
    is 1..99 (``"7"`` -> 7); any other selection's vends are counted as unmapped
    and not published. In TOML a table (``[dex_slot_map]`` then ``A1 = 1``), in
    the environment JSON (``NX_AGENT_DEX_SLOT_MAP='{"A1": 1}'``).
    """

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, gt=0, lt=65536)
    mqtt_username: str | None = None
    """Defaults to the machine id (the broker's ACL depends on it)."""
    mqtt_password: SecretStr = SecretStr("")
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=60, ge=1)

    data_dir: Path = Path("/var/lib/nx-agent")
    heartbeat_s: float = Field(default=60.0, gt=0)
    max_inflight: int = Field(default=100, ge=1, le=1000)
    outbox_max_rows: int = Field(default=100_000, ge=100)

    read_timeout_s: float = Field(default=0.2, gt=0)
    """Longest one read of the controller waits; also the heartbeat's resolution."""
    reopen_s: float = Field(default=5.0, gt=0)
    """Pause before reopening a serial port that failed."""
    command_timeout_s: float = Field(default=10.0, gt=0)
    link_ack_timeout_s: float = Field(default=0.5, gt=0)
    link_max_tries: int = Field(default=5, ge=1)
    link_down_retry_s: float = Field(default=2.0, gt=0)
    link_window: int = Field(default=32, ge=1, le=256)

    @field_validator("dex_slot_map")
    @classmethod
    def _check_selection_ids(cls, value: dict[str, int]) -> dict[str, int]:
        bad = sorted(key for key in value if not _DEX_SELECTION_RE.fullmatch(key))
        if bad:
            raise ValueError(
                f"DEX selection ids are 1-20 printable characters without spaces or '*': {bad!r}")
        return value

    @field_validator("mqtt_username")
    @classmethod
    def _no_empty_username(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _check_tls(self) -> AgentSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def username(self) -> str:
        """The MQTT username: the configured one, else the machine id."""
        return self.mqtt_username or self.machine_id

    @property
    def link_timing(self) -> LinkTiming:
        """The nxlink timings as the link state machine takes them."""
        # Imported here so that an agent on the DEX driver never loads the nxlink stack.
        from firmware_agent.nxlink.link import LinkTiming

        return LinkTiming(
            ack_timeout_s=self.link_ack_timeout_s,
            max_tries=self.link_max_tries,
            link_down_retry_s=self.link_down_retry_s,
            window=self.link_window,
        )

    @classmethod
    def load(cls, config_file: Path | str | None = None, *,
             environ: Mapping[str, str] | None = None, **values: Any) -> AgentSettings:
        """Build settings from, by priority: ``values``, ``NX_AGENT_`` variables, the file.

        ``environ`` defaults to the process environment. Raises ConfigError for
        a file or variable that cannot be read and pydantic's ValidationError
        for a value that is not valid.
        """
        from_file: dict[str, Any] = {}
        if config_file is not None:
            path = Path(config_file)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path} is not UTF-8 text: {exc}") from exc
            from_file = parse_toml(text, str(path))
        from_environment = values_from_environment(
            os.environ if environ is None else environ, ENV_PREFIX,
            fields=cls.model_fields, structured=_structured_fields(cls))
        return cls.model_validate(merge(merge(from_file, from_environment), values))


def _structured_fields(model: type[BaseModel]) -> frozenset[str]:
    """Return the fields of ``model`` whose values are tables or lists (JSON in the environment)."""
    def structured(annotation: Any) -> bool:
        origin = get_origin(annotation)
        if origin in (Union, UnionType):
            return any(structured(arg) for arg in get_args(annotation) if arg is not type(None))
        if origin is Annotated:
            return structured(get_args(annotation)[0])
        return (origin in (dict, list, tuple, set, frozenset)
                or (isinstance(annotation, type) and issubclass(annotation, BaseModel)))

    return frozenset(name for name, field in model.model_fields.items()
                     if structured(field.annotation))
