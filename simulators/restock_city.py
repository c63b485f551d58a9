"""The simulated city of the restock evaluation: machines, demand, lots and heat. Pure, seeded.

Everything random is drawn once from the seed, before any policy runs: who
comes to which machine when and which slot they choose, the lots the machines
start with, and the hot spells some cabinets live through. Each policy then
plays the same city (common random numbers), so their figures differ only by
what the policy did. Stock is kept first-expiry-first-out with the backend's
own rules (``backend.lots.fefo``) and heat exposure is added up with the
backend's ``backend.lots.exposure``, so a dose counts as expired or
heat-exposed by the same rule the backend alerts on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from backend.config import Settings
from backend.lots import fefo
from backend.lots.exposure import Limits, Reading, exposure
from backend.lots.fefo import LotKey
from simulators.demand import DemandModel
from simulators.fleet_plan import MachineSpec, plan_fleet

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
HISTORY_DAYS = 28
"""Days of demand before the evaluation starts: the forecast's history, the same for all."""
SHIFT_START_HOUR = 8
SHIFT_HOURS = 8.0
FRESH_SHELF_DAYS = 730
"""Expiry of the lots a van brings: two years after loading (nasal naloxone keeps 2-3 years)."""
INITIAL_EXPIRY_DAYS = (5, 365)
"""The lots in the machines at the start expire uniformly within this many days."""
HEAT_SPELLS_PER_MACHINE_PER_WEEK = 0.1
"""Cabinets in the sun or by a heater: a spell above 40 °C, one machine-week in ten."""
HEAT_SPELL_HOURS = (1.0, 4.0)
HEAT_SPELL_CELSIUS = (41.0, 45.0)
NORMAL_CELSIUS = 21.0
READING_EVERY = timedelta(minutes=30)
"""Readings during a spell, as the backend keeps them (a reading holds at most 2 h)."""


def _default(name: str) -> object:
    """Return a backend setting's default (the evaluation runs as shipped)."""
    return Settings.model_fields[name].default


@dataclass
class SlotSim:
    """One slot of a simulated machine, its lots first-expiry-first-out."""

    slot: int
    product: str
    is_naloxone: bool
    capacity: int
    par: int
    low_threshold: int
    lots: fefo.SlotLots
    loaded_at: dict[LotKey, datetime] = field(default_factory=dict)
    empty_since: datetime | None = None


@dataclass
class MachineSim:
    """One simulated machine: where it stands, its slots, what it dispensed, its temperatures."""

    spec: MachineSpec
    slots: dict[int, SlotSim]
    readings: list[Reading]
    # Successful dispenses (slot, time) since the history began: what the backend would hold.
    dispenses: list[tuple[int, datetime]] = field(default_factory=list)
    # Per naloxone slot, the stretches it stood empty (the empty_slot alerts' spans).
    empty: dict[int, list[tuple[datetime, datetime]]] = field(default_factory=dict)


@dataclass
class Figures:
    """What a policy achieved over the evaluation."""

    naloxone_empty_slot_hours: float = 0.0
    visits: int = 0
    km: float = 0.0
    dispensed: int = 0
    naloxone_dispensed: int = 0
    naloxone_turned_away: int = 0
    expired_doses_dispensed: int = 0
    heat_exposed_doses_dispensed: int = 0
    doses_removed: int = 0
    critical_left_out: int = 0
    planning_seconds: float = 0.0


@dataclass(frozen=True)
class CityDraw:
    """Everything random about the city, drawn once per seed."""

    specs: tuple[MachineSpec, ...]
    # Per machine: arrival times (sorted) and the slot each visitor chooses.
    arrivals: dict[str, tuple[np.ndarray, np.ndarray]]
    initial_expiry: dict[tuple[str, int], date]
    readings: dict[str, list[Reading]]
    days: int


def _epoch_h(when: datetime) -> float:
    return when.timestamp() / 3600.0


def draw_city(*, machines: int, days: int, seed: int, per_day: float = 6.0) -> CityDraw:
    """Draw the fleet, its demand over history and evaluation, its lots and its hot spells.

    ``per_day`` is the mean visitors a machine has a day (the demo's fleet's 6 by default).
    """
    specs = tuple(plan_fleet(machines, seed=seed, mean_per_day=per_day))
    rng = np.random.default_rng(seed)
    model = DemandModel()
    first = START - timedelta(days=HISTORY_DAYS)
    hours = (HISTORY_DAYS + days) * 24
    factors = np.array([model.factor(first + timedelta(hours=h)) for h in range(hours)])
    base = _epoch_h(first)
    arrivals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    expiry: dict[tuple[str, int], date] = {}
    readings: dict[str, list[Reading]] = {}
    for spec in specs:
        counts = rng.poisson(spec.per_day / 24.0 * factors)
        hour_index = np.repeat(np.arange(hours), counts)
        times = np.sort(base + hour_index + rng.random(hour_index.size))
        weights = np.array([s.popularity for s in spec.slots])
        chosen = rng.choice(len(spec.slots), size=times.size, p=weights / weights.sum())
        arrivals[spec.machine_id] = (times, np.array([s.slot for s in spec.slots])[chosen])
        for s in spec.slots:
            if s.product.startswith("naloxone"):
                expiry[(spec.machine_id, s.slot)] = (START + timedelta(
                    days=int(rng.integers(*INITIAL_EXPIRY_DAYS)))).date()
        spells = rng.poisson(HEAT_SPELLS_PER_MACHINE_PER_WEEK * days / 7)
        series: list[Reading] = []
        for at_h in np.sort(rng.uniform(0, days * 24, size=spells)):
            begin = START + timedelta(hours=float(at_h))
            length = timedelta(hours=float(rng.uniform(*HEAT_SPELL_HOURS)))
            celsius = round(float(rng.uniform(*HEAT_SPELL_CELSIUS)), 1)
            at = begin
            while at < begin + length:
                series.append((at, celsius))
                at += READING_EVERY
            series.append((begin + length, NORMAL_CELSIUS))
        readings[spec.machine_id] = sorted(series)
    return CityDraw(specs, arrivals, expiry, readings, days)


def fresh_lot(product: str, today: date) -> LotKey:
    """Return the lot a van loads on ``today``."""
    return LotKey(today + timedelta(days=FRESH_SHELF_DAYS), f"VAN-{today:%Y%m%d}", product)


class City:
    """The state of the city as one policy plays it."""

    def __init__(self, draw: CityDraw) -> None:
        """Set every machine up as the draw says, with its history of dispenses."""
        self.draw = draw
        self.figures = Figures()
        self.hold = timedelta(seconds=float(_default("temperature_hold_s")))  # type: ignore[arg-type]
        self.limits = Limits(
            outside_storage=timedelta(hours=float(_default("heat_storage_limit_h"))),  # type: ignore[arg-type]
            outside_excursion=timedelta(minutes=float(_default("heat_excursion_limit_min"))),  # type: ignore[arg-type]
            below_freezing=timedelta(minutes=float(_default("heat_freezing_limit_min"))),  # type: ignore[arg-type]
        )
        self.machines: dict[str, MachineSim] = {}
        loaded = START - timedelta(days=30)
        for spec in draw.specs:
            slots = {}
            for s in spec.slots:
                naloxone = s.product.startswith("naloxone")
                lots = fefo.SlotLots(s.count)
                sim = SlotSim(s.slot, s.product, naloxone, s.capacity, s.par, s.low_threshold,
                              lots)
                if naloxone:
                    key = LotKey(draw.initial_expiry[(spec.machine_id, s.slot)],
                                 f"INIT-{spec.machine_id}-{s.slot}", s.product)
                    sim.lots = fefo.load(fefo.SlotLots(0), key, s.count)
                    sim.loaded_at[key] = loaded
                slots[s.slot] = sim
            times, chosen = draw.arrivals[spec.machine_id]
            past = times < _epoch_h(START)
            history = [(int(n), datetime.fromtimestamp(h * 3600, tz=UTC))
                       for h, n in zip(times[past], chosen[past], strict=True)]
            self.machines[spec.machine_id] = MachineSim(
                spec, slots, draw.readings[spec.machine_id], history,
                {n: [] for n, s in slots.items() if s.is_naloxone})

    # -- what happens at a machine --------------------------------------------------------

    def heat_exposed(self, machine: MachineSim, key: LotKey, slot: SlotSim, now: datetime
                     ) -> bool:
        """Say whether a lot has passed a heat limit since it was loaded (backend rule)."""
        if not machine.readings:
            return False
        seen = exposure(machine.readings, slot.loaded_at.get(key, START), now,
                        max_hold=self.hold)
        return bool(self.limits.exceeded(seen))

    def vend(self, machine: MachineSim, number: int, now: datetime) -> None:
        """A visitor takes an item from a slot, if there is one."""
        slot = machine.slots[number]
        if slot.lots.count == 0:
            if slot.is_naloxone:
                self.figures.naloxone_turned_away += 1
            return
        slot.lots, key = fefo.vend(slot.lots)
        self.figures.dispensed += 1
        machine.dispenses.append((number, now))
        if slot.is_naloxone:
            self.figures.naloxone_dispensed += 1
            if key is not None and key.expiry <= now.date():
                self.figures.expired_doses_dispensed += 1
            if key is not None and self.heat_exposed(machine, key, slot, now):
                self.figures.heat_exposed_doses_dispensed += 1
        if slot.lots.count == 0:
            slot.empty_since = now

    def restock(self, machine: MachineSim, now: datetime, remove: set[LotKey]) -> None:
        """Take the ``remove`` lots out and fill every slot to par with fresh stock."""
        self.figures.visits += 1
        for slot in machine.slots.values():
            for key in sorted(remove):
                have = slot.lots.quantity(key)
                if have:
                    slot.lots = fefo.remove(slot.lots, key, have)
                    self.figures.doses_removed += have
            wanted = min(slot.par, slot.capacity) - slot.lots.count
            if wanted > 0:
                if slot.is_naloxone:
                    key = fresh_lot(slot.product, now.date())
                    slot.lots = fefo.load(slot.lots, key, wanted)
                    slot.loaded_at.setdefault(key, now)
                else:
                    slot.lots = fefo.set_count(slot.lots, slot.lots.count + wanted)[0]
            self._refilled(machine, slot, now)

    def _refilled(self, machine: MachineSim, slot: SlotSim, now: datetime) -> None:
        if slot.empty_since is not None and slot.lots.count > 0:
            if slot.is_naloxone:
                self.figures.naloxone_empty_slot_hours += (now - slot.empty_since
                                                           ) / timedelta(hours=1)
                machine.empty[slot.slot].append((slot.empty_since, now))
            slot.empty_since = None

    def advance(self, start: datetime, end: datetime,
                visits: Sequence[tuple[str, datetime]], removal: RemovalRule) -> None:
        """Play [start, end): every visitor and every visit, in time order per machine."""
        by_machine: dict[str, list[datetime]] = {}
        for machine_id, at in visits:
            by_machine.setdefault(machine_id, []).append(at)
        lo, hi = _epoch_h(start), _epoch_h(end)
        for machine_id, machine in self.machines.items():
            times, chosen = self.draw.arrivals[machine_id]
            a, b = np.searchsorted(times, [lo, hi])
            events: list[tuple[datetime, int]] = [
                (datetime.fromtimestamp(float(h) * 3600, tz=UTC), int(n))
                for h, n in zip(times[a:b], chosen[a:b], strict=True)]
            events += [(at, 0) for at in by_machine.get(machine_id, []) if start <= at < end]
            # Slot 0 marks a visit; at the same instant the visit comes first.
            for at, number in sorted(events):
                if number == 0:
                    self.restock(machine, at, removal(self, machine, at))
                else:
                    self.vend(machine, number, at)

    def close(self, end: datetime) -> None:
        """Count the empty hours of the slots still empty at the end."""
        for machine in self.machines.values():
            for slot in machine.slots.values():
                if slot.is_naloxone and slot.empty_since is not None:
                    self.figures.naloxone_empty_slot_hours += (end - slot.empty_since
                                                               ) / timedelta(hours=1)
                    machine.empty[slot.slot].append((slot.empty_since, end))
                    slot.empty_since = None


RemovalRule = Callable[[City, MachineSim, datetime], set[LotKey]]
"""What a worker takes out at a visit."""


def expired_by_date(city: City, machine: MachineSim, now: datetime) -> set[LotKey]:
    """Take out what the box says has expired: all a worker without the lots system sees."""
    del city
    return {key for slot in machine.slots.values() for key, _ in slot.lots.lots
            if key.expiry <= now.date()}
