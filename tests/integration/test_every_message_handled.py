"""Every message a charger may send, in either version, has a handler in the node as it is built: nothing a
charger sends is answered NotSupported (shared/OCPP-NOTES.md, issue 9). Only what the central system alone sends
is refused, by the error table (tests/integration/test_callerrors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ampgate.config import NodeConfig
from ampgate.node import Node
from ampgate.ocpp import v16, v201


@pytest.mark.parametrize(("protocol", "module"), [("ocpp1.6", v16), ("ocpp2.0.1", v201)])
def test_every_charger_initiated_action_has_a_handler(tmp_path: Path, protocol: str, module: object) -> None:
    node = Node(NodeConfig(db_path=str(tmp_path / "node.db"), public_base_url="http://cs.test"))
    try:
        unhandled = sorted(a for a in module.CHARGER_INITIATED if not node.router.handles(protocol, a))  # type: ignore[attr-defined]
    finally:
        node.store.close()
    assert unhandled == []
