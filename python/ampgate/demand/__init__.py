"""Demand response: events that lower what a node (or the whole network) may draw for a time window, from
operators (the API) and from the grid (OpenADR): the rules (`model`), the tables (`repository`) and the service
(`service.DemandResponse`) the load ticker asks each tick."""

from ampgate.demand.model import EventRow, EventSpec
from ampgate.demand.repository import DemandRepository
from ampgate.demand.service import DemandResponse

__all__ = ["DemandRepository", "DemandResponse", "EventRow", "EventSpec"]
