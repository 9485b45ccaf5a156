"""Per-message cost of handling an OCPP CALL: ampgate's router vs the `ocpp` package's own path, in one run.

    python bench/ocpp_messages.py [--json OUT] [--seconds S] [--runs R] [--quick]

One figure per message = decode the OCPP-J envelope + validate the payload + dispatch to a handler + encode the
CALLRESULT, for three charger-initiated CALLs:

  heartbeat_16         1.6  Heartbeat `[2,"id","Heartbeat",{}]`
  meter_values_16      1.6  MeterValues, one meterValue with 10 sampledValues (energy, power, current and
                            voltage per phase, offered current, SoC)
  transaction_event_201  2.0.1 TransactionEvent Updated with the same 10 sampledValues, transactionInfo, evse,
                            idToken, seqNo, timestamp, triggerReason

ours:   `OcppRouter.handle(session, data)` on the node's router, built in-process as the node builds it (boot
        policy, router, boot and heartbeat handlers; no sockets, no store, no running trio loop: a session is
        opened directly). The handler is the node's own when it answers synchronously (Heartbeat); MeterValues
        and TransactionEvent reply after a store commit from a task of the running node, so a stand-in handler
        returning the response Struct is registered with `OcppRouter.register` for them, and every other step is
        still the router's own code. The JSON says which, per case (`ours_path`).
theirs: the `ocpp` package's server-side path for a CALL, i.e. `ChargePoint.route_message` -> `_handle_call`,
        reproduced step by step but synchronously: `unpack` (json.loads into a Call), `_validate_payload`
        (jsonschema Draft4Validator, cached per action as the package caches it), `camel_to_snake_case`, the
        route-map lookup and `inspect.signature` check, the `@on` handler called with snake_case kwargs and
        returning its `call_result` dataclass, `serialize_as_dict` + `remove_nones` + `snake_to_camel_case`,
        `create_call_result`, `_validate_payload` of the response, `to_json()`. No asyncio: the package
        awaits `validate_payload`, which by default runs jsonschema in a thread-pool executor; leaving the
        event loop and the executor hop out is in its favour.

Method: warm up, size N so one run of a case takes about --seconds, time N calls with time.perf_counter_ns in
a plain loop, best of --runs; report ns per message, the ratio theirs / ours, and pass/miss against the issue's
target (>= 30x). The loop's own overhead (~30 ns per call) is included in both figures. Before timing, both
paths handle the same message once and their replies must be the same JSON (exit 1 otherwise). --quick runs a
few iterations only: a correctness check for CI, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import _validate_payload, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as datatypes201
from ocpp.v201 import enums as enums201

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.ocpp import v16, v201
from ampgate.ocpp.boot import BootHandlers
from ampgate.ocpp.boot_policy import BootPolicy
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.outbox import CallManager
from ampgate.ocpp.router import OcppRouter, Session

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "ocpp_messages.json"

# The target: the package's path at least 30x slower than ours per message.
TARGET_RATIO = 30.0
# Seconds one timed run of one case should take: long enough that timer resolution and one-off stalls vanish,
# short enough that 3 cases x 2 paths x 3 runs stay under half a minute.
DEFAULT_SECONDS = 1.0
DEFAULT_RUNS = 3
# Warm-up before sizing N: fills the jsonschema validator cache, msgspec's type caches and the CPU caches.
WARMUP_SECONDS = 0.1
QUICK_ITERATIONS = 20
# The fixed time both sides answer Heartbeat with, so their replies can be compared byte for byte.
NOW_ISO = "2025-06-01T12:00:05.000Z"
NOW = datetime.fromisoformat(NOW_ISO)
CHARGER_ID = "BENCH-CP-1"


# -- the messages -----------------------------------------------------------------------------------------

_TS = "2025-06-01T12:00:00.000Z"
# (measurand, phase, unit, value, location): what a 3-phase AC charger reports every sample interval.
_SAMPLES = [
    ("Energy.Active.Import.Register", None, "Wh", 18342.5, "Outlet"),
    ("Power.Active.Import", None, "W", 10874.0, "Outlet"),
    ("Current.Import", "L1", "A", 15.8, "Outlet"),
    ("Current.Import", "L2", "A", 15.7, "Outlet"),
    ("Current.Import", "L3", "A", 15.9, "Outlet"),
    ("Voltage", "L1-N", "V", 229.8, "Outlet"),
    ("Voltage", "L2-N", "V", 230.4, "Outlet"),
    ("Voltage", "L3-N", "V", 231.1, "Outlet"),
    ("Current.Offered", None, "A", 16.0, "Outlet"),
    ("SoC", None, "Percent", 64.0, "EV"),
]


def _sampled_16() -> list[dict[str, Any]]:
    out = []
    for measurand, phase, unit, value, location in _SAMPLES:
        sv: dict[str, Any] = {
            "value": f"{value:g}",  # 1.6 sends values as strings
            "context": "Sample.Periodic",
            "format": "Raw",
            "measurand": measurand,
            "location": location,
            "unit": unit,
        }
        if phase:
            sv["phase"] = phase
        out.append(sv)
    return out


def _sampled_201() -> list[dict[str, Any]]:
    out = []
    for measurand, phase, unit, value, location in _SAMPLES:
        sv: dict[str, Any] = {
            "value": value,  # 2.0.1 sends numbers
            "context": "Sample.Periodic",
            "measurand": measurand,
            "location": location,
            "unitOfMeasure": {"unit": unit},
        }
        if phase:
            sv["phase"] = phase
        out.append(sv)
    return out


def _frame(action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, "19223201", action, payload], separators=(",", ":"))


HEARTBEAT_16 = _frame("Heartbeat", {})
METER_VALUES_16 = _frame(
    "MeterValues",
    {
        "connectorId": 1,
        "transactionId": 1742,
        "meterValue": [{"timestamp": _TS, "sampledValue": _sampled_16()}],
    },
)
TRANSACTION_EVENT_201 = _frame(
    "TransactionEvent",
    {
        "eventType": "Updated",
        "timestamp": _TS,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 7,
        "transactionInfo": {
            "transactionId": "c0a8f1e2-5b7d-4e21-9a3c-2f6b1d8e4a90",
            "chargingState": "Charging",
        },
        "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"},
        "meterValue": [{"timestamp": _TS, "sampledValue": _sampled_201()}],
    },
)


# -- theirs: the `ocpp` package's path ---------------------------------------------------------------------


class _Central16(ChargePoint16):
    """The package's 1.6 central-system side, with handlers as its README writes them."""

    @on("Heartbeat")
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return result16.Heartbeat(current_time=NOW_ISO)

    @on("MeterValues")
    def on_meter_values(self, connector_id: int, meter_value: list[Any], **kwargs: Any) -> Any:
        return result16.MeterValues()


class _Central201(ChargePoint201):
    @on("TransactionEvent")
    def on_transaction_event(self, event_type: str, timestamp: str, **kwargs: Any) -> Any:
        # The request carried an idToken, so the spec wants idTokenInfo in the response.
        return result201.TransactionEvent(
            id_token_info=datatypes201.IdTokenInfoType(status=enums201.AuthorizationStatusEnumType.accepted)
        )


def theirs_handler(cp: Any) -> Callable[[str], str]:
    """`cp.route_message(text)` for a CALL, synchronously: what `ChargePoint._handle_call` does, step by step
    (ocpp 2.1.0, charge_point.py), returning the CALLRESULT text it would send."""
    validate = _validate_payload  # what the package's validate_payload runs, minus the executor hop
    version_ = cp._ocpp_version
    route_map = cp.route_map

    def handle(text: str) -> str:
        msg = unpack(text)
        handlers = route_map[msg.action]
        if not handlers.get("_skip_schema_validation", False):
            validate(msg, version_)
        snake_case_payload = camel_to_snake_case(msg.payload)
        handler = handlers["_on_action"]
        if "call_unique_id" in inspect.signature(handler).parameters:
            response = handler(**snake_case_payload, call_unique_id=msg.unique_id)
        else:
            response = handler(**snake_case_payload)
        camel_case_payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        result = msg.create_call_result(camel_case_payload)
        if not handlers.get("_skip_schema_validation", False):
            validate(result, version_)
        return result.to_json()

    return handle


# -- ours: ampgate's router --------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    protocol: str
    action: str
    text: str
    # What our stand-in handler answers when the node has no usable handler of its own; the same reply as the
    # package-side handler above gives.
    stand_in: Callable[[Session, Any], Any]


CASES = [
    Case(
        "heartbeat_16",
        OCPP16,
        "Heartbeat",
        HEARTBEAT_16,
        lambda s, r: v16.HeartbeatResponse(current_time=NOW),
    ),
    Case("meter_values_16", OCPP16, "MeterValues", METER_VALUES_16, lambda s, r: v16.MeterValuesResponse()),
    Case(
        "transaction_event_201",
        OCPP201,
        "TransactionEvent",
        TRANSACTION_EVENT_201,
        lambda s, r: v201.TransactionEventResponse(id_token_info=v201.IdTokenInfoType(status="Accepted")),
    ),
]


class _Accepted:
    """The boot policy's store: these chargers were accepted at an earlier boot."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def accepted_ids(self) -> list[str]:
        return self.ids

    def mark_accepted(self, cp_id: str) -> None:
        pass


class _Nowhere:
    """Boot records, replies sent later and CALLs to chargers go nowhere: the bench calls the router directly."""

    def record_boot(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, batch: list[tuple[int, bytes]]) -> None:
        pass


class _Seen:
    last_seen_at: float | None = None


class Ours:
    """The node's OCPP router and its boot and heartbeat handlers, built as the node builds them, without sockets
    or a store: one open session per protocol, replies from `OcppRouter.handle`."""

    def __init__(self) -> None:
        clock = Clock()
        charger_ids = [f"{CHARGER_ID}-{i}" for i in (1, 2)]
        policy = BootPolicy(
            _Accepted(charger_ids), unknown_boot="accept", heartbeat_interval=300, retry_interval=60
        )
        nowhere = _Nowhere()
        self.router = OcppRouter(policy, nowhere, CallManager(lambda cid, frame: False), clock)
        self.router.time.set(NOW.timestamp())  # the time the package-side handler answers with
        BootHandlers(policy, nowhere, EventBus(), clock, self.router.time).register(self.router)
        self.sessions: dict[str, Session] = {}
        for conn_id, (cid, protocol) in enumerate(zip(charger_ids, (OCPP16, OCPP201), strict=True), start=1):
            self.sessions[protocol] = self.router.open(conn_id, cid, protocol, _Seen())

    def prepare(self, case: Case) -> str:
        """Make sure the router can answer `case` here, synchronously; returns which path `ours` measures."""
        if self.router.handles(case.protocol, case.action):
            return "OcppRouter.handle with the node's own handler"
        # MeterValues and TransactionEvent: the node's handlers reply after a store commit, from a task of the
        # running node; a million of them would measure the store, not the router.
        self.router.register(case.protocol, case.action, case.stand_in)
        return (
            "OcppRouter.handle with a stand-in handler (registered with OcppRouter.register) returning the "
            "response Struct: the node's handler replies later, after a store commit"
        )

    def handler(self, case: Case) -> Callable[[bytes], bytes | None]:
        handle, session = self.router.handle, self.sessions[case.protocol]

        def run(data: bytes) -> bytes | None:
            return handle(session, data)

        return run


# -- timing ------------------------------------------------------------------------------------------------


def _loop_ns(fn: Callable[[Any], Any], arg: Any, n: int) -> int:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn(arg)
    return time.perf_counter_ns() - t0


def measure(fn: Callable[[Any], Any], arg: Any, *, seconds: float, runs: int, quick: bool) -> dict[str, Any]:
    """Best-of-`runs` ns per call of `fn(arg)`, each run sized to take about `seconds`."""
    if quick:
        n = QUICK_ITERATIONS
    else:
        # Warm up, then size N from the warm-up's own rate.
        warm, elapsed = 0, 0
        while elapsed < WARMUP_SECONDS * 1e9:
            elapsed += _loop_ns(fn, arg, 10)
            warm += 10
        n = max(10, math.ceil(seconds * 1e9 * warm / elapsed))
    per_run = [_loop_ns(fn, arg, n) / n for _ in range(runs)]
    return {"ns": min(per_run), "runs_ns": [round(x, 1) for x in per_run], "n": n}


# -- the run -----------------------------------------------------------------------------------------------


def run(seconds: float, runs: int, quick: bool) -> dict[str, Any]:
    theirs_cp = {OCPP16: _Central16(CHARGER_ID, None), OCPP201: _Central201(CHARGER_ID, None)}
    cases = []
    ours = Ours()
    for case in CASES:
        ours_path = ours.prepare(case)
        ours_fn = ours.handler(case)
        theirs_fn = theirs_handler(theirs_cp[case.protocol])
        data = case.text.encode()
        ours_reply, theirs_reply = ours_fn(data), theirs_fn(case.text)
        agree = ours_reply is not None and json.loads(ours_reply) == json.loads(theirs_reply)
        row: dict[str, Any] = {
            "case": case.name,
            "protocol": case.protocol,
            "action": case.action,
            "message_bytes": len(data),
            "ours_path": ours_path,
            "theirs_path": "ocpp package: unpack + jsonschema validate_payload (request and response) "
            "+ camel/snake conversion + @on handler returning its call_result dataclass + to_json, "
            "as ChargePoint._handle_call does it, run synchronously (no asyncio, no executor)",
            "agree": agree,
            "ours_reply": ours_reply.decode() if ours_reply is not None else None,
            "theirs_reply": theirs_reply,
        }
        if agree:
            o = measure(ours_fn, data, seconds=seconds, runs=runs, quick=quick)
            t = measure(theirs_fn, case.text, seconds=seconds, runs=runs, quick=quick)
            ratio = t["ns"] / o["ns"]
            row.update(
                ours_ns=round(o["ns"], 1),
                theirs_ns=round(t["ns"], 1),
                ratio=round(ratio, 1),
                meets_target=ratio >= TARGET_RATIO,
                ours_n=o["n"],
                theirs_n=t["n"],
                ours_runs_ns=o["runs_ns"],
                theirs_runs_ns=t["runs_ns"],
            )
        cases.append(row)
    return {
        "bench": "ocpp_messages",
        "quick": quick,
        "target_ratio": TARGET_RATIO,
        "seconds_per_run": seconds,
        "runs": runs,
        "all_agree": all(c["agree"] for c in cases),
        "all_meet_target": all(c.get("meets_target", False) for c in cases),
        "cases": cases,
        "versions": {
            "python": platform.python_version(),
            "msgspec": version("msgspec"),
            "ocpp": version("ocpp"),
            "jsonschema": version("jsonschema"),
        },
    }


def table(r: dict[str, Any]) -> str:
    head = "ampgate OCPP message handling vs the ocpp package, ns per message (best of {runs}){quick}".format(
        runs=r["runs"], quick=", QUICK: figures mean nothing" if r["quick"] else ""
    )
    lines = [
        head,
        "",
        f"{'case':<24}{'bytes':>7}{'ampgate ns':>13}{'ocpp pkg ns':>14}{'ratio':>9}  {'target':<8}{'':>6}",
    ]
    for c in r["cases"]:
        if not c["agree"]:
            lines.append(f"{c['case']:<24}{c['message_bytes']:>7}  replies differ, not timed")
            continue
        verdict = "pass" if c["meets_target"] else "MISS"
        lines.append(
            f"{c['case']:<24}{c['message_bytes']:>7}{c['ours_ns']:>13,.0f}{c['theirs_ns']:>14,.0f}"
            f"{c['ratio']:>8.1f}x  >= {r['target_ratio']:.0f}x  {verdict:>5}"
        )
    lines.append("")
    for c in r["cases"]:
        lines.append(f"{c['case']}: ours = {c['ours_path']}")
    v = r["versions"]
    lines.append(
        f"python {v['python']}, msgspec {v['msgspec']}, ocpp {v['ocpp']}, jsonschema {v['jsonschema']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--json", default=None, help=f"write the results here (default {DEFAULT_OUT}; --quick: none)"
    )
    p.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS, help="length of one timed run of one case"
    )
    p.add_argument(
        "--runs", type=int, default=DEFAULT_RUNS, help="timed runs per case and path; the best counts"
    )
    p.add_argument("--quick", action="store_true", help="a few iterations: check both paths agree (for CI)")
    a = p.parse_args(argv)
    if a.seconds <= 0 or a.runs < 1:
        p.error("--seconds must be positive and --runs at least 1")
    result = run(a.seconds, 1 if a.quick else a.runs, a.quick)
    out = Path(a.json) if a.json else (None if a.quick else DEFAULT_OUT)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print()
    print(json.dumps(result, indent=2))
    if not result["all_agree"]:
        bad = [c["case"] for c in result["cases"] if not c["agree"]]
        print(f"ocpp_messages: the two paths answered differently for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
