"""Scenario files: what happens to the simulated fleet, and when.

A scenario is a TOML file of timed events (hours of simulated time after the
fleet starts): a dispense surge in some neighbourhoods or city-wide, a heat
wave, machines going dark, a door forced open, jams, a broker outage. This module is pure: it
parses and validates the file and answers "what is the demand multiplier for
this machine now" and "which events begin or end in this step".
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from simulators.fleet_plan import MachineSpec

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario file that cannot be read or does not validate."""


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start_h: float = Field(ge=0)
    duration_h: float = Field(gt=0)
    sites: tuple[str, ...] = ()
    """Neighbourhoods affected; with ``machines`` empty too, the whole fleet."""
    machines: tuple[str, ...] = ()

    @property
    def end_h(self) -> float:
        return self.start_h + self.duration_h

    def applies_to(self, spec: MachineSpec) -> bool:
        """Return whether this event touches ``spec``."""
        if not self.sites and not self.machines:
            return True
        return spec.site in self.sites or spec.machine_id in self.machines

    def active(self, hours: float) -> bool:
        """Return whether the event is under way ``hours`` after the start."""
        return self.start_h <= hours < self.end_h


class Surge(_Event):
    """More people than usual take naloxone: demand times ``multiplier``."""

    kind: Literal["surge"] = "surge"
    multiplier: float = Field(gt=0, le=100)


class HeatWave(_Event):
    """The cabinet reads ``celsius`` for the duration, then back to ``normal_c``."""

    kind: Literal["heat"] = "heat"
    celsius: float = Field(ge=-40, le=80)
    normal_c: float = 20.0


class GoDark(_Event):
    """The machine's Pi loses power or network: its agent stops, then starts again."""

    kind: Literal["dark"] = "dark"


class Tamper(_Event):
    """The service door is forced open for the duration."""

    kind: Literal["tamper"] = "tamper"


class Jams(_Event):
    """The next ``count`` vends at each machine jam."""

    kind: Literal["jam"] = "jam"
    count: int = Field(default=3, ge=1, le=100)


class BrokerOutage(_Event):
    """The MQTT broker is down for the duration (machines keep vending into their outboxes)."""

    kind: Literal["broker"] = "broker"


Event = Annotated[
    Surge | HeatWave | GoDark | Tamper | Jams | BrokerOutage, Field(discriminator="kind")
]


class Scenario(BaseModel):
    """A named list of timed events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    events: tuple[Event, ...] = Field(default=(), alias="event")

    def multiplier(self, spec: MachineSpec, hours: float) -> float:
        """Return the demand multiplier for ``spec`` at ``hours`` (surges multiply)."""
        factor = 1.0
        for event in self.events:
            if isinstance(event, Surge) and event.active(hours) and event.applies_to(spec):
                factor *= event.multiplier
        return factor

    def transitions(self, start_h: float, end_h: float) -> list[Transition]:
        """Return the events that begin or end in ``[start_h, end_h)``, in time order."""
        found: list[Transition] = []
        for event in self.events:
            if start_h <= event.start_h < end_h:
                found.append(Transition(event.start_h, event, begins=True))
            if start_h <= event.end_h < end_h:
                found.append(Transition(event.end_h, event, begins=False))
        return sorted(found, key=lambda t: (t.at_h, not t.begins))

    def check_targets(self, specs: Sequence[MachineSpec]) -> None:
        """Raise ``ScenarioError`` if an event names a site or machine the fleet lacks."""
        sites = {s.site for s in specs}
        ids = {s.machine_id for s in specs}
        for number, event in enumerate(self.events, start=1):
            unknown = [s for s in event.sites if s not in sites]
            unknown += [m for m in event.machines if m not in ids]
            if unknown:
                raise ScenarioError(
                    f"event {number} ({event.kind}) names {', '.join(unknown)}, "
                    "which this fleet does not have (try more --machines)"
                )


@dataclass(frozen=True, slots=True)
class Transition:
    at_h: float
    event: Event
    begins: bool


_SCENARIO = TypeAdapter(Scenario)


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """Parse scenario TOML; raise ``ScenarioError`` naming the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source} is not valid TOML: {exc}") from exc
    try:
        return _SCENARIO.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(f"{source}: {where}: {first['msg']}") from exc


def available() -> list[str]:
    """Return the names of the scenarios shipped with the simulators."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        known = ", ".join(available())
        raise ScenarioError(f"cannot read scenario {name_or_path!r} ({exc.strerror}); "
                            f"shipped scenarios: {known}") from exc
    return parse_scenario(text, str(path))
