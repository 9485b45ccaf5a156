"""When a multi-part report is complete (pure): parts are numbered from 0 (`seqNo`, or the order of arrival for
the messages that carry none), the last one says `tbc` false, and the report is complete once it and every
part before it are in, whatever order they came in."""

from __future__ import annotations

from collections.abc import Collection


def complete(seq_nos: Collection[int], last: int | None) -> bool:
    """Whether parts `seq_nos` (distinct) make a whole report whose final part (`tbc` false) is `last` (None:
    not received yet)."""
    return last is not None and len(seq_nos) == last + 1 and all(0 <= s <= last for s in seq_nos)
