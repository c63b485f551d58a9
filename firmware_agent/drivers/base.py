"""The driver interface every controller type implements.

A driver speaks one controller's own protocol (nxlink frames, a DEX/UCS audit
exchange, ...) and reports what happened as ``Observation`` values. The agent
makes each batch of observations durable (outbox) and only then calls
``commit(batch)``, which is when a driver may tell the controller "received"
(nxlink ACKs) or move its own baseline forward (DEX counters). A crash between
the two means the controller repeats itself and the agent's duplicate
suppression absorbs it; nothing is lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType

from firmware_agent.wire.payloads import DoorState, VendResult

# --- observations: what a controller said, in controller-independent terms ------------


@dataclass(frozen=True, slots=True)
class Hello:
    """The controller (re)started or identified itself."""

    firmware: str
    slot_count: int
    boot_counter: int
    protocol: int = 1
    """The highest nxlink protocol version the sender speaks (1 when it does not say)."""


@dataclass(frozen=True, slots=True)
class Vend:
    slot: int
    result: VendResult
    drop_confirmed: bool = False
    product: str | None = None


@dataclass(frozen=True, slots=True)
class StockReport:
    """Counts the controller can sense, slot -> count (absent slots are unknown).

    A report split over several frames arrives as parts ``1..parts``; the
    nxlink driver joins them and hands on only whole reports (``parts == 1``).
    """

    counts: dict[int, int]
    part: int = 1
    parts: int = 1


@dataclass(frozen=True, slots=True)
class Restock:
    """Someone at the machine set a slot's count (service mode)."""

    slot: int
    count: int


@dataclass(frozen=True, slots=True)
class Door:
    state: DoorState


@dataclass(frozen=True, slots=True)
class Temperature:
    celsius: float


@dataclass(frozen=True, slots=True)
class Fault:
    code: str
    slot: int | None = None


@dataclass(frozen=True, slots=True)
class Key:
    code: str


Observation = Hello | Vend | StockReport | Restock | Door | Temperature | Fault | Key


@dataclass(slots=True)
class Batch:
    """Observations read together, plus the driver's own note of how to commit them."""

    observations: list[Observation] = field(default_factory=list)
    token: object = None
    state: str | None = None
    """Driver state to store durably together with this batch (see ``restore_state``)."""


# --- commands down to the controller ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    ok: bool
    error: str | None = None


class DriverError(RuntimeError):
    """The controller cannot be reached or answered nonsense; the agent retries later."""


class ControllerDriver(ABC):
    """One controller type. Implementations do I/O here and keep logic in pure modules."""

    name: str = "abstract"

    @abstractmethod
    def open(self) -> None:
        """Open the port and greet the controller."""

    @abstractmethod
    def close(self) -> None:
        """Release the port."""

    @abstractmethod
    def read(self, timeout_s: float) -> Batch:
        """Return what the controller reported within ``timeout_s`` (maybe nothing)."""

    @abstractmethod
    def commit(self, batch: Batch) -> None:
        """Confirm ``batch`` is durable: acknowledge it to the controller."""

    def discard(self, batch: Batch) -> None:  # noqa: B027 - optional hook
        """Forget ``batch`` because it could not be made durable; the controller repeats it."""

    def restore_state(self, state: str | None) -> None:  # noqa: B027 - optional hook
        """Resume from the ``Batch.state`` last stored durably (``None`` on a first start)."""

    def request_stock(self) -> CommandOutcome:
        """Ask the controller to report its stock (answered later as a StockReport)."""
        return CommandOutcome(ok=False, error=f"{self.name} cannot report stock on request")

    def lock(self, locked: bool) -> CommandOutcome:
        """Lock or unlock vending."""
        return CommandOutcome(ok=False, error=f"{self.name} cannot lock")

    def configure_slot(self, slot: int, product: str, capacity: int) -> CommandOutcome:
        """Tell the controller what a slot holds."""
        return CommandOutcome(ok=False, error=f"{self.name} cannot configure slots")

    def authorize_vend(self, slot: int, ttl_s: int) -> CommandOutcome:
        """Let one vend through on ``slot`` within ``ttl_s`` seconds (gated machines)."""
        return CommandOutcome(ok=False, error=f"{self.name} cannot authorise vends")

    def counters(self) -> dict[str, int]:
        """Link error counters for telemetry (bad frames, retransmits, ...)."""
        return {}

    def __enter__(self) -> ControllerDriver:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
