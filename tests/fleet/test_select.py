"""Tags and selections over a real store: a selection is the AND of the criteria given (vendor, model, firmware
version, site, all of the tags, explicit ids), pages through the fleet in id order without gaps or repeats, and
every plan walks one index in id order (no sort of what matches, no scan where an index fits)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
import trio

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import ChargerTagsChanged
from ampgate.fleet import ChargerSelector, Fleet, FleetRepository
from ampgate.fleet.repository import selection_query
from ampgate.load import PlacementSpec, SiteSpec, TopologyRepository
from ampgate.store import BootReport, ChargerRepository, Store
from tests.store.conftest import Runner

AT = datetime(2026, 11, 30, tzinfo=UTC)
VENDORS = ("ABB", "Alfen")
MODELS = {"ABB": ("Terra AC", "Terra DC"), "Alfen": ("Eve",)}


def fleet_spec(i: int) -> dict[str, Any]:
    """Charger i's boot report, site and tags: a fixed pattern so the expected selection is computed apart."""
    vendor = VENDORS[i % 2]
    models = MODELS[vendor]
    return {
        "id": f"CP{i:03d}",
        "vendor": vendor,
        "model": models[(i // 2) % len(models)],
        "firmware": "1.0" if i % 3 else "2.0",
        "site": ("S1", "S2", None)[i % 3 if i % 5 else 2],
        "tags": [
            t
            for t, keep in (("pilot", i % 4 == 0), ("region:nl", i % 2 == 0), ("batch/7", i % 7 == 0))
            if keep
        ],
        "protocol": "ocpp2.0.1" if i % 2 else "ocpp1.6",
    }


N = 120
SPECS = [fleet_spec(i) for i in range(N)]


async def build(store: Store) -> Fleet:
    chargers = ChargerRepository(store)
    bus = EventBus()
    fleet = Fleet(FleetRepository(store), chargers, bus, Clock())
    topology = TopologyRepository(store)
    for site in ("S1", "S2"):
        await topology.insert_site(SiteSpec(id=site))
    for s in SPECS:
        chargers.record_boot(
            BootReport(
                charger_id=s["id"],
                vendor=s["vendor"],
                model=s["model"],
                serial=None,
                firmware=s["firmware"],
                protocol=s["protocol"],
                at=AT,
            )
        )
    # A charger that never booted: no vendor, model or firmware.
    await chargers.register("BARE", None)
    for s in SPECS:
        if s["site"] is not None:
            await topology.put_placement(s["id"], PlacementSpec(node_id=s["site"], phases="L1", max_a=16))
        if s["tags"]:
            await fleet.set_tags(s["id"], s["tags"])
    return fleet


def expected(sel: ChargerSelector) -> list[str]:
    out = []
    for s in SPECS:
        if sel.vendor is not None and s["vendor"] != sel.vendor:
            continue
        if sel.model is not None and s["model"] != sel.model:
            continue
        if sel.firmware_version is not None and s["firmware"] != sel.firmware_version:
            continue
        if sel.site_id is not None and s["site"] != sel.site_id:
            continue
        if not set(sel.tags) <= set(s["tags"]):
            continue
        if sel.charger_ids is not None and s["id"] not in sel.charger_ids:
            continue
        out.append(s["id"])
    if sel == ChargerSelector() or (
        sel.charger_ids is not None
        and "BARE" in sel.charger_ids
        and not sel.tags
        and sel.vendor is None
        and sel.model is None
        and sel.firmware_version is None
        and sel.site_id is None
    ):
        out.append("BARE")
    return sorted(out)


def all_pages(fleet: Fleet, sel: ChargerSelector, page: int) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        rows = fleet.select_chargers(sel, page, after)
        assert len(rows) <= page
        ids += [r.id for r in rows]
        if len(rows) < page:
            return ids
        after = rows[-1].id


SELECTORS = [
    ChargerSelector(),
    ChargerSelector(vendor="ABB"),
    ChargerSelector(model="Terra DC"),
    ChargerSelector(vendor="ABB", model="Eve"),
    ChargerSelector(firmware_version="2.0"),
    ChargerSelector(site_id="S2"),
    ChargerSelector(site_id="S1", firmware_version="1.0", vendor="Alfen"),
    ChargerSelector(tags=("pilot",)),
    ChargerSelector(tags=("region:nl", "pilot")),
    ChargerSelector(tags=("batch/7",), site_id="S1"),
    ChargerSelector(tags=("region:nl",), vendor="ABB", model="Terra AC", firmware_version="1.0"),
    ChargerSelector(charger_ids=("CP007", "CP003", "CP100", "NOPE", "BARE")),
    ChargerSelector(charger_ids=tuple(f"CP{i:03d}" for i in range(0, N, 2)), tags=("pilot",)),
    ChargerSelector(charger_ids=()),
    ChargerSelector(vendor="Nobody"),
]


def test_selections_are_the_and_of_their_criteria_page_by_page(running: Runner) -> None:
    async def body(store: Store) -> None:
        fleet = await build(store)
        for sel in SELECTORS:
            want = expected(sel)
            assert [r.id for r in fleet.select_chargers(sel, 1000)] == want, sel
            for page in (1, 7, 50):
                assert all_pages(fleet, sel, page) == want, (sel, page)
        rows = fleet.select_chargers(ChargerSelector(charger_ids=("CP005", "BARE")), 10)
        by_id = {r.id: r for r in rows}
        s5 = SPECS[5]
        assert (by_id["CP005"].vendor, by_id["CP005"].model, by_id["CP005"].firmware_version) == (
            s5["vendor"],
            s5["model"],
            s5["firmware"],
        )
        assert by_id["CP005"].protocol == s5["protocol"] and by_id["CP005"].site_id == s5["site"]
        assert (by_id["BARE"].vendor, by_id["BARE"].site_id) == (None, None)

    running(body)


def test_many_explicit_ids_span_batches(running: Runner) -> None:
    async def body(store: Store) -> None:
        fleet = await build(store)
        ids = tuple(f"CP{i:03d}" for i in range(N)) + tuple(f"X{i}" for i in range(1200))
        assert all_pages(fleet, ChargerSelector(charger_ids=ids), 33) == [s["id"] for s in SPECS]

    running(body)


@pytest.mark.parametrize("sel", SELECTORS[:11], ids=lambda s: repr(s)[16:60])
def test_every_plan_walks_an_index_in_id_order(running: Runner, sel: ChargerSelector) -> None:
    async def body(store: Store) -> None:
        await build(store)
        sql, args = selection_query(sel, 100, "CP050")
        plan = " | ".join(r[3] for r in store.reader.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall())
        assert "TEMP B-TREE" not in plan, plan
        first = plan.split(" | ")[0]
        if sel != ChargerSelector():
            assert "USING" in first and "INDEX" in first, plan

    running(body)


def test_tags_replace_the_set_and_are_checked(running: Runner) -> None:
    async def body(store: Store) -> None:
        chargers = ChargerRepository(store)
        bus = EventBus()
        events = bus.subscribe()
        fleet = Fleet(FleetRepository(store), chargers, bus, Clock())
        await chargers.register("CP1", None)
        assert fleet.tags("CP1") == ()
        assert await fleet.set_tags("CP1", ["b", "a:1", "b"]) == ("a:1", "b")
        assert await fleet.set_tags("CP1", ["a:1", "b"]) == ("a:1", "b")  # the same set: no event
        assert await fleet.set_tags("CP1", ["z/y"]) == ("z/y",)
        assert fleet.tags("CP1") == ("z/y",)
        got = []
        while (e := events.receive_nowait()) is not None:
            got.append(e)
        assert [(type(e), e.tags) for e in got] == [
            (ChargerTagsChanged, ("a:1", "b")),
            (ChargerTagsChanged, ("z/y",)),
        ]
        for bad, field in (
            ([""], "tags[0]"),
            (["ok", "sp ace"], "tags[1]"),
            (["x" * 65], "tags[0]"),
            (["é"], "tags[0]"),
            ([1], "tags[0]"),
        ):
            with pytest.raises(ValidationError) as e:
                await fleet.set_tags("CP1", bad)
            assert e.value.field == field
        with pytest.raises(ValidationError) as e:
            await fleet.set_tags("CP1", [f"t{i}" for i in range(33)])
        assert e.value.field == "tags"
        assert await fleet.set_tags("CP1", ["x" * 64] + [f"t{i}" for i in range(31)])
        with pytest.raises(NotFoundError):
            await fleet.set_tags("NOPE", ["a"])
        with pytest.raises(ValidationError) as e:
            fleet.select_chargers(ChargerSelector(), 0)
        assert e.value.field == "limit"
        with pytest.raises(ValidationError) as e:
            fleet.select_chargers(ChargerSelector(charger_ids=("ok", "a/b")), 10)
        assert e.value.field == "charger_ids[1]"
        assert fleet.tags("CP1") != ()  # the refused PUTs changed nothing
        await trio.lowlevel.checkpoint()

    running(body)


def test_selector_fields_cover_every_combination_of_two(running: Runner) -> None:
    """Pairs of criteria on the same fleet, each against the reference."""

    async def body(store: Store) -> None:
        fleet = await build(store)
        values = {
            "vendor": "Alfen",
            "model": "Terra AC",
            "firmware_version": "1.0",
            "site_id": "S1",
            "tags": ("region:nl",),
        }
        for a, b in itertools.combinations(values, 2):
            sel = ChargerSelector(**{a: values[a], b: values[b]})
            assert all_pages(fleet, sel, 9) == expected(sel), sel

    running(body)
