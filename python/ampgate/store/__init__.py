"""The node's database (SQLite, WAL): chargers and API tokens.

Owns its tables and the one writer thread. Writes are ops queued to that thread and committed in groups
(`Store.submit` fire-and-forget, `await Store.write` to wait for the commit); reads are short indexed queries on
the trio thread. Nothing else in the node opens the database.
"""

from ampgate.store.chargers import ChargerRow, validate_charger_id, validate_password
from ampgate.store.hashing import hash_password, verify_password
from ampgate.store.store import Store
from ampgate.store.tokens import ROLES, role_at_least
from ampgate.store.writer import StoreClosedError, WriterStats

__all__ = [
    "ROLES",
    "ChargerRow",
    "Store",
    "StoreClosedError",
    "WriterStats",
    "hash_password",
    "role_at_least",
    "validate_charger_id",
    "validate_password",
    "verify_password",
]
