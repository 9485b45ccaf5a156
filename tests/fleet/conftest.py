"""Fleet fixtures: the store's runner (a fresh running store per test)."""

from tests.store.conftest import db_path, running

__all__ = ["db_path", "running"]
