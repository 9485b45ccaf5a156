"""The event log: every bus event numbered, kept (`GET /api/v1/events`) and streamed live (SSE)."""

from ampgate.eventlog.repository import EventRepository, EventRow
from ampgate.eventlog.service import EventLog

__all__ = ["EventLog", "EventRepository", "EventRow"]
