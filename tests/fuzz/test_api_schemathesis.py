"""The operator API of a real node against its own OpenAPI document (schemathesis): every operation, with
generated valid and invalid requests under the admin token; no response is a 500, every status code is one the
document lists, and every response body matches the schema the document gives for it. Seeded, a bounded number
of examples per operation.

The public listener has its own document and its own run (tests/fuzz/test_public_schemathesis.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import RunningNode, start_node

# Examples per operation: every operation x this many requests takes about 45 s here (the budget is two minutes).
EXAMPLES_PER_OPERATION = int(__import__("os").environ.get("ST_EX", "8"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Operations that would make further testing impossible, by label. Revoking a token: token ids are small integers,
# so a generated id can name the admin token this run uses and every later request is 401 (revocation has its own
# tests in tests/api). The node has no shutdown route.
EXCLUDED: frozenset[str] = frozenset({"POST /api/v1/tokens/{id}/revoke"})


@pytest.fixture(scope="module")
def api_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    node = start_node(Path(tmp_path_factory.mktemp("schemathesis")))
    yield node
    node.stop()


def check_operation(operation, node: RunningNode) -> list[str]:
    """Run EXAMPLES_PER_OPERATION generated requests of one operation; the failures, each with the request."""
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {node.admin_token}"}

    @settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=EXAMPLES_PER_OPERATION,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case) -> None:
        try:
            case.call_and_validate(
                base_url=f"http://127.0.0.1:{node.api_port}", headers=headers, checks=CHECKS, timeout=15
            )
        except (AssertionError, FailureGroup) as e:  # schemathesis' failures (one or a group of them)
            failures.append(f"{operation.label}: {str(e)[:1500]}")

    run()
    return failures


def test_api_matches_its_openapi_document(api_node: RunningNode) -> None:
    schema = schemathesis.openapi.from_url(
        f"{api_node.api_url}/schema/openapi.json",
        headers={"Authorization": f"Bearer {api_node.admin_token}"},
    )
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in EXCLUDED:
            continue
        operations += 1
        failures += check_operation(operation, api_node)
    assert operations > 50
    assert api_node.proc.poll() is None
    assert not failures, "\n\n".join(failures[:20]) + f"\n\n{len(failures)} failures"


# -- regressions of what the run found ---------------------------------------------------------------------------


def test_an_id_beyond_64_bits_is_404_naming_it(api_node: RunningNode) -> None:
    # Found by the run above: handed to SQLite, such an id raised OverflowError (500) on eight routes.
    with api_node.api() as api:
        api.post("/chargers", json={"id": "ID64", "password": None})
        for path, field in [
            (f"/chargers/ID64/logs/{2**70}", "log_id"),
            (f"/chargers/ID64/customer-information/{2**63}", "request_id"),
            (f"/firmware/campaigns/{-(2**63) - 1}/progress", "campaign_id"),
        ]:
            r = api.get(path)
            assert (r.status_code, r.json()["code"], r.json()["field"]) == (404, "not_found", field), r.text
        assert (
            api.get(f"/chargers/ID64/logs/{2**63 - 1}").status_code == 404
        )  # in range: looked up, not there


def test_charger_scoped_lists_document_their_404(api_node: RunningNode) -> None:
    # Found by the run above: both answer 404 for an unknown charger without saying so in the document.
    doc = api_node.get("/schema/openapi.json").json()
    for path in (
        "/api/v1/chargers/{charger_id}/transactions",
        "/api/v1/chargers/{charger_id}/security-events",
    ):
        assert "404" in doc["paths"][path]["get"]["responses"], path
        assert api_node.get(path.replace("/api/v1", "").replace("{charger_id}", "NOPE")).status_code == 404
