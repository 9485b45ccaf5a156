"""The whitelist decision table (ampgate.roaming.whitelist), row by row: whether the eMSP is asked, the verdict
for every answer it can give (or not give), and the status each version's charger is told."""

from __future__ import annotations

import pytest

from ampgate.roaming.types import AuthMethod, WhitelistType
from ampgate.roaming.whitelist import (
    INVALID,
    UNKNOWN,
    Cached,
    Decision,
    Outcome,
    must_ask,
    ocpp_status,
    settle,
)

W = WhitelistType
OC = Outcome
ACCEPT_WL = Decision(True, "ALLOWED", AuthMethod.WHITELIST)
INVALID_WL = Decision(False, INVALID, AuthMethod.WHITELIST)
UNKNOWN_WL = Decision(False, UNKNOWN, AuthMethod.WHITELIST)


@pytest.mark.parametrize(
    ("cached", "asks"),
    [
        (None, True),  # nobody pushed it: ask
        (Cached(W.ALWAYS, True), False),  # real-time is "not possible/allowed"
        (Cached(W.ALWAYS, False), False),
        (Cached(W.ALLOWED, True), False),  # the CPO may choose: the whitelist answers at once
        (Cached(W.ALLOWED, False), True),  # its state may have changed: ask
        (Cached(W.ALLOWED_OFFLINE, True), True),
        (Cached(W.ALLOWED_OFFLINE, False), True),
        (Cached(W.NEVER, True), True),
        (Cached(W.NEVER, False), True),
    ],
)
def test_whether_the_emsp_is_asked(cached: Cached | None, asks: bool) -> None:
    assert must_ask(cached) is asks


ALLOWED = Decision(True, "ALLOWED", AuthMethod.AUTH_REQUEST)


@pytest.mark.parametrize(
    ("cached", "outcome", "decision"),
    [
        # Not asked: the whitelist answers.
        (Cached(W.ALWAYS, True), None, ACCEPT_WL),
        (Cached(W.ALWAYS, False), None, INVALID_WL),
        (Cached(W.ALLOWED, True), None, ACCEPT_WL),
        (None, None, UNKNOWN_WL),
        # Asking was due but nobody could be asked (no tokens endpoint): as unreachable.
        (Cached(W.NEVER, True), None, INVALID_WL),
        (Cached(W.ALLOWED_OFFLINE, True), None, ACCEPT_WL),
        # The eMSP answered: its answer decides, whatever the whitelist holds.
        (Cached(W.NEVER, False), OC.ALLOWED, ALLOWED),
        (Cached(W.ALLOWED, False), OC.ALLOWED, ALLOWED),
        (Cached(W.ALLOWED_OFFLINE, True), OC.BLOCKED, Decision(False, "BLOCKED", AuthMethod.AUTH_REQUEST)),
        (Cached(W.NEVER, True), OC.EXPIRED, Decision(False, "EXPIRED", AuthMethod.AUTH_REQUEST)),
        (Cached(W.NEVER, True), OC.NO_CREDIT, Decision(False, "NO_CREDIT", AuthMethod.AUTH_REQUEST)),
        (None, OC.NOT_ALLOWED, Decision(False, "NOT_ALLOWED", AuthMethod.AUTH_REQUEST)),
        (None, OC.ALLOWED, ALLOWED),
        (None, OC.UNKNOWN, Decision(False, UNKNOWN, AuthMethod.AUTH_REQUEST)),
        (Cached(W.NEVER, True), OC.UNKNOWN, Decision(False, UNKNOWN, AuthMethod.AUTH_REQUEST)),
        # The eMSP could not be reached: the whitelist type decides.
        (Cached(W.ALLOWED_OFFLINE, True), OC.UNREACHABLE, ACCEPT_WL),
        (
            Cached(W.ALLOWED_OFFLINE, False),
            OC.UNREACHABLE,
            INVALID_WL,
        ),  # invalidated: not let in on an outage
        (Cached(W.ALLOWED, False), OC.UNREACHABLE, INVALID_WL),
        (Cached(W.NEVER, True), OC.UNREACHABLE, INVALID_WL),
        (Cached(W.NEVER, False), OC.UNREACHABLE, INVALID_WL),
        (None, OC.UNREACHABLE, UNKNOWN_WL),  # a token nobody pushed: as NEVER
    ],
)
def test_the_verdict(cached: Cached | None, outcome: Outcome | None, decision: Decision) -> None:
    assert settle(cached, outcome) == decision


def test_every_whitelist_type_and_outcome_has_a_verdict_that_follows_the_table() -> None:
    for whitelist in W:
        for valid in (True, False):
            cached = Cached(whitelist, valid)
            for outcome in [None, *OC]:
                d = settle(cached, outcome)
                if outcome == OC.ALLOWED:
                    assert d.allowed and d.method == AuthMethod.AUTH_REQUEST
                elif outcome in (None, OC.UNREACHABLE):
                    # Let in only by a valid token whose whitelist allows it without its eMSP (None: not
                    # asked; where asking was due, that counts as unreachable).
                    offline_ok = whitelist in (W.ALWAYS, W.ALLOWED_OFFLINE) or (
                        whitelist == W.ALLOWED and outcome is None
                    )
                    assert d.allowed is (valid and offline_ok), (whitelist, valid, outcome)
                    assert d.method == AuthMethod.WHITELIST
                else:
                    assert not d.allowed


@pytest.mark.parametrize(
    ("reason", "status16", "status201"),
    [
        ("ALLOWED", "Accepted", "Accepted"),
        ("BLOCKED", "Blocked", "Blocked"),
        ("EXPIRED", "Expired", "Expired"),
        ("NO_CREDIT", "Invalid", "NoCredit"),  # 1.6 has no NoCredit
        ("NOT_ALLOWED", "Invalid", "NotAtThisLocation"),
        (INVALID, "Invalid", "Invalid"),
        (UNKNOWN, "Invalid", "Invalid"),
    ],
)
def test_what_each_version_is_told(reason: str, status16: str, status201: str) -> None:
    d = Decision(reason == "ALLOWED", reason, AuthMethod.AUTH_REQUEST)
    assert ocpp_status(d, "ocpp1.6") == status16
    assert ocpp_status(d, "ocpp2.0.1") == status201
