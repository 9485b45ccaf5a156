"""How long the read behind the campaign summary takes at fleet scale (the store side of GET
/api/v1/firmware/campaigns/{id}; the HTTP layer's own time is not in it): it is answered from the per-group
per-state counters that every charger transition moves in the same write, never from the charger rows.
Compared in the same run with the scan it replaces (`SELECT state, count(*) … GROUP BY state` over the
campaign's rows), after moving a tenth of the chargers through a few transitions each so the counters have been
written the way a running campaign writes them.

    .venv/bin/python bench/campaign_summary.py --chargers 100000 --json bench/results/campaign-summary.json

Prints JSON and a table. Target: the summary in ≤ 50 ms at 100k chargers (issue 13), p99 here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from ampgate.campaigns import charger as ch  # noqa: E402
from ampgate.campaigns.model import CampaignSpec, split  # noqa: E402
from ampgate.campaigns.repository import CampaignRepository, Member, Transition, read_groups, total  # noqa: E402
from ampgate.store import Store  # noqa: E402
from ampgate.store.schema import connect  # noqa: E402

TARGET_MS = 50.0
SAMPLES = 200


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def main(chargers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/bench.db")
        repo = CampaignRepository(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            spec = msgspec.convert(
                {
                    "image_id": 1,
                    "selector": {"vendor": "V"},
                    "canary": {"count": 100},
                    "groups": [{"percent": 10}, {"percent": 40}, {"percent": 50}],
                },
                CampaignSpec,
            )
            row = await repo.create(spec)
            ids = [f"CP{i}" for i in range(chargers)]
            parts = split(ids, spec.canary, spec.groups)
            groups = [(kind, [Member(c, None, ch.Progress()) for c in part]) for kind, part in
                      zip(["canary", "group", "group", "group"], parts, strict=True)]  # fmt: skip
            t0 = time.perf_counter()
            await repo.freeze(row.id, groups, "running")
            freeze_s = time.perf_counter() - t0
            # A tenth of the fleet through dispatch, two statuses and the boot, as the runner writes them.
            moved = ids[: chargers // 10]
            t0 = time.perf_counter()
            group_of = {cid: i for i, part in enumerate(parts) for cid in part}
            for n, cid in enumerate(moved):
                g = group_of[cid]
                p0 = ch.Progress()
                p1 = ch.dispatch(
                    p0, protocol=ch.OCPP201, action=ch.UPDATE_FIRMWARE, request_id=n + 1, at=store.now()
                )
                p2 = msgspec.structs.replace(p1, state=ch.DOWNLOADING)
                p3 = msgspec.structs.replace(p2, state=ch.INSTALLING)
                p4 = msgspec.structs.replace(p3, state=ch.INSTALLED)
                for old, new in ((p0, p1), (p1, p2), (p2, p3), (p3, p4)):
                    repo.submit_transition(
                        Transition(
                            campaign_id=row.id,
                            charger_id=cid,
                            group_index=g,
                            old_state=old.state,
                            progress=new,
                        )
                    )
            await repo.create(
                spec
            )  # a write behind all the submitted ones: they have committed when it returns
            transitions_s = time.perf_counter() - t0
            nursery.cancel_scope.cancel()
        # The store is closed now; read as the API does, with a read-only connection of the same settings.
        reader = connect(f"{tmp}/bench.db", query_only=True)
        counters, scans = [], []
        summary_counts: dict[str, int] = {}
        for _ in range(SAMPLES):
            t0 = time.perf_counter()
            groups_read = read_groups(reader, row.id)
            summary_counts = total({g.index: g.counts for g in groups_read})
            counters.append((time.perf_counter() - t0) * 1000)
        for _ in range(max(5, SAMPLES // 20)):
            t0 = time.perf_counter()
            scanned = dict(
                reader.execute(
                    "SELECT state, count(*) FROM campaign_chargers WHERE campaign_id = ? GROUP BY state",
                    (row.id,),
                ).fetchall()
            )
            scans.append((time.perf_counter() - t0) * 1000)
        reader.close()
    assert {k: v for k, v in summary_counts.items() if v} == scanned, (summary_counts, scanned)
    return {
        "chargers": chargers,
        "transitions": 4 * len(moved),
        "freeze_s": round(freeze_s, 3),
        "transitions_per_s": round(4 * len(moved) / transitions_s),
        "summary_ms_p50": round(statistics.median(counters), 3),
        "summary_ms_p99": round(p(counters, 0.99), 3),
        "scan_ms_p50": round(statistics.median(scans), 3),
        "target_ms": TARGET_MS,
        "ok": p(counters, 0.99) <= TARGET_MS,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chargers", type=int, default=100_000)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    out = trio.run(main, a.chargers)
    text = json.dumps(out, indent=2)
    print(text)
    if a.json is not None:
        a.json.write_text(text + "\n")
    print(f"\n{'':28}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'summary from counters':28}{out['summary_ms_p50']:>10}{out['summary_ms_p99']:>10}")
    print(f"{'scan of the charger rows':28}{out['scan_ms_p50']:>10}{'':>10}")
    print(
        f"freeze {out['chargers']} chargers: {out['freeze_s']} s; transitions written: {out['transitions_per_s']}/s"
    )
