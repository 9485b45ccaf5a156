"""Pricing a session from the store reads only the samples pricing needs (the energy register, power and
current), in pages of at most SAMPLE_PAGE rows that end at whole instants: a long session with many other
measurands costs no more reads, and no more memory, than its priced samples; the price is the same whatever the
page size."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from ampgate.billing import sessions
from ampgate.billing.usage import PRICED_MEASURANDS
from ampgate.clock import iso_utc
from ampgate.store import Sample
from tests.pricing.builders import comp, element, tariff

from .conftest import Harness, minutes

TARIFF = tariff(element(comp("ENERGY", "0.30"), comp("TIME", "1.20")), id="STD")
INSTANTS = 200
OTHER = ("Voltage", "SoC", "Temperature")


class Counting:
    """The transaction repository, counting the sample rows each read returns."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.reads: list[list[Sample]] = []

    def samples(self, tx_id: int) -> list[Sample]:
        rows = self._inner.samples(tx_id)
        self.reads.append(rows)
        return rows

    def samples_of(self, *args: Any, **kw: Any) -> list[Sample]:
        rows = self._inner.samples_of(*args, **kw)
        self.reads.append(rows)
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_pricing_reads_only_priced_samples_in_bounded_pages(billing, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(h: Harness) -> None:
        await h.tariffs.create(TARIFF)
        await h.chargers.register("CP1", None)
        await h.tariffs.assign("charger", "CP1", "STD")
        h.clock.t = minutes(0)
        tx = await h.start16("CP1", minutes(0), meter_start=0)
        rows: list[Sample] = []
        for i in range(INSTANTS):
            stamp = iso_utc(minutes(0) + timedelta(seconds=5 * (i + 1)))
            rows += [
                Sample(stamp, "Energy.Active.Import.Register", "", 10.0 * (i + 1), "Wh"),
                Sample(stamp, "Power.Active.Import", "", 7000.0 + i, "W"),
                Sample(stamp, "Current.Import", "", 30.0, "A"),
            ]
            rows += [Sample(stamp, m, "", 1.0, "") for m in OTHER]
        assert await h.transactions.add_samples("CP1", tx, rows)
        h.clock.t = minutes(30)
        await h.stop16("CP1", tx, minutes(30), 10.0 * INSTANTS)

        counting = Counting(h.transactions)
        h.billing._tx = counting  # type: ignore[assignment]
        # Small pages that end inside an instant (3 priced rows per instant): each page is cut back to whole
        # instants and the rest read again.
        monkeypatch.setattr(sessions, "SAMPLE_PAGE", 7)
        paged = await h.billing.final_cost(tx)
        reads = counting.reads
        assert reads and max(len(r) for r in reads) <= 7
        read = [s for r in reads for s in r]
        assert {s.measurand for s in read} == set(PRICED_MEASURANDS)  # no voltage, SoC, temperature
        # Every priced row once, plus the re-read tail of each full page (at most 2 rows of an instant).
        priced = 3 * INSTANTS
        assert priced <= len(read) <= priced + 2 * len(reads)
        assert len({(s.at, s.measurand, s.phase) for s in read}) == priced

        counting.reads = []
        monkeypatch.setattr(sessions, "SAMPLE_PAGE", 1_000_000)
        whole = await h.billing.final_cost(tx)
        assert len(counting.reads) == 1 and len(counting.reads[0]) == priced
        assert paged is not None and paged == whole
        assert paged.energy_wh == Decimal(10 * INSTANTS)

    billing(body)
