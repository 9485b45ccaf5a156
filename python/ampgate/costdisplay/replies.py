"""`ReplyHooks`: the cost display's part in the authorization and transaction replies
(`ampgate.ocpp.cost_hooks.CostReplies`).

2.0.1 (mode `ocpp201`):
- an Accepted idTokenInfo (Authorize; TransactionEvent Started/Updated carrying an idToken) gets the tariff
  text as `personalMessage`, in the token's language when the answer names one (`language1`), else in the
  charger's default language (DisplayMessageCtrlr.Language), else English;
- a Started/Updated reply without idTokenInfo gets `updatedPersonalMessage` when the transaction's tariff text
  is no longer the one last shown (the tariff assigned changed mid-session). After a restart the node does not
  know what was shown: the first text it sees for a transaction is taken as shown;
- the Ended reply gets `totalCost`, the final cost VAT included (0.00 for a free session: the schema's "not
  free" is an omitted total), read after the stop is durable and waited for at most `final_wait` seconds;
  omitted when it is not known in time, when no tariff applies, or when pricing failed.
1.6 (mode `california`), sent after the reply (which goes first):
- SetUserPrice after an Accepted Authorize, and after an Accepted StartTransaction unless the charger accepted
  a SetUserPrice for the same idTag within `RECENT_PRICE_S` (the price shown at authorization still stands);
- FinalCost after StopTransaction, priced until the stop.

Every hook catches everything but cancellation: a failure is logged and counted, the reply goes unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ampgate.clock import Clock
from ampgate.costdisplay import messages
from ampgate.costdisplay.ports import SessionCosts, TariffLookup, TransactionReads
from ampgate.costdisplay.resolver import Modes
from ampgate.costdisplay.sender import DATA_TRANSFER, Sender
from ampgate.costdisplay.stats import Counts
from ampgate.ocpp.envelope import OCPP16, OCPP201

log = logging.getLogger(__name__)

# How long the Ended reply waits for the final cost: the stop is already durable, so this is only the pricing
# of a finished session (target: milliseconds). A charger's TransactionEvent must never hang on it; past this
# the total is left out, as when it is unknown.
FINAL_COST_WAIT = 2.0
# A SetUserPrice the charger accepted at Authorize still stands when the transaction starts this soon after:
# not sent again at StartTransaction (drivers plug in within minutes of presenting their card).
RECENT_PRICE_S = 300.0

PERSONAL_MESSAGE = "personalMessage"
UPDATED_PERSONAL_MESSAGE = "updatedPersonalMessage"
TOTAL_COST = "totalCost"


class ReplyHooks:
    def __init__(
        self,
        modes: Modes,
        tariffs: TariffLookup,
        costs: SessionCosts,
        transactions: TransactionReads,
        sender: Sender,
        counts: Counts,
        clock: Clock,
        *,
        final_wait: float = FINAL_COST_WAIT,
    ) -> None:
        self._modes = modes
        self._tariffs = tariffs
        self._costs = costs
        self._transactions = transactions
        self._sender = sender
        self._counts = counts
        self._clock = clock
        self.final_wait = final_wait
        # 2.0.1 transactions in progress: (its id token, the tariff text last shown).
        self._shown: dict[int, tuple[str | None, str]] = {}
        # 1.6: per charger, the idTag whose SetUserPrice it last accepted, and when (monotonic).
        self._priced16: dict[str, tuple[str, float]] = {}

    # -- 2.0.1 ----------------------------------------------------------------------------------------------------

    def authorize201(self, charger_id: str, id_token: str, info: dict[str, Any], /) -> None:
        try:
            self._personal(charger_id, id_token, info)
        except Exception:
            self._failed(PERSONAL_MESSAGE, charger_id)

    def event201(self, charger_id: str, tx_id: int, id_token: str | None, reply: dict[str, Any], /) -> None:
        message = PERSONAL_MESSAGE if "idTokenInfo" in reply else UPDATED_PERSONAL_MESSAGE
        try:
            if message == PERSONAL_MESSAGE:
                text = self._personal(charger_id, id_token, reply["idTokenInfo"])
                if text is not None:
                    self._shown[tx_id] = (id_token, text)
            else:
                self._updated(charger_id, tx_id, id_token, reply)
        except Exception:
            self._failed(message, charger_id)

    async def ended201(self, charger_id: str, tx_id: int, reply: dict[str, Any], /) -> None:
        self._shown.pop(tx_id, None)
        try:
            mode, _ = self._modes.current(charger_id, OCPP201)
            if mode != "ocpp201":
                return
            with trio.move_on_after(self.final_wait) as scope:
                cost = await self._costs.final_cost(tx_id)
            if scope.cancelled_caught:
                log.warning(
                    "%s: final cost of transaction %d not known within %g s",
                    charger_id,
                    tx_id,
                    self.final_wait,
                )
                self._counts.add(TOTAL_COST, "timeout")
                return
            if cost is None:
                self._counts.add(TOTAL_COST, "no_tariff")
                return
            reply[TOTAL_COST] = messages.wire_number(messages.amount(cost))
            self._counts.add(TOTAL_COST, "added")
        except Exception:
            self._failed(TOTAL_COST, charger_id)

    def _personal(self, charger_id: str, id_token: str | None, info: dict[str, Any]) -> str | None:
        """Add the tariff text to an Accepted idTokenInfo; returns the text added (None: nothing)."""
        if info.get("status") != "Accepted":
            return None
        mode, default = self._modes.current(charger_id, OCPP201)
        if mode != "ocpp201":
            return None
        tariff = self._tariffs.tariff_for(charger_id, id_token)
        if tariff is None:
            self._counts.add(PERSONAL_MESSAGE, "no_tariff")
            return None
        language = info.get("language1") or default
        text = messages.tariff_text(tariff, language)
        info[PERSONAL_MESSAGE] = messages.message_content(text, language)
        self._counts.add(PERSONAL_MESSAGE, "added")
        return text

    def _updated(self, charger_id: str, tx_id: int, id_token: str | None, reply: dict[str, Any]) -> None:
        mode, language = self._modes.current(charger_id, OCPP201)
        if mode != "ocpp201":
            return
        shown = self._shown.get(tx_id)
        token = id_token or (shown[0] if shown is not None else None)
        if token is None and shown is None:
            row = self._transactions.get(tx_id)
            token = None if row is None else row.id_token
        tariff = self._tariffs.tariff_for(charger_id, token)
        # No tariff is remembered as no text: one assigned later is then shown as a change.
        text = "" if tariff is None else messages.tariff_text(tariff, language)
        self._shown[tx_id] = (token, text)
        if shown is not None and shown[1] != text and text:
            reply[UPDATED_PERSONAL_MESSAGE] = messages.message_content(text, language)
            self._counts.add(UPDATED_PERSONAL_MESSAGE, "added")

    def forget_except(self, open_ids: set[int]) -> None:
        """Drop what was shown for transactions no longer open (ended without an Ended the node saw)."""
        for tx_id in [t for t in self._shown if t not in open_ids]:
            del self._shown[tx_id]

    # -- 1.6 California Pricing -----------------------------------------------------------------------------------

    def authorize16(self, charger_id: str, id_tag: str, info: dict[str, Any], /) -> None:
        try:
            self._set_user_price(charger_id, id_tag, info, after_authorize=True)
        except Exception:
            self._failed(messages.SET_USER_PRICE, charger_id)

    def started16(self, charger_id: str, tx_id: int, id_tag: str, info: dict[str, Any], /) -> None:
        try:
            self._set_user_price(charger_id, id_tag, info, after_authorize=False)
        except Exception:
            self._failed(messages.SET_USER_PRICE, charger_id)

    def stopped16(self, charger_id: str, tx_id: int, /) -> None:
        try:
            mode, language = self._modes.current(charger_id, OCPP16)
            if mode == "california":
                self._sender.start(
                    messages.FINAL_COST, charger_id, self._final16(charger_id, tx_id, language)
                )
        except Exception:
            self._failed(messages.FINAL_COST, charger_id)

    def _set_user_price(
        self, charger_id: str, id_tag: str, info: dict[str, Any], *, after_authorize: bool
    ) -> None:
        if info.get("status") != "Accepted":
            return
        mode, language = self._modes.current(charger_id, OCPP16)
        if mode != "california":
            return
        now = self._clock.monotonic()
        recent = self._priced16.get(charger_id)
        if (
            not after_authorize
            and recent is not None
            and recent[0] == id_tag
            and now - recent[1] < RECENT_PRICE_S
        ):
            self._counts.add(messages.SET_USER_PRICE, "already_shown")
            return
        tariff = self._tariffs.tariff_for(charger_id, id_tag)
        if tariff is None:
            self._counts.add(messages.SET_USER_PRICE, "no_tariff")
            return
        payload = messages.set_user_price(id_tag, messages.tariff_text(tariff, language))

        def accepted() -> None:
            self._priced16[charger_id] = (id_tag, self._clock.monotonic())

        self._sender.spawn(messages.SET_USER_PRICE, charger_id, DATA_TRANSFER, payload, on_accepted=accepted)

    async def _final16(self, charger_id: str, tx_id: int, language: str | None) -> None:
        self._priced16.pop(charger_id, None)
        try:
            with trio.move_on_after(self.final_wait) as scope:
                cost = await self._costs.final_cost(tx_id)
            if scope.cancelled_caught:
                log.warning(
                    "%s: final cost of transaction %d not known within %g s",
                    charger_id,
                    tx_id,
                    self.final_wait,
                )
                self._counts.add(messages.FINAL_COST, "timeout")
                return
            if cost is None:
                self._counts.add(messages.FINAL_COST, "no_tariff")
                return
            payload = messages.final_cost(tx_id, cost, language)
        except Exception:
            self._failed(messages.FINAL_COST, charger_id)
            return
        await self._sender.send(messages.FINAL_COST, charger_id, DATA_TRANSFER, payload)

    def _failed(self, message: str, charger_id: str) -> None:
        log.exception("%s for %s left out: pricing failed", message, charger_id)
        self._counts.add(message, "pricing_error")
