"""What the simulator's tests read from a real node: every page of a list, the chargers by id, and polling the
node (whose store writes lag the chargers' replies) until something holds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest


def all_pages(node, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of the list at `path` (with the list's own filters `params`), page after page."""
    items: list[dict[str, Any]] = []
    cursor = None
    with node.api() as api:
        while True:
            query: dict[str, Any] = {"limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
            r = api.get(path, params=query)
            assert r.status_code == 200, r.text
            items += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if not cursor:
                return items


def chargers(node, **filters: str) -> dict[str, dict[str, Any]]:
    """Every charger the node lists (with the list's own filters), by id."""
    return {c["id"]: c for c in all_pages(node, "/chargers", **filters)}


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def wait_for(what: str, sim: subprocess.Popen | None, check: Callable[[], Any], timeout: float) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` s, or as soon as the simulator
    (when given) exits first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if sim is not None and sim.poll() is not None:
            pytest.fail(f"the simulator exited ({sim.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:g} s")
        time.sleep(0.1)
