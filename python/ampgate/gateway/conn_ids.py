"""Connection ids: a u64 carrying the worker slot, the worker's generation and a sequence, never reused."""

from __future__ import annotations

# conn_id layout, mirrored from rust/gateway/link.rs: worker (8 bits) | generation (16 bits) | sequence (40 bits).
_SEQ_BITS = 40
_GEN_BITS = 16


def worker_of(conn_id: int) -> int:
    """The worker slot that holds `conn_id`."""
    return conn_id >> (_SEQ_BITS + _GEN_BITS)


def generation_of(conn_id: int) -> int:
    """The generation of that worker slot's process when `conn_id` was made."""
    return (conn_id >> _SEQ_BITS) & ((1 << _GEN_BITS) - 1)
