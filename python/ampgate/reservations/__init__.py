"""Reservations (OCPP 1.6 ReserveNow / CancelReservation; 2.0.1 the same plus ReservationStatusUpdate): the
`reservations` table, the rules of who may start where while one stands (`rules`, pure), the in-memory book the
OCPP handlers ask (`book`), and the operator's service that creates, cancels and expires them (`service`)."""

from ampgate.reservations.book import ReservationBook
from ampgate.reservations.repository import NewReservation, ReservationRepository, ReservationRow
from ampgate.reservations.rules import Hold, Verdict, judge_start
from ampgate.reservations.service import ReservationRefusedError, Reservations

__all__ = [
    "Hold",
    "NewReservation",
    "ReservationBook",
    "ReservationRefusedError",
    "ReservationRepository",
    "ReservationRow",
    "Reservations",
    "Verdict",
    "judge_start",
]
