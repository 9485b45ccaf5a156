"""Reports: merging the reports of the simulator processes into one, the figures computed from it (rates,
latency percentiles), and the summary a person reads at the end of a run.

A process report is the engine's `Sim.report()` with `invalid_from_csms` merged in (ampgate.sim.proc). Merging
sums counters and nested counter dicts, adds histogram buckets with the same upper bound, and takes the largest
of maxima, elapsed times and connect/boot windows (the processes run side by side, not one after the other).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = [
    "finish_report",
    "latency_summary",
    "merge_reports",
    "merge_stats",
    "progress_line",
    "quantile",
    "render_summary",
]

# Keys whose merged value is the largest over the processes, not the sum ("connector", the load's, is a number
# that is the same in every process).
MAX_KEYS = frozenset({"elapsed_s", "connect_window_s", "boot_window_s", "latency_max_us", "connector"})
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
# Distinct error details shown per kind in the summary (the JSON report has them all).
DETAILS_SHOWN = 5


def _merge_buckets(a: Iterable[Any], b: Iterable[Any]) -> list[list[int]]:
    counts: dict[int, int] = {}
    for upper, count in (*a, *b):
        counts[upper] = counts.get(upper, 0) + count
    return [[upper, counts[upper]] for upper in sorted(counts)]


def _merge_value(key: str, a: Any, b: Any, use_max: bool) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        return _merge_dicts(a, b, use_max or key in MAX_KEYS, buckets=key == "latency_us")
    if isinstance(a, bool) or isinstance(b, bool):
        return a and b  # "done": the whole run is done when every process is
    if isinstance(a, int | float) and isinstance(b, int | float):
        return max(a, b) if use_max or key in MAX_KEYS else a + b
    return a  # protocol and other labels are the same in every process


def _merge_dicts(a: Mapping[str, Any], b: Mapping[str, Any], use_max: bool, buckets: bool = False) -> dict:
    out = dict(a)
    for key, value in b.items():
        if key not in out or out[key] is None:
            out[key] = value
        elif buckets:
            out[key] = _merge_buckets(out[key], value)
        else:
            out[key] = _merge_value(key, out[key], value, use_max)
    return out


def merge_reports(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from the processes' reports: counters (also nested ones, like errors by kind) are summed,
    `latency_us` histograms are merged bucket by bucket, and maxima, `elapsed_s` and the connect/boot windows
    are the largest of any process."""
    merged: dict[str, Any] = {}
    for r in reports:
        merged = _merge_dicts(merged, r, use_max=False)
    return merged


def merge_stats(stats: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The fleet's live counters from each process's `Sim.stats()` (sums; `elapsed_s` the largest; `done` when
    every process is done)."""
    return merge_reports(stats)


def quantile(buckets: list[list[int]] | list[tuple[int, int]], q: float, maximum: int | None = None) -> int:
    """The `q` quantile of a histogram given as sorted [upper_bound, count] buckets: the smallest upper bound
    whose cumulative count reaches ceil(q * total), capped at `maximum` (the largest value seen, when known,
    since a bucket's upper bound may be above every value in it). 0 for an empty histogram."""
    total = sum(count for _, count in buckets)
    if total == 0:
        return 0
    rank = max(1, math.ceil(q * total))
    seen = 0
    value = buckets[-1][0]
    for upper, count in buckets:
        seen += count
        if seen >= rank:
            value = upper
            break
    return min(value, maximum) if maximum is not None else value


def latency_summary(latency_us: Mapping[str, Any], max_us: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """latency_ms per action: {count, p50, p90, p99, max} in milliseconds, from merged µs histograms."""
    out: dict[str, dict[str, Any]] = {}
    for action in sorted(latency_us):
        buckets = sorted(latency_us[action])
        count = sum(c for _, c in buckets)
        top = max_us.get(action)
        if top is None and buckets:
            top = max(upper for upper, c in buckets if c) if count else 0
        row: dict[str, Any] = {"count": count}
        for name, q in QUANTILES:
            row[name] = round(quantile(buckets, q, top) / 1000, 3)
        row["max"] = round((top or 0) / 1000, 3)
        out[action] = row
    return out


def _rate(n: float, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


def finish_report(merged: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The final report: the merged one plus `latency_ms` per action, `connects_per_s` (chargers' first
    connects / connect window), `boots_per_s` (chargers booted / boot window) and `messages_per_s` ((sent +
    received) / elapsed), and `extra` (scenario, seed, processes...) first. With a load, `load` gains its own
    `latency_ms`: the load CALLs' round trips alone (`latency_ms` per action mixes in the charger's own CALLs
    of the same action, e.g. a 2.0.1 MeterValues load's TransactionEvent Started)."""
    elapsed = float(merged.get("elapsed_s", 0.0))
    first_connects = merged.get("first_connects", merged.get("ever_booted", 0))
    messages = merged.get("messages_sent", 0) + merged.get("messages_received", 0)
    out: dict[str, Any] = {**extra, **merged}
    out["errors"] = dict(merged.get("errors", {}))
    out["error_count"] = sum(out["errors"].values())
    out["connects_per_s"] = _rate(first_connects, float(merged.get("connect_window_s", 0.0)))
    out["boots_per_s"] = _rate(merged.get("ever_booted", 0), float(merged.get("boot_window_s", 0.0)))
    out["messages_per_s"] = _rate(messages, elapsed)
    out["latency_ms"] = latency_summary(merged.get("latency_us", {}), merged.get("latency_max_us", {}))
    load = merged.get("load")
    if load:
        out["load"] = {
            **load,
            "latency_ms": latency_summary(load.get("latency_us", {}), load.get("latency_max_us", {})),
        }
    return out


# -- what a person reads --------------------------------------------------------------------------------


def _si(n: float) -> str:
    return (
        f"{n / 1000:.1f}k" if n >= 10_000 else f"{n:.0f}" if n >= 100 else f"{n:.1f}".rstrip("0").rstrip(".")
    )


def progress_line(
    stats: Mapping[str, Any], invalid: int, chargers: int, duration: float, msgs_per_s: float
) -> Text:
    """The live line: elapsed / planned time, connected and booted out of the fleet, messages per second and
    errors (the engine's plus invalid messages from the central system)."""
    errors = int(stats.get("errors", 0)) + invalid
    t = Text()
    t.append(f"sim {float(stats.get('elapsed_s', 0.0)):6.1f}/{duration:g}s  ", style="bold")
    t.append(f"connected {stats.get('connected', 0)}/{chargers}  ")
    t.append(f"booted {stats.get('booted', 0)}/{chargers}  ", style="green")
    t.append(f"{_si(msgs_per_s)} msg/s  ")
    t.append(f"errors {errors}", style="red" if errors else "")
    return t


def _kv_table(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    t = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(k, str(v))
    return t


def _count_table(title: str, counts: Mapping[str, Any], label: str) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column(label)
    t.add_column("count", justify="right")
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        t.add_row(str(key), str(n))
    return t


def _load_table(load: Mapping[str, Any]) -> Table:
    action = load.get("action", "")
    sent_as = "" if action == load.get("message") else f" (sent as {action})"
    rows: list[tuple[str, Any]] = [
        ("message", f"{load.get('message', '')}{sent_as}"),
        ("answered / sent", f"{load.get('answered', 0)} / {load.get('sent', 0)}"),
    ]
    if load.get("answered_after_end"):
        rows.append(("answered while closing", load["answered_after_end"]))
    lat = load.get("latency_ms", {}).get(action)
    if lat:
        rows.append(("round trip p50 / p99 ms", f"{lat['p50']:.3f} / {lat['p99']:.3f}"))
    if load.get("connector") is not None:
        tx = load.get("transactions") or {}
        rows.append(
            (
                f"its transactions (connector {load['connector']})",
                ", ".join(f"{k} {tx.get(k, 0)}" for k in ("started", "stopped", "refused")),
            )
        )
    return _kv_table("bench load", rows)


def _tls_rows(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    """wss:// runs: the TLS handshakes, full and resumed (a resumed one skips the certificates and the key
    exchange's signatures, so a reconnect storm's cost depends on how many the central system resumes)."""
    tls = r.get("tls")
    if not tls:
        return []
    return [("TLS handshakes full / resumed", f"{tls.get('full', 0)} / {tls.get('resumed', 0)}")]


def render_summary(report: Mapping[str, Any]) -> RenderableType:
    """The end-of-run summary: the fleet, rates, latency per action, the bench load, errors by kind (with their
    most frequent details), CALLs the central system sent, the statuses it answered, transactions, firmware and
    the charging profiles the chargers got."""
    r = report
    parts: list[RenderableType] = []
    n = r.get("chargers", 0)
    parts.append(
        _kv_table(
            f"ampgate sim: {r.get('scenario', '')} ({r.get('protocol', '')}, seed {r.get('seed', 0)})",
            [
                ("chargers", f"{n} over {r.get('processes', 1)} process(es)"),
                ("elapsed", f"{r.get('elapsed_s', 0.0):.1f} s"),
                ("connected at end", f"{r.get('connected', 0)}/{n}"),
                ("booted at end", f"{r.get('booted', 0)}/{n}"),
                ("ever booted", f"{r.get('ever_booted', 0)}/{n}"),
                ("connects / boots", f"{r.get('connects', 0)} / {r.get('boots', 0)}"),
                ("connect rate", f"{r.get('connects_per_s', 0.0)}/s"),
                ("boot rate", f"{r.get('boots_per_s', 0.0)}/s"),
                (
                    "messages sent / received",
                    f"{r.get('messages_sent', 0)} / {r.get('messages_received', 0)}",
                ),
                ("messages", f"{r.get('messages_per_s', 0.0)}/s"),
                (
                    "reboots / flaps / storm drops",
                    f"{r.get('reboots', 0)} / {r.get('flaps', 0)} / {r.get('storm_drops', 0)}",
                ),
                (
                    "refused 503 (with Retry-After)",
                    f"{r.get('refused_busy', 0)} ({r.get('retry_after_given', 0)})",
                ),
                *_tls_rows(r),
            ],
        )
    )
    lat = r.get("latency_ms", {})
    if lat:
        t = Table(title="round trips (ms)", title_justify="left")
        for col in ("action", "count", "p50", "p90", "p99", "max"):
            t.add_column(col, justify="left" if col == "action" else "right")
        for action, row in lat.items():
            t.add_row(action, str(row["count"]), *(f"{row[k]:.3f}" for k in ("p50", "p90", "p99", "max")))
        parts.append(t)
    load = r.get("load")
    if load:
        parts.append(_load_table(load))
    errors = {k: v for k, v in r.get("errors", {}).items() if v}
    if errors:
        t = Table(title="errors", title_justify="left")
        t.add_column("kind")
        t.add_column("count", justify="right")
        t.add_column("most frequent")
        details = r.get("error_details", {})
        for kind, count in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0])):
            top = sorted(details.get(kind, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:DETAILS_SHOWN]
            t.add_row(kind, str(count), "\n".join(f"{c} × {d}" for d, c in top))
        parts.append(t)
    else:
        parts.append(Text("errors: none", style="green"))
    if r.get("checked") is False:
        parts.append(
            Text(
                "bench mode (run.check = false): the central system's messages were not schema-checked",
                style="yellow",
            )
        )
    if r.get("checks_dropped"):
        parts.append(
            Text(
                f"{r['checks_dropped']} messages from the central system were not schema-checked (the engine's "
                "check queue was full): invalid_from_csms is a lower bound",
                style="yellow",
            )
        )
    if r.get("csms_calls"):
        parts.append(_count_table("CALLs from the central system", r["csms_calls"], "action"))
    responses = r.get("responses", {})
    if responses:
        t = Table(title="statuses answered", title_justify="left")
        t.add_column("action")
        t.add_column("statuses")
        for action in sorted(responses):
            t.add_row(action, ", ".join(f"{s} {c}" for s, c in sorted(responses[action].items())))
        parts.append(t)
    tx = r.get("transactions") or {}
    fw = r.get("firmware") or {}
    rows: list[tuple[str, Any]] = []
    if any(tx.values()):
        rows += [(f"transactions {k}", tx.get(k, 0)) for k in ("started", "stopped", "refused")]
    if fw.get("updates"):
        rows += [(f"firmware {k}", fw.get(k, 0)) for k in ("updates", "installed", "failed")]
        statuses = fw.get("statuses") or {}
        rows.append(("firmware statuses", ", ".join(f"{s} {c}" for s, c in sorted(statuses.items()))))
    profiles = r.get("charging_profiles") or {}
    if profiles.get("received") or profiles.get("cleared"):
        keys = ("received", "accepted", "rejected", "invalid", "cleared")
        rows += [(f"charging profiles {k}", profiles.get(k, 0)) for k in keys]
    if rows:
        parts.append(_kv_table("transactions, firmware and charging profiles", rows))
    return Group(*parts)
