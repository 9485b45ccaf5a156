"""Boot spreading: when more chargers boot at once than the node should accept, the extra ones are answered
Pending with a random interval, so that what follows an Accepted boot (a StatusNotification per connector, the
transaction messages a charger queued while offline) arrives spread over a few seconds instead of all at once.

This module is the rule alone, sans-I/O: the time (`now`, monotonic seconds) and the random draw (`randint`) are
handed in, and nothing here sends anything. The TriggerMessage that asks a waiting charger to boot again is sent
by `ampgate.ocpp.boot_spread_task`, which asks this rule whom to invite.

- The boots answered Accepted (and the invitations, below) in the last `WINDOW_S` are counted. At most
  `threshold` of them are accepted per window; a boot the policy would accept beyond that is answered Pending
  with an interval drawn from [1, `spread_window`] seconds, and the charger is remembered (its connection, when
  it was told, and the deadline that interval sets).
- A remembered charger that boots again is Accepted when the window has room, when the node invited it, or when
  its deadline has passed, full window or not: nobody is starved, so after a storm every charger is Accepted
  within about one spreading window. Booting again early into a full window, it is told Pending with what is
  left of its interval: an early boot never pushes its deadline back.
- `invite` hands out the oldest waiting chargers, as many as the window has room for; each takes its slot of the
  window at once (it boots again one round trip later), and its next boot is Accepted.
- A charger whose connection went is forgotten (`forget`, `reconcile`): memory is bounded by the chargers both
  connected and waiting, and by `threshold` for the window.
- Only boots the policy would accept are spread: the policy's own Pending and Rejected are not this rule's.
- `threshold` 0 turns spreading off: every boot is accepted and nothing is counted or remembered.

2.0.1 chargers do not boot again after a network-only drop (they resume the accepted session [B01]), so this
matters mostly after power outages, when every charger of a site or a region boots.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable

import msgspec

# The counting window: the threshold is in boots per second, the unit the benchmarks measure the node in.
WINDOW_S = 1.0

# A charger's timer may fire a little before the interval it was told (whole-second timers, a clock of its own).
# The node counts from before its reply left, which only helps the charger; half a second of slack besides keeps
# a punctual charger from being told Pending once more for being a few milliseconds early.
DEADLINE_SLACK_S = 0.5


class Waiting(msgspec.Struct, gc=False):
    """A charger told Pending by the spreading rule: on connection `conn_id`, at `told_at`, to boot again no
    sooner than `deadline` (monotonic seconds)."""

    conn_id: int
    told_at: float
    deadline: float


class BootSpread:
    """The spreading rule (see the module docstring). `now()` is monotonic seconds (the node's `clock.monotonic`);
    `randint(a, b)` a random integer in [a, b] (`random.Random().randint`). Raises ValueError for a negative
    threshold or a spreading window below one second when spreading is on."""

    def __init__(
        self,
        *,
        threshold: int,
        spread_window: int,
        now: Callable[[], float],
        randint: Callable[[int, int], int],
    ) -> None:
        if threshold < 0:
            raise ValueError(f"the boot spreading threshold is at least 0 (0: off), not {threshold}")
        if threshold and spread_window < 1:
            raise ValueError(f"the boot spreading window is at least 1 s, not {spread_window}")
        self.threshold = threshold
        self.spread_window = spread_window
        self._now = now
        self._randint = randint
        # The times of the slots taken within the last WINDOW_S. Only whether `threshold` of them lie within the
        # window matters, so older ones may fall off the end: never more than `threshold` floats.
        self._slots: collections.deque[float] = collections.deque(maxlen=max(threshold, 1))
        # Oldest told first; `invite` takes from the front.
        self._waiting: collections.OrderedDict[str, Waiting] = collections.OrderedDict()
        self._invited: dict[str, Waiting] = {}
        self.spread = 0  # boots answered Pending by this rule, ever
        self.invited = 0  # invitations handed out, ever

    @property
    def enabled(self) -> bool:
        return self.threshold > 0

    def pending(self) -> int:
        """Chargers told Pending by this rule and not accepted since (invited ones included)."""
        return len(self._waiting) + len(self._invited)

    def is_pending(self, charger_id: str) -> bool:
        return charger_id in self._waiting or charger_id in self._invited

    def room(self) -> int:
        """How many more boots the window accepts now."""
        return self._room(self._now())

    def _room(self, now: float) -> int:
        slots = self._slots
        while slots and slots[0] <= now - WINDOW_S:
            slots.popleft()
        return max(0, self.threshold - len(slots))

    def admit(self, charger_id: str, conn_id: int) -> int | None:
        """A boot of `charger_id` on connection `conn_id` that the boot policy accepts: None if it is Accepted now
        (its slot is counted), else the interval (whole seconds, at least 1) to answer Pending with."""
        if not self.threshold:
            return None
        now = self._now()
        invited = self._invited.pop(charger_id, None)
        if invited is not None:
            return None  # its slot was taken when it was invited
        room = self._room(now)
        told = self._waiting.get(charger_id)
        if room > 0 or (told is not None and now >= told.deadline - DEADLINE_SLACK_S):
            if told is not None:
                del self._waiting[charger_id]
            self._slots.append(now)
            return None
        self.spread += 1
        if told is not None:
            # Early, into a full window: what is left of its interval, in its place in the queue.
            told.conn_id = conn_id
            return max(1, math.ceil(told.deadline - now))
        interval = self._randint(1, self.spread_window)
        self._waiting[charger_id] = Waiting(conn_id, now, now + interval)
        return interval

    def invite(self, limit: int, connected: Callable[[str, int], bool]) -> list[str]:
        """Up to `limit` of the oldest waiting chargers, no more than the window has room for now, to be asked to
        boot again (TriggerMessage BootNotification); each takes a slot of the window now, and its next boot is
        Accepted. `connected(charger_id, conn_id)` says whether the connection that was told Pending is still
        the charger's: those that are not are forgotten on the way and take no slot."""
        if not self.threshold or limit <= 0:
            return []
        now = self._now()
        n = min(limit, self._room(now))
        out: list[str] = []
        while n > 0 and self._waiting:
            charger_id, told = self._waiting.popitem(last=False)
            if not connected(charger_id, told.conn_id):
                continue
            self._invited[charger_id] = told
            self._slots.append(now)
            out.append(charger_id)
            n -= 1
        self.invited += len(out)
        return out

    def forget(self, charger_id: str, conn_id: int | None = None) -> None:
        """`charger_id`'s connection `conn_id` (None: whichever) is gone: it is no longer waiting. A newer
        connection's entry is kept."""
        for table in (self._waiting, self._invited):
            told = table.get(charger_id)
            if told is not None and (conn_id is None or told.conn_id == conn_id):
                del table[charger_id]

    def reconcile(self, connected: Callable[[str, int], bool]) -> int:
        """Forget every waiting charger whose told connection is gone (after disconnect events were lost, and
        now and then anyway); returns how many were forgotten."""
        gone = 0
        for table in (self._waiting, self._invited):
            for charger_id, told in list(table.items()):
                if not connected(charger_id, told.conn_id):
                    del table[charger_id]
                    gone += 1
        return gone
