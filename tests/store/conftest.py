"""Store fixtures: a database path per test and a runner that executes a trio body against a running store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from ampgate.store import Store

T = TypeVar("T")

Runner = Callable[[Callable[[Store], Awaitable[Any]]], Any]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "ampgate.db")


def run_store(path: str, body: Callable[[Store], Awaitable[T]], store: Store | None = None) -> T:
    """Open (or use) a store, start its run() in a nursery, await `body(store)`, then cancel run() (which
    flushes the writer). Returns what `body` returned."""

    async def main() -> T:
        s = store or Store(path)
        async with trio.open_nursery() as nursery:
            await nursery.start(s.run)
            result = await body(s)
            nursery.cancel_scope.cancel()
        return result

    return trio.run(main)


@pytest.fixture
def running(db_path: str) -> Runner:
    """`running(body)`: run `body(store)` against a fresh running store on `db_path`."""
    return lambda body: run_store(db_path, body)
