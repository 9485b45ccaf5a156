"""The load control plane's rules as pure functions: what a session asks of the allocator, and the charging
profiles that carry an allocation to a charger (OCPP 1.6 and 2.0.1). No I/O; unit-tested on their own.

Demand of a session
    - Phases: the site phases its charger is wired to (`placement.phases`), limited to as many as the EV is seen
      to use. An EV's phases are learned from its per-phase Current.Import meter values: a phase carrying more
      than PHASE_SEEN_A while the EV charges is in use. Until the first per-phase sample, all of the charger's.
    - Maximum: the lower of the charger's rating, any external limit (NotifyChargingLimit) on its EVSE, and what
      the EV is seen to draw. An EV that draws clearly less than it was given (more than USE_SLACK_A below its
      allocation in its latest sample) is capped at what it draws plus room to grow (EV_GROWTH), so the headroom
      it leaves goes to the others on the next tick; one that draws what it was given is capped by the charger
      alone. The room to grow is larger than the allocator's hysteresis, so an EV ramping up is never stuck.
    - Minimum: 6 A (IEC 61851-1: the least a charger may signal), configurable.
    - Priority: the placement's, raised as an ISO 15118 departure time nears while energy is still wanted: +1
      within DEPARTURE_SOON, +2 within DEPARTURE_IMMINENT. Within a class, sessions share by weight.

Profiles
    A connector's allocation goes out as a TxProfile for its transaction (1.6: `connectorId` + transactionId;
    2.0.1: `evseId` + the charger's transactionId), Absolute, one period, in A (W when the charger takes only W:
    the current × the site voltage × the EV's phases), with a fixed id and stack level per connector
    (TX_PROFILE_ID + connector, TX_STACK_LEVEL), so each new one replaces the last and none pile up. It is valid
    for `validity_s` from now (`validTo` and the schedule's `duration`): a charger that stops hearing from us
    falls back on its own to its default profile. At boot each placed charger gets that fallback: a
    TxDefaultProfile of `default_a` on connector/EVSE 0 and a ChargePointMaxProfile (2.0.1:
    ChargingStationMaxProfile) of its rating, both without end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ampgate.clock import iso_utc

OCPP16 = "ocpp1.6"
MIN_A = 6.0
PHASE_SEEN_A = 1.0
USE_SLACK_A = 2.0
DEPARTURE_SOON = timedelta(hours=1)
DEPARTURE_IMMINENT = timedelta(minutes=15)

# Fixed ids and stack levels of the profiles the load ticker owns. Ids far above what operators pick by hand, so
# an operator's own profile (via the commands API) is not replaced by id; OCPP 1.6 also replaces a profile of the
# same purpose and stack level on the same connector, so an operator's TxProfile at stack level 1 (or
# TxDefaultProfile / ChargePointMaxProfile at 0) on a load-managed charger is replaced by ours, and the other way
# round (docs/api.md says so). No profile carries validFrom: a charger whose clock runs behind would hold it as not
# yet valid.
TX_PROFILE_ID = 9_100_000
MAX_PROFILE_ID = 9_000_001
DEFAULT_PROFILE_ID = 9_000_002
TX_STACK_LEVEL = 1
DEFAULT_STACK_LEVEL = 0
MAX_STACK_LEVEL = 0


def ev_growth(measured_a: float) -> float:
    """Room an EV drawing `measured_a` keeps to grow into: 2 A plus 20 % — more than the allocator's default
    hysteresis (1 A or 10 %), so a held-back increase never pins an EV that is ramping up."""
    return 2.0 + 0.2 * measured_a


def phases_used(per_phase_a: tuple[float, float, float], wired: int) -> int | None:
    """How many of its `wired` phases an EV draws on, from a per-phase sample (charger phases 1..3); None when
    it draws on none (not charging now: nothing learned)."""
    seen = sum(1 for a in per_phase_a[:wired] if a > PHASE_SEEN_A)
    return seen or None


def phase_mask(wiring: tuple[int, ...], used: int | None) -> int:
    """The allocator's phase mask (bit k: site phase L(k+1)) for a charger wired to `wiring` whose EV uses
    `used` of its phases (None: all)."""
    n = len(wiring) if used is None else min(used, len(wiring))
    mask = 0
    for site_phase in wiring[:n]:
        mask |= 1 << site_phase
    return mask


def max_current(
    rating_a: float,
    external_a: float | None,
    allocated_a: float | None,
    measured_a: float | None,
) -> float:
    """A session's maximum (see the module docstring): the charger's rating, an external cap, and the EV's
    own draw when it clearly leaves part of its allocation unused."""
    cap = rating_a if external_a is None else min(rating_a, external_a)
    if allocated_a and measured_a is not None and measured_a < allocated_a - USE_SLACK_A:
        cap = min(cap, measured_a + ev_growth(measured_a))
    return max(cap, 0.0)


def priority(base: int, departure: datetime | None, energy_wanted: bool, now: datetime) -> int:
    """The placement's priority, raised as an ISO 15118 departure time nears (see the module docstring)."""
    if departure is None or not energy_wanted:
        return base
    left = departure - now
    if left.total_seconds() < 0:  # the driver stayed past the departure time: nothing to hurry for
        return base
    if left <= DEPARTURE_IMMINENT:
        return base + 2
    if left <= DEPARTURE_SOON:
        return base + 1
    return base


def _schedule(unit: str, limit: float, start: datetime, duration_s: int | None) -> dict[str, Any]:
    s: dict[str, Any] = {
        "startSchedule": iso_utc(start),
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
    }
    if duration_s is not None:
        s["duration"] = duration_s
    return s


def tx_profile(
    protocol: str,
    connector: int,
    transaction_id: str,
    limit: float,
    unit: str,
    now: datetime,
    validity_s: int,
) -> dict[str, Any]:
    """The SetChargingProfile request that gives `connector` (1.6) / EVSE (2.0.1) `limit` (A or W) for its
    transaction until `validity_s` from `now`."""
    profile_id = TX_PROFILE_ID + connector
    until = iso_utc(now + timedelta(seconds=validity_s))
    body: dict[str, Any] = {
        "stackLevel": TX_STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "validTo": until,
    }
    if protocol == OCPP16:
        body = {"chargingProfileId": profile_id, "transactionId": int(transaction_id), **body}
        body["chargingSchedule"] = _schedule(unit, limit, now, validity_s)
        return {"connectorId": connector, "csChargingProfiles": body}
    body = {"id": profile_id, **body, "transactionId": transaction_id}
    body["chargingSchedule"] = [{"id": profile_id, **_schedule(unit, limit, now, validity_s)}]
    return {"evseId": connector, "chargingProfile": body}


def boot_profiles(
    protocol: str,
    rating_a: float,
    default_a: float,
    now: datetime,
    *,
    unit: str = "A",
    voltage: float = 230.0,
) -> list[dict[str, Any]]:
    """The fallback profiles a placed charger gets at boot: its rating as the charger-wide maximum and
    `default_a` as the default for every transaction, without end; in W (over three phases) for a charger that
    takes only W."""
    out = []
    for profile_id, purpose, stack, limit in (
        (
            MAX_PROFILE_ID,
            "ChargePointMaxProfile" if protocol == OCPP16 else "ChargingStationMaxProfile",
            MAX_STACK_LEVEL,
            rating_a,
        ),
        (DEFAULT_PROFILE_ID, "TxDefaultProfile", DEFAULT_STACK_LEVEL, default_a),
    ):
        body: dict[str, Any] = {
            "stackLevel": stack,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute",
        }
        if protocol == OCPP16:
            body = {
                "chargingProfileId": profile_id,
                **body,
                "chargingSchedule": _schedule("A", limit, now, None),
            }
            out.append({"connectorId": 0, "csChargingProfiles": body})
        else:
            body = {
                "id": profile_id,
                **body,
                "chargingSchedule": [{"id": profile_id, **_schedule("A", limit, now, None)}],
            }
            out.append({"evseId": 0, "chargingProfile": body})
    return out


def in_unit(limit_a: float, unit: str, voltage_v: float, phases: int) -> float:
    """`limit_a` per phase as the charger takes it: A as is (one decimal), W as current × V × phases (whole W);
    both rounded down so the charger never gets more than the allocation."""
    if unit == "W":
        return float(int(limit_a * voltage_v * phases))
    return int(limit_a * 10 + 1e-9) / 10.0


def due(
    *,
    want: float,
    sent: float | None,
    sent_at: float | None,
    valid_until: float | None,
    now: float,
    min_interval_s: float,
) -> bool:
    """Whether a connector's allocation `want` should go out now (monotonic seconds): never sent; a decrease
    (always at once); an increase or a refresh no sooner than `min_interval_s` after the last profile; a
    refresh when less than half the last profile's validity is left."""
    if sent is None or sent_at is None or valid_until is None:
        return True
    if want < sent:
        return True
    if now - sent_at < min_interval_s:
        return False
    if want > sent:
        return True
    return now >= valid_until - (valid_until - sent_at) / 2
