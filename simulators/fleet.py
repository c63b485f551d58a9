"""The simulated fleet: machines driven by the demand model on an accelerated clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from firmware_agent.wire.payloads import VendResult
from simulators.clock import SimClock
from simulators.demand import DemandModel, choose_slots
from simulators.fleet_plan import MachineSpec
from simulators.machine import Machine, live_through
from simulators.restock import RestockPolicy
from simulators.scenario import BrokerOutage, Scenario, Transition

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 10.0
"""Longest a history step waits for the machines to hand their events over."""
SETTLE_POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """How fast simulated time runs and how the fleet behaves."""

    speed: float = 360.0
    """Simulated seconds per real second: 360 turns a real minute into six hours."""
    tick_s: float = 0.5
    """Real seconds between demand steps."""
    restock_after: timedelta | None = timedelta(hours=6)
    """Simulated time a slot stays empty before the outreach team refills the machine;
    None: the fleet refills nothing itself (a team following the plan restocks it)."""
    seed: int = 2026
    start: datetime | None = None
    """Simulated time when the live run begins (scenario hour 0); now when unset."""
    history: timedelta = timedelta(0)
    """Simulated time replayed before ``start``, so the backend has a baseline to compare with."""
    history_step: timedelta = timedelta(hours=2)
    """Replay granularity: every event of a step is stamped with the step's end."""


@dataclass
class FleetStats:
    """What the fleet has done so far."""

    attempts: int = 0
    dispensed: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    refills: int = 0
    errors: int = 0
    scenario_steps: int = 0


class Fleet:
    """Start machines, drive vends from the demand model, refill empty machines."""

    def __init__(
        self,
        specs: Sequence[MachineSpec],
        machine_factory: Callable[[MachineSpec], Machine],
        settings: FleetSettings | None = None,
        model: DemandModel | None = None,
        scenario: Scenario | None = None,
        *,
        check_targets: bool = True,
        broker_control: Callable[[bool], None] | None = None,
    ) -> None:
        settings = settings or FleetSettings()
        self.specs = {spec.machine_id: spec for spec in specs}
        self.settings = settings
        self.model = model or DemandModel()
        self.scenario = scenario
        self._broker_control = broker_control
        """Takes the broker down (True) or brings it back (False), for outage scenarios."""
        if scenario is not None and check_targets:
            scenario.check_targets(specs)
        self.stats = FleetStats()
        self.policy = RestockPolicy(delay=settings.restock_after or timedelta(0))
        self._factory = machine_factory
        self._rng = np.random.default_rng(settings.seed)
        self._machines: dict[str, Machine] = {}
        self._counts = {
            (spec.machine_id, slot.slot): slot.count for spec in specs for slot in spec.slots
        }
        self.origin = settings.start or datetime.now(UTC)
        # Held until start(): machines come up (and history replays) in no time.
        self._clock = SimClock(self.origin - settings.history, settings.speed, running=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def machines(self) -> dict[str, Machine]:
        return dict(self._machines)

    def now(self) -> datetime:
        """Return the fleet's simulated time."""
        return self._clock.now()

    # -- life cycle --------------------------------------------------------------------

    def start_machines(self) -> None:
        """Start every machine; on a failure stop those already started and re-raise."""
        try:
            for machine_id, spec in self.specs.items():
                machine = self._factory(spec)
                machine.start()
                self._machines[machine_id] = machine
        except BaseException:
            self.stop()
            raise

    def start(self) -> None:
        """Start the machines (unless already started) and the demand thread."""
        if not self._machines:
            self.start_machines()
        if self.settings.history > timedelta(0):
            self.replay_history()
        self._clock.hold(max(self.origin, self._clock.now()))
        self._clock.release()
        self._thread = threading.Thread(target=self._run, name="nx-fleet-demand", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop the demand (no more visitors); the machines keep running."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None

    def stop(self) -> None:
        """Stop the demand thread, then every machine."""
        self.pause()
        for machine_id in list(self._machines):
            machine = self._machines.pop(machine_id)
            try:
                machine.stop()
            except Exception:
                log.exception("machine %s did not stop cleanly", machine_id)

    def replay_history(self) -> int:
        """Play the simulated time before ``origin`` step by step; return the visits."""
        when = self._clock.now()
        visits = 0
        while when < self.origin and not self._stop.is_set():
            until = min(when + self.settings.history_step, self.origin)
            self._clock.hold(until)
            visits += self.step(when, until)
            self._settle()
            when = until
        log.info("replayed %s of history: %d visits", self.settings.history, visits)
        return visits

    def _settle(self) -> None:
        # Wait until every machine has handed its events over, so that none is
        # stamped with a later step's time.
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        for machine in self._machines.values():
            while not machine.settled() and time.monotonic() < deadline:
                self._stop.wait(SETTLE_POLL_S)

    def _run(self) -> None:
        last = self._clock.now()
        while not self._stop.wait(self.settings.tick_s):
            now = self._clock.now()
            try:
                self.step(last, now)
            except Exception:
                log.exception("the fleet's demand step failed; carrying on")
            last = now

    # -- one step ----------------------------------------------------------------------

    def step(self, start: datetime, end: datetime) -> int:
        """Play the demand between two simulated times, then the due refills; return vends."""
        with self._lock:
            start_h, end_h = self._hours(start), self._hours(end)
            if self.scenario is not None:
                for transition in self.scenario.transitions(start_h, end_h):
                    self._apply(transition)
            ids = list(self._machines)
            middle_h = (start_h + end_h) / 2
            rates = [
                self.specs[mid].per_day * self._multiplier(self.specs[mid], middle_h)
                for mid in ids
            ]
            visitors = self.model.draw(self._rng, rates, start, end)
            vends = 0
            for machine_id, count in zip(ids, visitors, strict=True):
                if count and not self._stop.is_set():
                    vends += self._serve(machine_id, count, end)
            if self.settings.restock_after is not None:
                for machine_id in self.policy.due(end):
                    self._refill(machine_id)
            return vends

    def _hours(self, when: datetime) -> float:
        return (when - self.origin) / timedelta(hours=1)

    def _multiplier(self, spec: MachineSpec, hours: float) -> float:
        return 1.0 if self.scenario is None else self.scenario.multiplier(spec, hours)

    def _apply(self, transition: Transition) -> None:
        event = transition.event
        if isinstance(event, BrokerOutage):
            self._broker(transition)
            return
        targets = [mid for mid in self._machines if event.applies_to(self.specs[mid])]
        log.info(
            "scenario: %s %s at %.1f h for %d machines",
            event.kind,
            "begins" if transition.begins else "ends",
            transition.at_h,
            len(targets),
        )
        for machine_id in targets:
            machine = self._machines[machine_id]
            try:
                live_through(machine, event, begins=transition.begins)
            except Exception as exc:
                self.stats.errors += 1
                log.warning("scenario %s on %s failed: %s", event.kind, machine_id, exc)
        self.stats.scenario_steps += 1

    def _broker(self, transition: Transition) -> None:
        if self._broker_control is None:
            log.warning("scenario: broker outage at %.1f h skipped: no broker to control",
                        transition.at_h)
            return
        log.info("scenario: broker goes %s at %.1f h",
                 "down" if transition.begins else "up", transition.at_h)
        try:
            self._broker_control(transition.begins)
        except Exception as exc:
            self.stats.errors += 1
            log.warning("scenario: broker control failed: %s", exc)
        self.stats.scenario_steps += 1

    def _serve(self, machine_id: str, visitors: int, when: datetime) -> int:
        spec = self.specs[machine_id]
        machine = self._machines[machine_id]
        picks = choose_slots(self._rng, [s.popularity for s in spec.slots], visitors)
        for index in picks:
            slot = spec.slots[index].slot
            self.stats.attempts += 1
            try:
                result = machine.vend(slot)
            except Exception as exc:
                # A controller that cannot vend right now (stopping, link down) is
                # a simulated failure, not a reason to stop the fleet.
                self.stats.errors += 1
                log.warning("vend on %s slot %d failed: %s", machine_id, slot, exc)
                continue
            if result is VendResult.OK:
                self.stats.dispensed += 1
                key = (machine_id, slot)
                self._counts[key] = max(0, self._counts[key] - 1)
                if self._counts[key] == 0:
                    self.policy.slot_empty(machine_id, slot, when)
            else:
                self.stats.refused[result.value] = self.stats.refused.get(result.value, 0) + 1
                if result is VendResult.EMPTY:
                    self.policy.slot_empty(machine_id, slot, when)
        return len(picks)

    def _refill(self, machine_id: str) -> None:
        machine = self._machines.get(machine_id)
        if machine is None:
            return
        try:
            machine.refill()
        except Exception as exc:
            self.stats.errors += 1
            log.warning("refill of %s failed: %s", machine_id, exc)
            return
        for slot in self.specs[machine_id].slots:
            self._counts[(machine_id, slot.slot)] = slot.capacity
        self.policy.visited(machine_id)
        self.stats.refills += 1
        log.debug("outreach visit refilled %s", machine_id)

    def restock(self, machine_id: str, counts: Mapping[int, int]) -> None:
        """Set slots of one machine to the given counts: an outreach worker's visit."""
        with self._lock:
            machine = self._machines[machine_id]
            for slot, count in sorted(counts.items()):
                machine.restock(slot, count)
                self._counts[(machine_id, slot)] = count
            self.policy.visited(machine_id)
            self.stats.refills += 1

    def capacity(self, machine_id: str) -> dict[int, int]:
        """Return each slot's capacity, slot -> items."""
        return {s.slot: s.capacity for s in self.specs[machine_id].slots}

    def stock(self, machine_id: str) -> dict[int, int]:
        """Return the fleet's own view of a machine's stock, slot -> count."""
        return {slot: n for (mid, slot), n in self._counts.items() if mid == machine_id}

