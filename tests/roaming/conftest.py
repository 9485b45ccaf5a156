"""The in-repo eMSP, started on a free port for a test and stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .emsp import Emsp


@pytest.fixture
def emsp() -> Iterator[Emsp]:
    e = Emsp().start()
    yield e
    e.stop()
