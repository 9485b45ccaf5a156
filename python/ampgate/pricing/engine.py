"""The one pricing engine: `price(tariff, usage, until=..., tz=...)` -> `Cost`, for the running cost, the cost
told to the charger at the end of the transaction and the CDR alike. Pure: no I/O, no clock, no state.

This module cuts the session into stretches and selects what prices each (rules 1-7); `samples` reads the
meter samples, `localtime` the site's wall clock, `bill` turns the stretches into money and periods (8-9).

How a session is priced (the rules; docs/pricing.md has them with examples):

1. Phases. A session is its reservation (if any), the transaction [started_at, stopped_at) and the parking
   after the transaction [stopped_at, ended_at) while the EVSE stays occupied. Everything is priced up to
   `until` (clipped to `ended_at`). An expired reservation is priced alone.
2. Periods. Each phase is cut where anything a restriction looks at may change: a local time of day named by a
   restriction, local midnight (weekday and date restrictions), a UTC offset change, a duration threshold, a
   price signal's window, a charging change, and the meter sample at which energy, power or current crosses a
   threshold. Adjacent pieces priced alike are merged into one `ChargingPeriod`.
3. Samples are held forward: the energy so far, power and current a sample reports are what restrictions see
   from that sample until the next one (before the first sample: 0 kWh, power and current unknown; a
   restriction on an unknown value does not hold). A sample without power gets the average power since the
   previous sample. Energy between two samples is spread linearly over time, so a period cut at 17:00 between
   samples gets its share. Holding forward is what makes a priced stretch final: a sample arriving later
   adds energy to stretches already priced but never changes which element priced their time.
4. Selection, per OCPI: for each dimension (ENERGY; TIME while charging or PARKING_TIME while not; FLAT) the
   first element in the tariff that has a component of that dimension and whose restrictions all match
   prices it; none: that dimension is free in that period. After the transaction only PARKING_TIME is priced.
   Reservation elements price only the reservation (RESERVATION_EXPIRES elements only an expired one), and
   the reservation's time is its TIME (reported as RESERVATION_TIME).
5. FLAT is charged once per phase (transaction; reservation), from the first period in which an element with
   a FLAT component matches, at that element's price. Never after the transaction.
6. Signals: in a period starting inside a signal's window, the unit price of the ENERGY component that applies
   is the signal's (the first signal in `signals` covering the instant; negative prices count as 0, more
   than 4 decimals are rounded half-up to 4). The component's VAT and step size stay; a signal never makes
   energy billable where no ENERGY component applies.
7. Step sizes, per OCPI 2.2.1, once a group is closed: the group's billable volume (the sum over its periods
   where the dimension was priced) is rounded up to a multiple of the step size of the LAST such period's
   component, and what rounding adds is billed at that period's price. Groups: the transaction's energy; the
   transaction's time, where the last period priced for TIME or PARKING_TIME decides which of the two is
   rounded (the other is not: "followed by another time-based period"); the parking after the transaction;
   the reservation's time. A group is closed when its phase is over at `until` (until >= stopped_at for the
   transaction, >= ended_at for the parking after it, >= the reservation's end). While a phase runs its
   volumes are exact: the running cost does not prepay a step it may never need.
8. Money is exact until the end: integer 1/10,000 of the currency times Wh and ms. VAT per component
   (percent; None counts as 0). min_price / max_price bound the total excl VAT by their excl_vat and the
   total incl VAT by their incl_vat (OCPI: both rules apply; `validate` asks for incl_vat when the tariff has
   VAT). Then each total is rounded ONCE, half-up, to the currency's decimals. The breakdown is apportioned
   so it sums exactly to the unclamped rounded total (largest remainder, ties to the first category), and
   `adjustment` carries the clamp (`ampgate.pricing.bill`).
9. The transaction total (`transaction_cost`) is the session's cost with the parking after it left out, so
   it equals what `price` returned at until = stopped_at, the amount told to the charger; the CDR's total
   adds exactly `parking_after_cost` to it.

What follows: the total never decreases as `until` grows and samples, charging changes, stopped_at and
ended_at are added at or after the previous `until` (prices are never negative; rounding and clamping are
monotone), and pricing the same input gives the same Cost.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from ampgate.pricing.bill import Period, bill
from ampgate.pricing.compiled import Candidate, CompiledTariff, Component, Table, compile_tariff
from ampgate.pricing.localtime import LocalTime
from ampgate.pricing.model import Cost, Phase, PriceSignal, SessionUsage, Tariff
from ampgate.pricing.samples import Held, Samples, ms

__all__ = ["price"]

_PRICE_PLACES = Decimal("0.0001")


def _first(
    cands: tuple[Candidate, ...], ctx: tuple[int, int, int, float, float | None, float | None, int]
) -> Component | None:
    for r, c in cands:
        if r is None or r.matches(*ctx):
            return c
    return None


def price(
    tariff: Tariff | CompiledTariff,
    usage: SessionUsage,
    *,
    until: datetime,
    tz: tzinfo,
    signals: Sequence[PriceSignal] = (),
    periods: bool = True,
) -> Cost:
    """Price `usage` under `tariff` up to `until` (aware), with local times in `tz` (the site's zone).

    `periods` False leaves `Cost.charging_periods` empty and changes nothing else: the running cost on every
    meter value needs the totals, the Session and the CDR need the periods.

    `tariff` is validated and compiled on each call unless already compiled (`compile_tariff`), which is what
    a caller pricing the same session on every meter value should pass. Raises `ValidationError` for a
    tariff that `validate` refuses; never for usage (odd usage is priced by the rules: samples before the
    start count from the start, a falling register is held, an instant before the start prices nothing)."""
    ct = tariff if isinstance(tariff, CompiledTariff) else compile_tariff(tariff)
    start = ms(usage.started_at)
    u = ms(until)
    stop_at = usage.stopped_at or usage.ended_at
    stop = None if stop_at is None else max(ms(stop_at), start)
    end = None if usage.ended_at is None else max(ms(usage.ended_at), stop or start)
    if end is not None:
        u = min(u, end)
    res = usage.reservation
    sigs = _signals(signals)
    stretches: list[Period] = []
    closed: list[tuple[Phase, bool]] = []
    final = end is not None and u >= end
    if res is not None:
        r0, r1 = ms(res.start), max(ms(res.end), ms(res.start))
        table = ct.reserved_expired if res.expired else ct.reserved
        hi = min(u, r1)
        if hi > r0:
            lt = LocalTime(tz, r0, hi) if table.local else None
            _walk("reservation", table, r0, hi, r0, lt, stretches, None, None, (), [])
        closed.append(("reservation", u >= r1))
        if res.expired:
            final = u >= r1
    if res is None or not res.expired:
        table = ct.session
        tx_hi = u if stop is None else min(u, stop)
        samples = Samples(usage, start, stop_at)
        # One local clock for the transaction and the parking after it.
        lt = LocalTime(tz, start, u) if table.local and u > start else None
        if tx_hi > start:
            charging = [(max(ms(c.at), start), c.charging) for c in usage.charging]
            held = samples.held(table, tx_hi)
            _walk("transaction", table, start, tx_hi, start, lt, stretches, samples, charging, sigs, held)
        closed.append(("transaction", stop is not None and u >= stop))
        if stop is not None and u > stop:
            # Nothing flows after the transaction: power and current are 0, the energy is the transaction's.
            held_after: list[Held] = [(stop, samples.energy_at(stop) / 1000, 0.0, 0.0)]
            _walk("after_transaction", table, stop, u, start, lt, stretches, None, None, (), held_after)
            closed.append(("after_transaction", end is not None and u >= end))
    for phase, is_closed in closed:
        if is_closed:
            _close(phase, stretches)
    return bill(ct, stretches, final, samples if res is None or not res.expired else None, periods)


def _signals(signals: Sequence[PriceSignal]) -> list[tuple[int, int, int, Decimal]]:
    out = []
    for s in signals:
        p = max(s.energy_price, Decimal(0)).quantize(_PRICE_PLACES, ROUND_HALF_UP)
        out.append((ms(s.start), ms(s.end), int(p * 10_000), p))
    return out


def _walk(
    phase: Phase,
    table: Table,
    lo: int,
    hi: int,
    origin: int,
    lt: LocalTime | None,
    periods: list[Period],
    samples: Samples | None,
    charging: list[tuple[int, bool]] | None,
    sigs: Sequence[tuple[int, int, int, Decimal]],
    held: list[Held],
) -> None:
    """Cut [lo, hi) into pieces where selection may change, select per piece, merge into `periods`."""
    cands = table.candidates
    points: set[int] = set()
    if lt is not None:
        points.update(lt.boundaries(table.tods, table.wants_day))
    points.update(origin + d for d in table.durations)
    if charging:
        points.update(t for t, _ in charging)
    points.update(t for t, _, _, _ in held)
    energy_cands = cands.get("ENERGY", ())
    if sigs and energy_cands:
        for s0, s1, _, _ in sigs:
            points.add(s0)
            points.add(s1)
    bounds = [lo, *sorted(p for p in points if lo < p < hi), hi]
    flat_cands = cands.get("FLAT", ())
    # FLAT once per phase, never after the transaction (rule 5).
    flat_done = phase == "after_transaction"
    is_tx = phase == "transaction"
    time_cands = cands.get("TIME", ())
    parking_cands = cands.get("PARKING_TIME", ())
    # The EV counts as charging until told otherwise; the parking after the transaction never charges.
    state = is_tx
    ci = hp = 0
    wh: float = 0.0
    pw: float | None = None
    cur: float | None = None
    hb = table.bucket(wh, pw, cur)
    tods, durations = table.tods, table.durations
    day_matters = table.wants_day
    # Which components apply depends only on which side of every threshold the inputs are (a min is `>=`, a
    # max `<`, both decided by bisect_right): pieces with the same sides select the same, looked up once.
    chosen: dict[tuple[object, ...], tuple[Component | None, Component | None]] = {}
    energy_at: Callable[[int], int] | None = samples.energy_at if samples is not None else None
    e_prev = energy_at(lo) if energy_at is not None else 0
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        if charging:
            while ci < len(charging) and charging[ci][0] <= a:
                state = charging[ci][1]
                ci += 1
        if hp < len(held) and held[hp][0] <= a:
            while hp < len(held) and held[hp][0] <= a:
                _, wh, pw, cur = held[hp]
                hp += 1
            hb = table.bucket(wh, pw, cur)
        tod, wd, day = lt.at(a) if lt is not None else (0, 0, 0)
        dur = a - origin
        sides = (
            state,
            hb,
            bisect_right(tods, tod) if tods else 0,
            day if day_matters else 0,
            bisect_right(durations, dur) if durations else 0,
        )
        ctx = (tod, wd, day, wh, pw, cur, dur)
        pick = chosen.get(sides)
        if pick is None:
            if phase == "after_transaction" or (phase == "transaction" and not state):
                t_pick = _first(parking_cands, ctx)
            else:
                t_pick = _first(time_cands, ctx)
            pick = chosen[sides] = (_first(energy_cands, ctx) if is_tx else None, t_pick)
        e_comp, t_comp = pick
        e_price: tuple[int, Decimal] | None = None
        if e_comp is not None:
            e_price = (e_comp.price, e_comp.source[0])
            for s0, s1, p_int, p_dec in sigs:
                if s0 <= a < s1:
                    e_price = (p_int, p_dec)
                    break
        flat = None
        if not flat_done:
            flat = _first(flat_cands, ctx)
            flat_done = flat is not None
        if energy_at is not None:
            # At a sample where a bucket changed the energy is that sample's reading: no lookup needed.
            e_b = round(held[hp][1] * 1000) if hp < len(held) and held[hp][0] == b and is_tx else energy_at(b)
            de, e_prev = e_b - e_prev, e_b
        else:
            de = 0
        key = (phase, state, e_comp, e_price, t_comp)
        last = periods[-1] if periods else None
        if last is None or last.key != key or last.end != a:
            last = Period(phase, a, key, state if phase != "reservation" else False)
            last.e_comp, last.e_price, last.t_comp = e_comp, e_price, t_comp
            periods.append(last)
        last.end = b
        last.energy += de
        last.dur += b - a
        if flat is not None:
            last.flat = flat


def _close(phase: Phase, periods: list[Period]) -> None:
    """Apply step sizes to the groups of a phase that is over (rule 7)."""
    mine = [p for p in periods if p.phase == phase]
    if phase == "transaction":
        billed = [p for p in mine if p.e_comp is not None]
        last_e = next((p for p in reversed(billed) if p.energy > 0), None)
        if last_e is not None and last_e.e_comp is not None:
            step = last_e.e_comp.step * 1000
            total = sum(p.energy for p in billed)
            last_e.e_extra = -total % step
    timed = [p for p in mine if p.t_comp is not None]
    if not timed:
        return
    last = timed[-1]
    assert last.t_comp is not None
    group = [p for p in timed if p.charging == last.charging]
    step = last.t_comp.step * 1000
    last.t_extra = -sum(p.dur for p in group) % step
