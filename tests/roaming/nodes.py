"""Helpers for the OCPI tests against a real node: a node with --ocpi-* on a known public port, sites and
chargers added through the operator API, the eMSP's GET and registration, the node's tables read beside it."""

from __future__ import annotations

import socket
from typing import Any

from .emsp import Emsp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ocpi_node(node_factory: Any, *extra: str, db: Any = None) -> Any:
    port = _free_port()
    node = node_factory(
        "--public-port",
        str(port),
        "--public-base-url",
        f"http://127.0.0.1:{port}",
        "--ocpi-country-code",
        "nl",
        "--ocpi-party-id",
        "AMP",
        *extra,
        db=db,
    )
    node.ocpi = f"http://127.0.0.1:{port}/ocpi"
    return node


def add_site(
    api: Any, site_id: str, *, address: str | None = "Stationsplein 1", lat: float = 52.0894
) -> None:
    location: dict[str, Any] = {
        "lat": lat,
        "lon": 5.11,
        "city": "Utrecht",
        "country": "NLD",
        "postal_code": "3511",
    }
    if address is not None:
        location["address"] = address
    r = api.post(
        "/sites",
        json={
            "id": site_id,
            "name": f"Site {site_id}",
            "phase_limits_a": [63, 63, 63],
            "time_zone": "Europe/Amsterdam",
            "location": location,
        },
    )
    assert r.status_code == 201, r.text


def add_charger(api: Any, charger_id: str, site_id: str, evses: list[dict[str, Any]] | None = None) -> None:
    assert api.post("/chargers", json={"id": charger_id}).status_code in (200, 201)
    r = api.put(
        f"/chargers/{charger_id}/placement", json={"node_id": site_id, "phases": "L1L2L3", "max_a": 32}
    )
    assert r.status_code == 200, r.text
    if evses is not None:
        r = api.put(f"/chargers/{charger_id}/connectors", json={"evses": evses})
        assert r.status_code == 200, r.text


def t2(evse_id: int, connector_id: int | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "evse_id": evse_id,
        "connectors": [
            {
                "connector_id": connector_id or evse_id,
                "standard": "IEC_62196_T2",
                "format": "SOCKET",
                "power_type": "AC_3_PHASE",
                "max_voltage": 230,
                "max_amperage": 32,
                "max_electric_power": 22000,
            }
        ],
        **kw,
    }


def get(emsp: Emsp, url: str, token: str | None = None, **kw: Any) -> Any:
    return emsp.call("GET", url, token or emsp.cpo_token or "", **kw)


def emsp_registers(node: Any, emsp: Emsp) -> dict[str, Any]:
    """An admin adds the eMSP as a party; it registers with us with the registration token (so it knows our
    endpoints and we know its). Returns the party as the API shows it."""
    with node.api() as api:
        party = api.post("/ocpi/parties", json={"country_code": "NL", "party_id": "EMP"}).json()
    answer = emsp.register_with(f"{node.ocpi}/versions", party["token_a"])
    assert answer.status_code == 200 and answer.json()["status_code"] == 1000, answer.text
    return dict(party)


def db_rows(node: Any, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of the node's database as dicts (read beside the running node: WAL lets a reader in)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{node.db}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()
