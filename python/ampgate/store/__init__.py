"""The node's database (SQLite, WAL), knowing no protocol: `Store` (the file, its one writer thread, its reader)
and a repository per feature's tables (chargers, API tokens, id tokens, transactions, connector status).

Writes are ops queued to the writer thread and committed in groups (fire-and-forget, or awaited until the
commit); reads are short indexed queries on the trio thread. Nothing else in the node opens the database, and
nothing outside a repository writes SQL.
"""

from ampgate.store.api_tokens import ROLES, ApiTokenRepository, ApiTokenRow, role_at_least
from ampgate.store.chargers import (
    BootReport,
    ChargerRepository,
    ChargerRow,
    charger_id_allowed,
    normalize_charger_id,
    validate_charger_id,
    validate_password,
)
from ampgate.store.connector_status import ConnectorStatusRepository, ConnectorStatusRow, StatusReport
from ampgate.store.hashing import hash_password, verify_password
from ampgate.store.id_tokens import IdTokenRepository, IdTokenRow
from ampgate.store.store import PendingWrite, Store, StoreCondition
from ampgate.store.transactions import (
    Sample,
    SampleKey,
    SignedValue,
    TransactionChange,
    TransactionRepository,
    TransactionRow,
    TransactionStart,
    TransactionStop,
)
from ampgate.store.writer import SYNC_MODES, StoreClosedError, SyncMode, WriterStats

__all__ = [
    "ROLES",
    "SYNC_MODES",
    "ApiTokenRepository",
    "ApiTokenRow",
    "BootReport",
    "ChargerRepository",
    "ChargerRow",
    "ConnectorStatusRepository",
    "ConnectorStatusRow",
    "IdTokenRepository",
    "IdTokenRow",
    "PendingWrite",
    "Sample",
    "SampleKey",
    "SignedValue",
    "StatusReport",
    "Store",
    "StoreClosedError",
    "StoreCondition",
    "SyncMode",
    "TransactionChange",
    "TransactionRepository",
    "TransactionRow",
    "TransactionStart",
    "TransactionStop",
    "WriterStats",
    "charger_id_allowed",
    "hash_password",
    "normalize_charger_id",
    "role_at_least",
    "validate_charger_id",
    "validate_password",
    "verify_password",
]
