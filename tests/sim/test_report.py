"""Merging process reports, percentiles from merged histograms, rates, and the rendered summary."""

from __future__ import annotations

import io

from rich.console import Console

from ampgate.sim.report import (
    finish_report,
    merge_reports,
    merge_stats,
    progress_line,
    quantile,
    render_summary,
)


def process_report(**over):
    r = {
        "chargers": 10,
        "protocol": "ocpp1.6",
        "elapsed_s": 20.0,
        "connected": 10,
        "booted": 9,
        "ever_booted": 10,
        "connects": 12,
        "boots": 11,
        "connect_window_s": 2.0,
        "boot_window_s": 2.5,
        "messages_sent": 100,
        "messages_received": 100,
        "errors": {"timeout": 1},
        "error_details": {"timeout": {"Heartbeat": 1}},
        "latency_us": {"Heartbeat": [[1000, 8], [2000, 2]], "connect": [[500, 10]]},
        "latency_max_us": {"Heartbeat": 1800, "connect": 450},
        "responses": {"BootNotification": {"Accepted": 11}},
        "csms_calls": {"Reset": 1},
        "transactions": {"started": 3, "stopped": 2, "refused": 0},
        "firmware": {"updates": 1, "installed": 1, "failed": 0, "statuses": {"Installed": 1}},
        "reboots": 1,
        "flaps": 0,
        "storm_drops": 0,
    }
    r.update(over)
    return r


def test_merge_sums_counters_and_nested_counters_and_takes_maxima():
    a = process_report()
    b = process_report(
        elapsed_s=21.0,
        connect_window_s=3.0,
        errors={"timeout": 2, "call_error": 1},
        error_details={
            "timeout": {"Heartbeat": 1, "Authorize": 1},
            "call_error": {"Authorize NotImplemented": 1},
        },
        latency_us={"Heartbeat": [[2000, 5], [4000, 1]], "Authorize": [[3000, 1]]},
        latency_max_us={"Heartbeat": 3900, "Authorize": 2500},
        responses={"BootNotification": {"Accepted": 10, "Pending": 1}},
    )
    m = merge_reports([a, b])
    assert (m["chargers"], m["connected"], m["ever_booted"], m["connects"]) == (20, 20, 20, 24)
    assert m["protocol"] == "ocpp1.6"
    assert (m["elapsed_s"], m["connect_window_s"], m["boot_window_s"]) == (21.0, 3.0, 2.5)
    assert m["errors"] == {"timeout": 3, "call_error": 1}
    assert m["error_details"]["timeout"] == {"Heartbeat": 2, "Authorize": 1}
    assert m["latency_us"]["Heartbeat"] == [[1000, 8], [2000, 7], [4000, 1]]
    assert m["latency_us"]["Authorize"] == [[3000, 1]] and m["latency_us"]["connect"] == [[500, 10]]
    assert m["latency_max_us"] == {"Heartbeat": 3900, "connect": 450, "Authorize": 2500}
    assert m["responses"]["BootNotification"] == {"Accepted": 21, "Pending": 1}
    assert m["transactions"] == {"started": 6, "stopped": 4, "refused": 0}
    assert m["firmware"]["statuses"] == {"Installed": 2} and m["reboots"] == 2
    # the inputs are left as they were
    assert a["errors"] == {"timeout": 1} and a["latency_us"]["Heartbeat"] == [[1000, 8], [2000, 2]]


def test_merge_stats():
    s = merge_stats(
        [
            {
                "chargers": 5,
                "connected": 5,
                "booted": 4,
                "sent": 10,
                "received": 9,
                "errors": 0,
                "elapsed_s": 1.0,
                "done": False,
            },
            {
                "chargers": 5,
                "connected": 3,
                "booted": 3,
                "sent": 7,
                "received": 7,
                "errors": 2,
                "elapsed_s": 1.5,
                "done": True,
            },
        ]
    )
    assert s == {
        "chargers": 10,
        "connected": 8,
        "booted": 7,
        "sent": 17,
        "received": 16,
        "errors": 2,
        "elapsed_s": 1.5,
        "done": False,
    }


def test_quantile_is_the_smallest_upper_bound_reaching_the_rank_capped_at_the_max():
    buckets = [[100, 50], [200, 40], [400, 9], [800, 1]]
    assert quantile(buckets, 0.5) == 100  # rank 50
    assert quantile(buckets, 0.51) == 200  # rank 51
    assert quantile(buckets, 0.9) == 200  # rank 90
    assert quantile(buckets, 0.99) == 400  # rank 99
    assert quantile(buckets, 1.0) == 800
    assert quantile(buckets, 1.0, maximum=650) == 650
    assert quantile(buckets, 0.5, maximum=80) == 80
    assert quantile([], 0.5) == 0
    assert quantile([[10, 1]], 0.001) == 10


def test_finish_report_adds_latency_in_ms_and_rates():
    reports = [process_report(first_connects=10), process_report(first_connects=10)]
    r = finish_report(merge_reports(reports), scenario="steady", seed=3)
    assert r["scenario"] == "steady" and r["seed"] == 3
    assert r["latency_ms"]["Heartbeat"] == {"count": 20, "p50": 1.0, "p90": 1.8, "p99": 1.8, "max": 1.8}
    assert r["latency_ms"]["connect"] == {"count": 20, "p50": 0.45, "p90": 0.45, "p99": 0.45, "max": 0.45}
    assert r["latency_ms"]["Heartbeat"]["count"] == 20
    assert r["messages_per_s"] == 20.0  # 400 messages / 20 s
    assert r["boots_per_s"] == 8.0  # 20 chargers booted / 2.5 s (the slowest process's window)
    assert r["connects_per_s"] == 10.0  # chargers ever connected 20 / 2 s
    assert finish_report(merge_reports([process_report(ever_booted=6)]))["connects_per_s"] == 3.0  # fallback
    assert r["errors"] == {"timeout": 2} and r["error_count"] == 2
    for key in ("chargers", "connected", "booted", "errors", "messages_per_s", "latency_ms"):
        assert key in r


def load_of(answered: int, buckets: list[list[int]], top: int) -> dict:
    """A process report's `load` of a 2.0.1 MeterValues load, as the engine writes it."""
    return {
        "message": "MeterValues",
        "action": "TransactionEvent",
        "connector": 1,
        "sent": answered + 1,
        "answered": answered,
        "latency_us": {"TransactionEvent": buckets},
        "latency_max_us": {"TransactionEvent": top},
        "transactions": {"started": 5, "stopped": 1, "refused": 0},
    }


def test_the_load_merges_apart_from_the_other_round_trips_of_its_action():
    a = process_report(load=load_of(8, [[1000, 6], [2000, 2]], 1900))
    b = process_report(load=load_of(4, [[2000, 3], [4000, 1]], 3100))
    r = finish_report(merge_reports([a, b]))
    load = r["load"]
    assert (load["message"], load["action"], load["connector"]) == ("MeterValues", "TransactionEvent", 1)
    assert (load["sent"], load["answered"]) == (14, 12)
    assert load["transactions"] == {"started": 10, "stopped": 2, "refused": 0}
    expected = {"count": 12, "p50": 1.0, "p90": 2.0, "p99": 3.1, "max": 3.1}
    assert load["latency_ms"]["TransactionEvent"] == expected
    # The per-action figures are the processes' own (here no TransactionEvent at all): not the load's.
    assert "TransactionEvent" not in r["latency_ms"]
    text = render(render_summary(r))
    shown = ("bench load", "MeterValues (sent as TransactionEvent)", "12 / 14", "started 10, stopped 2")
    for needle in shown:
        assert needle in text, needle
    assert "load" not in finish_report(merge_reports([process_report()]))


def test_finish_report_of_nothing_is_zeros():
    r = finish_report({})
    assert r["messages_per_s"] == 0 and r["connects_per_s"] == 0 and r["latency_ms"] == {}


def render(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(renderable)
    return out.getvalue()


def test_summary_shows_the_figures_errors_and_calls():
    r = finish_report(merge_reports([process_report()]), scenario="steady", seed=0, processes=1)
    text = render(render_summary(r))
    for needle in (
        "10 over 1 process",
        "Heartbeat",
        "timeout",
        "1 × Heartbeat",
        "Reset",
        "Accepted 11",
        "started",
    ):
        assert needle in text, needle
    clean = finish_report(merge_reports([process_report(errors={}, error_details={})]))
    assert "errors: none" in render(render_summary(clean))
    dropped = finish_report(
        merge_reports([process_report(checks_dropped=4), process_report(checks_dropped=3)])
    )
    assert "7 messages from the central system were not schema-checked" in render(render_summary(dropped))
    # wss:// runs: the TLS handshakes of the processes, summed.
    tls = finish_report(
        merge_reports(
            [
                process_report(tls={"handshakes": 5, "full": 3, "resumed": 2}),
                process_report(tls={"handshakes": 4, "full": 1, "resumed": 3}),
            ]
        )
    )
    assert tls["tls"] == {"handshakes": 9, "full": 4, "resumed": 5}
    assert "TLS handshakes full / resumed" in render(render_summary(tls))
    assert "TLS handshakes" not in render(render_summary(clean))


def test_progress_line():
    stats = {"connected": 7, "booted": 5, "errors": 1, "elapsed_s": 3.25, "sent": 1, "received": 1}
    text = progress_line(stats, invalid=2, chargers=10, duration=60, msgs_per_s=12_345).plain
    assert "3.2/60s" in text and "connected 7/10" in text and "booted 5/10" in text
    assert "12.3k msg/s" in text and "errors 3" in text


def test_charging_profile_counts_are_summed_over_processes_and_shown():
    def counts(received, accepted, rejected):
        return {"received": received, "accepted": accepted, "rejected": rejected, "invalid": 0, "cleared": 1}

    a = process_report(charging_profiles=counts(5, 4, 1))
    b = process_report(charging_profiles=counts(3, 1, 2))
    r = finish_report(merge_reports([a, b]))
    assert r["charging_profiles"] == {"received": 8, "accepted": 5, "rejected": 3, "invalid": 0, "cleared": 2}
    text = render(render_summary(r))
    for needle in ("charging profiles received", "charging profiles rejected"):
        assert needle in text, needle
    none = render(render_summary(finish_report(merge_reports([process_report()]))))
    assert "charging profiles received" not in none
