"""The public listener of a real node against its own OpenAPI document (`/public/v1/schema/openapi.json`,
schemathesis): every operation the document lists, with generated requests, then hand-made requests that reach
what generated ones cannot (a real firmware image's token with Range headers, real one-time upload tokens, an
opted-in site with a priced EVSE, a rate limit run out). No response is a 500, every status code is one the
document lists for the operation, and every JSON body matches the schema the document gives for it. Seeded, a
bounded number of examples per operation.

Generated requests cannot guess the random tokens in firmware and upload paths, so each such operation is also
run with the real token in its path (generated Range headers on a real file, generated bodies on a real upload);
the hand-made cases cover the answers generation does not reliably reach (206, 409, 413, 416, a priced site).
Each operation's requests come from their own loopback address (127.0.0.N): every public route is rate-limited
per client address, and one shared address would have most generated requests answered 429 before they reach a
handler. OCPI is not in the document (it has its own specification; docs/api.md) and is not fuzzed here."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import websockets.sync.client as ws_client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import RunningNode, start_node
from tests.integration.ocpp_clients import boot_payload, call

# Generated requests per operation and kind (valid, invalid, valid with the real token): ~300 in all, ~7 s here.
EXAMPLES_PER_OPERATION = int(os.environ.get("ST_EX", "10"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# What the node tells chargers; the test reaches the same listener on loopback.
BASE = "http://pub.example.test"
MAX_UPLOAD = 4096
IMAGE = os.urandom(3000)
CHARGER = "CP-PUB"
SITE = "PUB"


class FromAddress(HTTPAdapter):
    """Connects from one loopback address (Linux routes all of 127/8 to the loopback interface)."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.host, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(n: int) -> requests.Session:
    """A requests session whose connections come from 127.0.0.<n> (n from 2 to 254)."""
    session = requests.Session()
    session.mount("http://", FromAddress(f"127.0.0.{n}"))
    return session


@dataclass
class Seeded:
    """What the node was given before the run: a firmware image (its token and file name) and one-time upload
    tokens for a log request each."""

    node: RunningNode
    image_token: str
    image_name: str
    upload_tokens: list[str]

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.node.public_port}"


def _answer_calls(ws: Any, locations: list[str], stop: threading.Event) -> None:
    """A 1.6 charger's side of GetLog (Accepted) and GetDiagnostics: the upload URL of each is kept."""
    while not stop.is_set():
        try:
            message = json.loads(ws.recv(timeout=0.2))
        except TimeoutError:
            continue
        except Exception:
            return
        if message[0] != 2:
            continue
        _, uid, action, payload = message
        if action == "GetLog":
            locations.append(payload["log"]["remoteLocation"])
            ws.send(json.dumps([3, uid, {"status": "Accepted", "filename": "station.log"}]))
        elif action == "GetDiagnostics":
            locations.append(payload["location"])
            ws.send(json.dumps([3, uid, {"fileName": "diag.zip"}]))
        else:
            ws.send(json.dumps([4, uid, "NotImplemented", "", {}]))


def _rpc(ws: Any, action: str, payload: dict[str, Any]) -> Any:
    uid, text = call(action, payload)
    ws.send(text)
    while True:
        reply = json.loads(ws.recv(timeout=10))
        if reply[0] == 3 and reply[1] == uid:
            return reply[2]


def seed(node: RunningNode) -> Seeded:
    with node.api() as api:
        r = api.post(
            "/firmware/images",
            data={"version": "1.0.0", "vendor": "TestVendor"},
            files={"file": ("fw.bin", IMAGE, "application/octet-stream")},
        )
        assert r.status_code == 201, r.text
        *_, image_token, image_name = r.json()["location"].split("/")
        site = {
            "id": SITE,
            "name": "Public site",
            "phase_limits_a": [63, 63, 63],
            "time_zone": "Europe/Amsterdam",
            "location": {
                "lat": 52.09,
                "lon": 5.11,
                "address": "Stationsplein 1",
                "city": "Utrecht",
                "postal_code": "3511 ED",
                "country": "NLD",
            },
            "public_recommendations": True,
        }
        assert api.post("/sites", json=site).status_code == 201
        assert api.post("/chargers", json={"id": CHARGER}).status_code == 201
        r = api.put(f"/chargers/{CHARGER}/placement", json={"node_id": SITE, "phases": "L1", "max_a": 32})
        assert r.status_code == 200, r.text
        tariff = {
            "id": "T1",
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [
                        {"type": "ENERGY", "price": 0.30, "vat": 21},
                        {"type": "PARKING_TIME", "price": 2.00, "vat": 21, "step_size": 300},
                    ],
                    "restrictions": {"max_duration": 7200},
                },
                {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 21}]},
            ],
            "tariff_alt_text": [{"language": "de", "text": "Parken ab 2 Std. teurer"}],
        }
        r = api.post("/tariffs", json=tariff)
        assert r.status_code == 201, r.text
        assert api.put(f"/sites/{SITE}/tariff", json={"tariff_id": "T1"}).status_code == 200

        locations: list[str] = []
        with ws_client.connect(f"{node.ocpp_url}/{CHARGER}", subprotocols=["ocpp1.6"]) as ws:
            assert _rpc(ws, "BootNotification", boot_payload("ocpp1.6"))["status"] == "Accepted"
            for connector in (1, 2):
                _rpc(
                    ws,
                    "StatusNotification",
                    {"connectorId": connector, "errorCode": "NoError", "status": "Available"},
                )
            stop = threading.Event()
            answering = threading.Thread(target=_answer_calls, args=(ws, locations, stop), daemon=True)
            answering.start()
            try:
                for _ in range(4):
                    r = api.post(f"/chargers/{CHARGER}/logs", json={"log_type": "DiagnosticsLog"})
                    assert r.status_code == 201, r.text
            finally:
                stop.set()
                answering.join(5)
        assert len(locations) == 4, locations
        assert all(url.startswith(f"{BASE}/public/v1/uploads/") for url in locations), locations
    return Seeded(node, image_token, image_name, [url.rsplit("/", 1)[-1] for url in locations])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    node = start_node(
        Path(tmp_path_factory.mktemp("public-schemathesis")),
        "--public-base-url",
        BASE,
        "--max-upload-bytes",
        str(MAX_UPLOAD),
    )
    try:
        yield seed(node)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def schema(seeded: Seeded) -> Any:
    return schemathesis.openapi.from_url(f"{seeded.public_url}/public/v1/schema/openapi.json")


def validate(case: Any, seeded: Seeded, session: requests.Session) -> tuple[Any, str | None]:
    """Send `case` and run the checks: the response, and the failure (None: it passed)."""
    try:
        response = case.call_and_validate(
            base_url=seeded.public_url, session=session, checks=CHECKS, timeout=15
        )
    except (AssertionError, FailureGroup) as e:  # schemathesis' failures (one or a group of them)
        return None, f"{case.operation.label}: {str(e)[:1500]}"
    return response, None


def fuzz_operation(strategy: Any, seeded: Seeded, session: requests.Session, examples: int) -> list[str]:
    """Run `examples` generated requests of one operation; the failures, each with the request."""
    failures: list[str] = []

    @settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        _, failure = validate(case, seeded, session)
        if failure:
            failures.append(failure)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (a route without parameters or body)
        pass
    return failures


def strategies(operation: Any, seeded: Seeded) -> list[Any]:
    """What to generate for one operation: valid requests, valid requests with the path's random tokens (or
    the site id) of what the node holds, so that generated headers and bodies reach past the 404 (a firmware
    download's Range and If-Range, an upload's body), and invalid requests."""
    path = operation.path
    real: dict[str, str] = {}
    if path.startswith("/firmware/files/"):
        real = {"token": seeded.image_token, "name": seeded.image_name}
    elif path.startswith("/public/v1/uploads/"):
        real = {"token": seeded.upload_tokens[-1]}  # the first success takes it: 409 after
    elif path == "/public/v1/locations/{site_id}":
        real = {"site_id": SITE}
    found = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
    if real:
        found.append(operation.as_strategy(path_parameters=real))
    return found


def test_the_public_listener_matches_its_openapi_document(seeded: Seeded, schema: Any) -> None:
    failures: list[str] = []
    labels = []
    address = 2
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        for strategy in strategies(operation, seeded):
            session = session_from(address)
            address += 1
            failures += fuzz_operation(strategy, seeded, session, EXAMPLES_PER_OPERATION)
    assert set(labels) >= {
        "GET /public/v1/health",
        "GET /public/v1/recommendations",
        "GET /public/v1/locations",
        "GET /public/v1/locations/{site_id}",
        "GET /firmware/files/{token}/{name}",
        "HEAD /firmware/files/{token}/{name}",
        "PUT /public/v1/uploads/{token}",
        "POST /public/v1/uploads/{token}",
        "PUT /public/v1/uploads/{token}/{name}",
        "POST /public/v1/uploads/{token}/{name}",
    }, labels
    assert not any("/ocpi" in label or "/schema" in label for label in labels), labels
    assert seeded.node.proc.poll() is None
    assert not failures, "\n\n".join(failures[:20]) + f"\n\n{len(failures)} failures"


def test_the_answers_generated_requests_cannot_reach_match_the_document(seeded: Seeded, schema: Any) -> None:
    """Real tokens and a real site, through the same checks: each case's status is asserted too, so a case
    that stopped reaching its answer would fail rather than pass unseen."""
    session = session_from(200)
    download = schema["/firmware/files/{token}/{name}"]["GET"]
    probe = schema["/firmware/files/{token}/{name}"]["HEAD"]
    image = {"token": seeded.image_token, "name": seeded.image_name}
    size = len(IMAGE)
    put, post = schema["/public/v1/uploads/{token}"]["PUT"], schema["/public/v1/uploads/{token}"]["POST"]
    named_put = schema["/public/v1/uploads/{token}/{name}"]["PUT"]
    first, second, third, _ = seeded.upload_tokens
    locations, one = schema["/public/v1/locations"]["GET"], schema["/public/v1/locations/{site_id}"]["GET"]
    cases = [
        (download.Case(path_parameters=image), 200),
        (download.Case(path_parameters=image, headers={"Range": "bytes=0-99"}), 206),
        (download.Case(path_parameters=image, headers={"Range": "bytes=-10"}), 206),
        (download.Case(path_parameters=image, headers={"Range": f"bytes={size}-"}), 416),
        (download.Case(path_parameters=image, headers={"Range": "bytes=0-9", "If-Range": '"x"'}), 200),
        (download.Case(path_parameters={**image, "name": "other.bin"}), 404),
        # Found by hand reading what the fuzz reached (a 500 each before the fix): a position of more digits
        # than int() converts (4,300), and a cursor of JSON nested past json.loads' recursion limit.
        (download.Case(path_parameters=image, headers={"Range": f"bytes={'9' * 5000}-"}), 416),
        (download.Case(path_parameters=image, headers={"Range": f"bytes=0-{'9' * 5000}"}), 206),
        (download.Case(path_parameters=image, headers={"Range": f"bytes=-{'9' * 5000}"}), 206),
        (locations.Case(query={"cursor": base64.urlsafe_b64encode(b"[" * 5000).decode()}), 422),
        (probe.Case(path_parameters=image), 200),
        (
            put.Case(
                path_parameters={"token": first},
                body=b"x" * (MAX_UPLOAD + 1),
                media_type="application/octet-stream",
            ),
            413,
        ),
        (put.Case(path_parameters={"token": first}, body=b"log", media_type="application/octet-stream"), 200),
        (
            put.Case(path_parameters={"token": first}, body=b"again", media_type="application/octet-stream"),
            409,
        ),
        (
            post.Case(
                path_parameters={"token": second},
                body={"file": b"diagnostics"},
                media_type="multipart/form-data",
            ),
            200,
        ),
        (
            named_put.Case(
                path_parameters={"token": third, "name": "diag.zip"},
                body=b"zip",
                media_type="application/octet-stream",
            ),
            200,
        ),
        (locations.Case(), 200),
        (locations.Case(query={"lat": "52.09", "lon": "5.11", "radius_km": "5", "available": "true"}), 200),
        (locations.Case(query={"lat": "52.09"}), 422),
        (one.Case(path_parameters={"site_id": SITE}, headers={"Accept-Language": "de"}), 200),
        (one.Case(path_parameters={"site_id": "NOPE"}), 404),
        (schema["/public/v1/recommendations"]["GET"].Case(query={"lat": "52.09", "lon": "5.11"}), 200),
    ]
    failures = []
    for case, status in cases:
        response, failure = validate(case, seeded, session)
        if failure:
            failures.append(failure)
        elif response.status_code != status:
            failures.append(f"{case.operation.label} {case.headers}: {response.status_code}, not {status}")
    assert not failures, "\n\n".join(failures)

    # What the cases put there: the site with its priced EVSEs, and the uploads stored whole (besides the one the
    # generated requests may have made with the last token).
    site = httpx.get(f"{seeded.public_url}/public/v1/locations/{SITE}", timeout=10).json()
    assert site["evses"] and all(e["price"]["currency"] == "EUR" for e in site["evses"]), site
    with seeded.node.api() as api:
        logs = api.get(f"/chargers/{CHARGER}/logs").json()["items"]
    stored = {i["file"]["sha256"] for i in logs if i.get("file")}
    assert {hashlib.sha256(b).hexdigest() for b in (b"log", b"diagnostics", b"zip")} <= stored, logs


def test_a_rate_limited_answer_matches_the_document(seeded: Seeded, schema: Any) -> None:
    health = schema["/public/v1/health"]["GET"]
    session = session_from(201)
    for _ in range(50):
        response, failure = validate(health.Case(), seeded, session)
        assert failure is None, failure
        if response.status_code == 429:
            assert response.json()["code"] == "too_many_requests"
            return
    pytest.fail("the health route's rate limit never answered 429")
