"""The command rules, pure: time to live, expiry, when a failed delivery goes back to the queue, cancelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ampgate.commands import model
from ampgate.errors import (
    ChargerCallError,
    ChargerOfflineError,
    ChargerTimeoutError,
    ConflictError,
    NotFoundError,
    ValidationError,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def test_time_to_live_defaults_to_a_day_and_is_at_most_a_week() -> None:
    assert model.ttl(None) == timedelta(days=1)
    assert model.ttl(30) == timedelta(seconds=30)
    assert model.ttl(7 * 86_400) == timedelta(days=7)
    for bad in (0, -1, 7 * 86_400 + 1):
        with pytest.raises(ValidationError) as e:
            model.ttl(bad)
        assert e.value.field == "ttl_s"


def test_expiry_is_inclusive_and_none_never_expires() -> None:
    assert model.is_expired(NOW, NOW)
    assert not model.is_expired(NOW + timedelta(milliseconds=1), NOW)
    assert not model.is_expired(None, NOW)


def test_only_what_never_reached_the_charger_goes_back_to_the_queue() -> None:
    offline = ChargerOfflineError("gone")
    pending = ConflictError("Pending", code="charger_not_accepted")
    assert model.requeue_after(offline, reached_charger=False)
    assert model.requeue_after(pending, reached_charger=False)
    # The wait ran out with the command still in the outbox: it never left.
    assert model.requeue_after(ChargerTimeoutError("still queued"), reached_charger=False)
    # On the wire: at most once, whatever happened after.
    assert not model.requeue_after(offline, reached_charger=True)
    assert not model.requeue_after(ChargerTimeoutError("no answer"), reached_charger=True)
    # Answers and refusals are outcomes, not reasons to wait.
    assert not model.requeue_after(ChargerCallError("no", ocpp_code="NotSupported"), reached_charger=True)
    assert not model.requeue_after(NotFoundError("deleted"), reached_charger=False)
    assert not model.requeue_after(ConflictError("other"), reached_charger=False)
    assert not model.requeue_after(ValidationError("bad", field="type"), reached_charger=False)


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("queued", "cancel"),
        ("cancelled", "unchanged"),
        ("sent", "refuse"),
        ("answered", "refuse"),
        ("failed", "refuse"),
        ("expired", "refuse"),
    ],
)
def test_cancelling(state: str, outcome: str) -> None:
    assert model.cancel_outcome(state) == outcome


def test_the_states_and_final_ones() -> None:
    assert set(model.FINAL) < set(model.STATES)
    assert set(model.STATES) - model.FINAL == {"queued", "sent"}
