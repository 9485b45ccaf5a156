"""`ampgate firmware status CAMPAIGN_ID [--watch]`: a campaign's progress for an operator at a terminal, one bar
per group (rich), read from the operator API (GET /api/v1/firmware/campaigns/{id}) with a viewer token or better.

It reads the HTTP API rather than the database so it works from any machine that can reach the API, with the
token's role checked as for any client, and shows exactly what the API shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

# The environment variable the token is taken from when --token is not given (a token on the command line shows
# in `ps` and the shell history).
TOKEN_ENV = "AMPGATE_TOKEN"
# --watch refreshes this often: the counts change at most as fast as chargers report.
WATCH_INTERVAL_S = 2.0
DONE = ("installed", "failed", "timed_out", "skipped", "superseded")
FINAL_STATES = ("finished", "cancelled")


def add_parser(sub: argparse._SubParsersAction) -> None:
    fw = sub.add_parser("firmware", help="firmware campaigns")
    fsub = fw.add_subparsers(dest="firmware_command", required=True)
    st = fsub.add_parser("status", help="a campaign's progress, one bar per group")
    st.add_argument("campaign_id", type=int)
    st.add_argument(
        "--watch", action="store_true", help="refresh until the campaign is finished or cancelled"
    )
    st.add_argument("--api-url", default="http://127.0.0.1:8080", help="the operator API's base URL")
    st.add_argument("--token", default=None, help=f"an API token (default: ${TOKEN_ENV})")


def render(c: dict[str, Any]) -> Group:
    """The campaign as a title line and a table: one row per group with its bar (done of total), and the
    counts per state."""
    title = Text.assemble(
        (f"campaign {c['id']}", "bold"),
        f" {c.get('name') or ''} ",
        (c["state"], "green" if c["state"] in ("running", "finished") else "yellow"),
    )
    if c.get("paused_reason"):
        title.append(f"  ({c['paused_reason']})", "yellow")
    table = Table(show_edge=False, pad_edge=False)
    for col in (
        "group",
        "state",
        "progress",
        "done",
        "installed",
        "failed",
        "timed out",
        "skipped",
        "in flight",
    ):
        table.add_column(col)
    for g in c["groups"]:
        n = g["counts"]
        total = sum(n.values())
        done = sum(n.get(s, 0) for s in DONE)
        in_flight = sum(n.get(s, 0) for s in ("dispatched", "downloading", "downloaded", "installing"))
        table.add_row(
            f"{g['index']} {g['kind']}",
            g["state"],
            ProgressBar(total=max(total, 1), completed=done, width=30),
            f"{done}/{total}",
            str(n.get("installed", 0)),
            str(n.get("failed", 0)),
            str(n.get("timed_out", 0)),
            str(n.get("skipped", 0)),
            str(in_flight),
        )
    return Group(title, table)


class Refused(Exception):
    """The API answered with an error (its status and message)."""


def _fetch(client: httpx.Client, campaign_id: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/firmware/campaigns/{campaign_id}")
    if r.status_code != 200:
        try:
            message = r.json().get("message", r.text)
        except ValueError:
            message = r.text
        raise Refused(f"ampgate: {r.status_code}: {message}")
    body: dict[str, Any] = r.json()
    return body


def run_status(a: argparse.Namespace) -> int:
    """Print the campaign once, or (--watch) live until it is finished or cancelled. Exit 2 without a token, 1
    when the API refuses (the message printed)."""
    token = a.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(f"ampgate: give --token or set {TOKEN_ENV}", file=sys.stderr)
        return 2
    console = Console()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=a.api_url, headers=headers, timeout=10) as client:
            c = _fetch(client, a.campaign_id)
            if not a.watch:
                console.print(render(c))
                return 0
            with Live(render(c), console=console, refresh_per_second=4) as live:
                while c["state"] not in FINAL_STATES:
                    time.sleep(WATCH_INTERVAL_S)
                    c = _fetch(client, a.campaign_id)
                    live.update(render(c))
    except Refused as e:
        print(e, file=sys.stderr)
        return 1
    except httpx.HTTPError as e:
        print(f"ampgate: cannot reach {a.api_url}: {e}", file=sys.stderr)
        return 1
    return 0
