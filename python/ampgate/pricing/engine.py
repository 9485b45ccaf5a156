"""The one pricing engine: `price(tariff, usage, until=..., tz=...)` -> `Cost`, for the running cost, the cost
told to the charger at the end of the transaction and the CDR alike. Pure: no I/O, no clock, no state.

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
   VAT). Then each total is rounded ONCE, half-up, to the currency's decimals. The breakdown is apportioned so it sums exactly to
   the unclamped rounded total (largest remainder, ties to the first category), and `adjustment` carries
   the clamp.
9. The transaction total (`transaction_cost`) is the session's cost with the parking after it left out, so
   it equals what `price` returned at until = stopped_at, the amount told to the charger; the CDR's total
   adds exactly `parking_after_cost` to it.

What follows: the total never decreases as `until` grows and samples, charging changes, stopped_at and
ended_at are added at or after the previous `until` (prices are never negative; rounding and clamping are
monotone), and pricing the same input gives the same Cost.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from itertools import accumulate, compress
from operator import ne
from typing import cast

from ampgate.pricing.compiled import Candidate, CompiledTariff, Component, Table, compile_tariff
from ampgate.pricing.localtime import LocalTime
from ampgate.pricing.model import (
    CdrDimension,
    CdrDimensionType,
    ChargingPeriod,
    Cost,
    Phase,
    Price,
    PricedDimension,
    PriceSignal,
    SessionUsage,
    Tariff,
    TariffDimensionType,
)

__all__ = ["price"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# Exact money: a component's price is in 1/10,000 currency per unit; energy is in mWh (10^6 per kWh), time in
# ms (3.6 * 10^6 per hour). One currency unit is _D "money units", the least common multiple that makes
# energy, time and flat amounts integers: price*mWh*_E, price*ms*_T and price*_F.
_D = 180_000_000_000
_E = _D // (10_000 * 1_000_000)
_T = _D // (10_000 * 3_600_000)
_F = _D // 10_000
# VAT in 1/10,000 percent: an amount incl VAT is amount * (_VAT_ONE + vat) / _VAT_ONE.
_VAT_ONE = 1_000_000
_HOUR_MS = 3_600_000
_MILLION = Decimal(1_000_000)  # kWh and hours in periods have 6 decimals (1 mWh, 3.6 ms)
_PRICE_PLACES = Decimal("0.0001")
_CATEGORIES = ("energy", "time", "parking", "flat", "reservation")


# What a restriction sees of the samples from an instant on: (UTC ms, energy so far Wh, power W, current A).
Held = tuple[int, float, float | None, float | None]


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // _MS


def _at(ms: int) -> datetime:
    return _EPOCH + ms * _MS


class _Period:
    """A merged stretch while pricing: what applied and how much was used (mWh, ms), plus step extras."""

    __slots__ = (
        "charging", "dur", "e_comp", "e_extra", "e_price", "end", "energy", "flat", "key", "phase", "start",
        "t_comp", "t_extra",
    )  # fmt: skip

    def __init__(self, phase: Phase, start: int, key: tuple[object, ...], charging: bool):
        self.phase = phase
        self.start = start
        self.end = start
        self.key = key
        self.charging = charging
        self.energy = 0
        self.dur = 0
        self.e_comp: Component | None = None
        self.e_price: tuple[int, Decimal] | None = None
        self.t_comp: Component | None = None
        self.flat: Component | None = None
        self.e_extra = 0
        self.t_extra = 0


def _first(
    cands: tuple[Candidate, ...], ctx: tuple[int, int, int, float, float | None, float | None, int]
) -> Component | None:
    for r, c in cands:
        if r is None or r.matches(*ctx):
            return c
    return None


class _Samples:
    """The session's meter samples, read lazily: energy at any instant (mWh, linear between samples) and the
    held values (energy Wh, power W, current A) from the samples where a threshold is crossed. Only the
    samples next to a period's bounds have their instants converted: looking at each of 1,000 samples in
    Python is most of what pricing costs."""

    __slots__ = ("_hint", "ats", "currents", "n", "powers", "samples", "start", "whs")

    def __init__(self, usage: SessionUsage, start: int, stop: datetime | None):
        samples = usage.samples
        if stop is not None and samples and samples[-1].at > stop:
            # The transaction's energy is what was read by its end: a later reading never changes the total
            # the charger was told.
            samples = samples[: bisect_right([s.at for s in samples], stop)]
        self.samples = samples
        self.n = len(samples)
        self.start = start
        self.ats = [s.at for s in samples]
        whs = [s.energy_wh for s in samples]
        if whs and (whs[0] < 0 or whs != sorted(whs)):
            # A register reading below an earlier one (a meter glitch) counts as the earlier one.
            whs = list(accumulate(whs, max, initial=0.0))[1:]
        self.whs = whs
        self.powers: list[float | None] = []
        self.currents: list[float | None] = []
        self._hint = (start, 0)

    def t(self, j: int) -> int:
        return max(_ms(self.ats[j]), self.start)

    def energy_at(self, t: int) -> int:
        """Energy in mWh imported by UTC ms `t`: linear between samples, the last reading after the last."""
        n = self.n
        if not n:
            return 0
        ht, hj = self._hint
        j = bisect_right(self.ats, _at(t), hj if t >= ht else 0) - 1
        self._hint = (t, max(j, 0))
        if j >= n - 1:
            return round(self.whs[-1] * 1000)
        t1, e1 = self.t(j + 1), round(self.whs[j + 1] * 1000)
        t0, e0 = (self.start, 0) if j < 0 else (self.t(j), round(self.whs[j] * 1000))
        if t1 <= t0 or t >= t1:
            return e1 if t >= t1 else e0
        return e0 + (e1 - e0) * (t - t0) // (t1 - t0)

    def _power(self, j: int) -> float | None:
        p = self.samples[j].power_w
        if p is not None or j == 0:
            return p
        dt = self.t(j) - self.t(j - 1)
        return None if dt <= 0 else (self.whs[j] - self.whs[j - 1]) * _HOUR_MS / dt

    def held(self, table: Table, hi: int) -> list[Held]:
        """(UTC ms, Wh, W, A) at each sample before `hi` whose bucket differs from the previous one's, i.e.
        where some restriction of `table` may start or stop matching. Buckets are computed with C-level maps
        over the samples; only the samples where one changes are converted."""
        n = self.n
        if not n or not (table.kwh or table.power or table.current):
            return []
        whs = self.whs
        columns: list[list[int]] = []
        initial: list[int] = []
        if table.kwh:
            columns.append(list(map(partial(bisect_right, table.kwh), whs)))
            initial.append(bisect_right(table.kwh, 0.0))
        if table.power:
            powers = [s.power_w for s in self.samples]
            if None in powers:
                powers = [self._power(j) for j in range(n)]
            self.powers = powers
            columns.append(_buckets(table.power, powers))
            initial.append(-1)
        if table.current:
            currents = [s.current_a for s in self.samples]
            self.currents = currents
            columns.append(_buckets(table.current, currents))
            initial.append(-1)
        keys: Sequence[object] = columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))
        first: object = initial[0] if len(initial) == 1 else tuple(initial)
        changed = list(compress(range(1, n), map(ne, keys[1:], keys)))
        if keys[0] != first:
            changed.insert(0, 0)
        out: list[Held] = []
        powers_, currents_ = self.powers, self.currents
        for j in changed:
            t = self.t(j)
            if t >= hi:
                break
            out.append((t, whs[j], powers_[j] if powers_ else None, currents_[j] if currents_ else None))
        return out


def _buckets(thresholds: list[float], values: list[float | None]) -> list[int]:
    if None in values:
        return [-1 if v is None else bisect_right(thresholds, v) for v in values]
    return list(map(partial(bisect_right, thresholds), values))


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
    start = _ms(usage.started_at)
    u = _ms(until)
    stop_at = usage.stopped_at or usage.ended_at
    stop = None if stop_at is None else max(_ms(stop_at), start)
    end = None if usage.ended_at is None else max(_ms(usage.ended_at), stop or start)
    if end is not None:
        u = min(u, end)
    res = usage.reservation
    sigs = _signals(signals)
    stretches: list[_Period] = []
    closed: list[tuple[Phase, bool]] = []
    final = end is not None and u >= end
    if res is not None:
        r0, r1 = _ms(res.start), max(_ms(res.end), _ms(res.start))
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
        samples = _Samples(usage, start, stop_at)
        # One local clock for the transaction and the parking after it.
        lt = LocalTime(tz, start, u) if table.local and u > start else None
        if tx_hi > start:
            charging = [(max(_ms(c.at), start), c.charging) for c in usage.charging]
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
    return _cost(ct, stretches, final, samples if res is None or not res.expired else None, periods)


def _signals(signals: Sequence[PriceSignal]) -> list[tuple[int, int, int, Decimal]]:
    out = []
    for s in signals:
        p = max(s.energy_price, Decimal(0)).quantize(_PRICE_PLACES, ROUND_HALF_UP)
        out.append((_ms(s.start), _ms(s.end), int(p * 10_000), p))
    return out


def _walk(
    phase: Phase,
    table: Table,
    lo: int,
    hi: int,
    origin: int,
    lt: LocalTime | None,
    periods: list[_Period],
    samples: _Samples | None,
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
            last = _Period(phase, a, key, state if phase != "reservation" else False)
            last.e_comp, last.e_price, last.t_comp = e_comp, e_price, t_comp
            periods.append(last)
        last.end = b
        last.energy += de
        last.dur += b - a
        if flat is not None:
            last.flat = flat


def _close(phase: Phase, periods: list[_Period]) -> None:
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


def _cost(
    ct: CompiledTariff, periods: list[_Period], final: bool, samples: _Samples | None, detail: bool
) -> Cost:
    zero = [0, 0]
    sums: dict[str, list[int]] = {c: [0, 0] for c in _CATEGORIES}
    after = [0, 0]
    energy = charging_ms = parking_ms = after_ms = reservation_ms = 0

    def add(cat: str, v: int, vat: int, also: list[int] | None = None) -> None:
        s = sums[cat]
        s[0] += v
        s[1] += v * (_VAT_ONE + vat)
        if also is not None:
            also[0] += v
            also[1] += v * (_VAT_ONE + vat)

    for p in periods:
        if p.phase == "reservation":
            reservation_ms += p.dur
        elif p.phase == "after_transaction":
            after_ms += p.dur
            parking_ms += p.dur
        else:
            energy += p.energy
            if p.charging:
                charging_ms += p.dur
            else:
                parking_ms += p.dur
        if p.e_comp is not None and p.e_price is not None:
            add("energy", p.e_price[0] * (p.energy + p.e_extra) * _E, p.e_comp.vat)
        if p.t_comp is not None:
            v = p.t_comp.price * (p.dur + p.t_extra) * _T
            if p.phase == "reservation":
                add("reservation", v, p.t_comp.vat)
            elif p.phase == "after_transaction":
                add("parking", v, p.t_comp.vat, after)
            else:
                add("time" if p.charging else "parking", v, p.t_comp.vat)
        if p.flat is not None:
            add("reservation" if p.phase == "reservation" else "flat", p.flat.price * _F, p.flat.vat)
    ex = sum(s[0] for s in sums.values())
    inc = sum(s[1] for s in sums.values())
    dec = ct.decimals
    total = _clamped(ct, ex, inc, dec)
    tx = _clamped(ct, ex - after[0], inc - after[1], dec) if after != zero else total
    parts_ex = _apportion([sums[c][0] for c in _CATEGORIES], _D, dec)
    parts_in = _apportion([sums[c][1] for c in _CATEGORIES], _D * _VAT_ONE, dec)
    adj = (total[0] - sum(parts_ex), total[1] - sum(parts_in))
    money = {c: _price((parts_ex[i], parts_in[i]), dec) for i, c in enumerate(_CATEGORIES)}
    return Cost(
        tariff_id=ct.tariff.id,
        currency=ct.currency,
        total_cost=_price(total, dec),
        energy_cost=money["energy"],
        time_cost=money["time"],
        parking_cost=money["parking"],
        flat_cost=money["flat"],
        reservation_cost=money["reservation"],
        adjustment=_price(adj, dec),
        transaction_cost=_price(tx, dec),
        parking_after_cost=_price((total[0] - tx[0], total[1] - tx[1]), dec),
        energy_wh=Decimal(energy).scaleb(-3),
        charging_time_s=Decimal(charging_ms).scaleb(-3),
        parking_time_s=Decimal(parking_ms).scaleb(-3),
        parking_after_s=Decimal(after_ms).scaleb(-3),
        reservation_time_s=Decimal(reservation_ms).scaleb(-3),
        charging_periods=tuple(_period(ct, p, samples) for p in periods) if detail else (),
        final=final,
    )


def _clamped(ct: CompiledTariff, ex: int, inc: int, dec: int) -> tuple[int, int]:
    """The totals (money units; incl in money units * _VAT_ONE) bounded by min/max price, each rounded once.
    Excl and incl are bounded each by its own figure (OCPI: both rules apply); a bound without incl_vat is
    only accepted by `validate` for a tariff without VAT, where incl equals excl."""
    lo, hi = ct.min_price, ct.max_price
    if lo is None and hi is None:
        return _round(ex, _D, dec), _round(inc, _D * _VAT_ONE, dec)
    if lo is not None:
        ex = max(ex, int(lo.excl_vat * _D))
        inc = max(inc, int(_incl(lo) * _D * _VAT_ONE))
    if hi is not None:
        ex = min(ex, int(hi.excl_vat * _D))
        inc = min(inc, int(_incl(hi) * _D * _VAT_ONE))
    return _round(ex, _D, dec), _round(inc, _D * _VAT_ONE, dec)


def _incl(p: Price) -> Decimal:
    return p.excl_vat if p.incl_vat is None else p.incl_vat


def _round(v: int, den: int, dec: int) -> int:
    """v / den in minor units of the currency, half-up (amounts are never negative)."""
    q = v * 10**dec
    return (2 * q + den) // (2 * den)


def _apportion(parts: list[int], den: int, dec: int) -> list[int]:
    """Round each part to minor units so they sum to the rounded sum: floors, then one more unit to the largest
    remainders (the first category on a tie)."""
    q = 10**dec
    total = _round(sum(parts), den, dec)
    floors = [p * q // den for p in parts]
    rems = [p * q - f * den for p, f in zip(parts, floors, strict=True)]
    for i in sorted(range(len(parts)), key=lambda i: -rems[i])[: total - sum(floors)]:
        floors[i] += 1
    return floors


def _price(minor: tuple[int, int], dec: int) -> Price:
    return Price(excl_vat=Decimal(minor[0]).scaleb(-dec), incl_vat=Decimal(minor[1]).scaleb(-dec))


def _kwh(mwh: int) -> Decimal:
    return Decimal(mwh) / _MILLION  # exact, and without trailing zeros: 20.45, not 20.450000


def _hours(ms: int) -> Decimal:
    """ms in hours to 6 decimals (3.6 ms), half-up, without trailing zeros."""
    return Decimal((ms * 20 + 36) // 72) / _MILLION


def _extremes(samples: _Samples, start: datetime, end: datetime) -> list[CdrDimension]:
    """MIN/MAX_POWER and MIN/MAX_CURRENT over the samples held in a transaction period, when the tariff
    restricts on them (OCPI: the period carries what made its price change)."""
    j0 = max(bisect_right(samples.ats, start) - 1, 0)
    j1 = bisect_left(samples.ats, end)
    out: list[CdrDimension] = []
    kinds: tuple[tuple[list[float | None], int, CdrDimensionType, CdrDimensionType], ...] = (
        (samples.powers, 1000, "MIN_POWER", "MAX_POWER"),
        (samples.currents, 1, "MIN_CURRENT", "MAX_CURRENT"),
    )
    for values, scale, low, high in kinds:
        if values:
            chunk = values[j0 : max(j1, j0 + 1)]
            # No None (the usual case): the slice itself, without a Python-level pass over it.
            seen = [v for v in chunk if v is not None] if None in chunk else cast("list[float]", chunk)
            if seen:
                lo, hi = min(seen) / scale, max(seen) / scale
                out.append(CdrDimension(type=low, volume=Decimal(repr(round(lo, 3)))))
                out.append(CdrDimension(type=high, volume=Decimal(repr(round(hi, 3)))))
    return out


def _period(ct: CompiledTariff, p: _Period, samples: _Samples | None) -> ChargingPeriod:
    start, end = _at(p.start), _at(p.end)
    dims: list[CdrDimension] = []
    priced: list[PricedDimension] = []
    if p.phase == "reservation":
        dims.append(CdrDimension(type="RESERVATION_TIME", volume=_hours(p.dur)))
    else:
        if p.phase == "transaction":
            dims.append(CdrDimension(type="ENERGY", volume=_kwh(p.energy)))
        dims.append(CdrDimension(type="TIME" if p.charging else "PARKING_TIME", volume=_hours(p.dur)))
        if p.phase == "transaction" and samples is not None and (samples.powers or samples.currents):
            dims.extend(_extremes(samples, start, end))
    if p.flat is not None:
        priced.append(_priced("FLAT", p.flat, p.flat.source[0], Decimal(1), Decimal(1)))
    if p.e_comp is not None and p.e_price is not None:
        priced.append(_priced("ENERGY", p.e_comp, p.e_price[1], _kwh(p.energy), _kwh(p.energy + p.e_extra)))
    if p.t_comp is not None:
        kind: TariffDimensionType = "TIME" if p.charging or p.phase == "reservation" else "PARKING_TIME"
        priced.append(_priced(kind, p.t_comp, p.t_comp.source[0], _hours(p.dur), _hours(p.dur + p.t_extra)))
    return ChargingPeriod(
        start_date_time=start,
        end_date_time=end,
        phase=p.phase,
        charging=p.charging,
        dimensions=tuple(dims),
        priced=tuple(priced),
        tariff_id=ct.tariff.id,
    )


def _priced(
    kind: TariffDimensionType, c: Component, unit: Decimal, volume: Decimal, billed: Decimal
) -> PricedDimension:
    return PricedDimension(
        type=kind,
        element=c.element,
        price=unit,
        vat=c.source[1],
        volume=volume,
        billed_volume=billed,
    )
