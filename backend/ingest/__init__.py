"""MQTT ingest: paho adapter (mqtt.py), validation (parse.py), batch writes (store.py)."""

from backend.ingest.worker import IngestWorker

__all__ = ["IngestWorker"]
