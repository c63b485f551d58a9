"""Periodic jobs and held roles, run once across every backend process on one database."""

from backend.jobs.coordinator import Coordinator, Job, Role
from backend.jobs.locks import AdvisoryLocks, LocalLocks, Locks, make_locks

__all__ = ["AdvisoryLocks", "Coordinator", "Job", "LocalLocks", "Locks", "Role", "make_locks"]
