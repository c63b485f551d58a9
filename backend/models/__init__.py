"""The database tables (SQLModel); importing this registers them all on the metadata."""

from backend.models.alerts import (
    ACTIVE_ALERT_WHERE,
    Alert,
    AlertPublic,
    AlertStatus,
    AlertType,
    Severity,
)
from backend.models.areas import NamedArea
from backend.models.audit import AuditRecord
from backend.models.auth import ApiToken
from backend.models.changes import FleetChange
from backend.models.commands import CommandState, MachineCommand
from backend.models.events import (
    CommandResultRecord,
    DeadLetter,
    DeadLetterDrops,
    DeliveryGap,
    DispenseEvent,
    MachineEvent,
    StockSnapshot,
)
from backend.models.fleet import (
    Machine,
    MachineBase,
    MachineListingUpdate,
    MachineTag,
    MachineTags,
    MachineTagsPublic,
    MachineUpdate,
    NaloxoneLot,
    Product,
    Slot,
    SlotBase,
)
from backend.models.jobs import JobRun
from backend.models.notify import (
    Channel,
    DeliveryState,
    Notification,
    NotificationRoute,
)
from backend.models.plans import PlannedVisit, RestockPlanRecord
from backend.models.stock import RestockVisit, StockDiscrepancy, TemperatureReading
from backend.models.types import UTCDateTime, utcnow

__all__ = [
    "ACTIVE_ALERT_WHERE",
    "Alert",
    "AlertPublic",
    "AlertStatus",
    "AlertType",
    "ApiToken",
    "AuditRecord",
    "Channel",
    "CommandResultRecord",
    "CommandState",
    "DeadLetter",
    "DeadLetterDrops",
    "DeliveryGap",
    "DeliveryState",
    "DispenseEvent",
    "FleetChange",
    "JobRun",
    "Machine",
    "MachineBase",
    "MachineCommand",
    "MachineEvent",
    "MachineListingUpdate",
    "MachineTag",
    "MachineTags",
    "MachineTagsPublic",
    "MachineUpdate",
    "NaloxoneLot",
    "NamedArea",
    "Notification",
    "NotificationRoute",
    "PlannedVisit",
    "Product",
    "RestockPlanRecord",
    "RestockVisit",
    "Severity",
    "Slot",
    "SlotBase",
    "StockDiscrepancy",
    "StockSnapshot",
    "TemperatureReading",
    "UTCDateTime",
    "utcnow",
]
