"""Conformance oracle: the generated msgspec types accept and reject what the official JSON schemas do.

For every action of both versions, request and response:
- payloads drawn by hypothesis from the schema are accepted or rejected alike by the schema (jsonschema, in the
  draft the file names, date-time format checked) and by `msgspec.convert`, and what msgspec accepts encodes
  back to JSON that the schema accepts;
- every constraint of the schema, mutated once on a payload that fills every property (a required field
  dropped, a wrong JSON type, a string one over maxLength, a value outside an enum or range, an extra property
  where forbidden, too few or too many items), is refused by both, and the refusal classifies into the Fault
  the OCPP error table wants.

Where the two knowingly differ, `ampgate.ocpp.generate.DECISIONS` says so, the oracle applies the decision
(integers without a fraction part, multipleOf in decimal) and a test below named after the decision shows the
schema's verdict next to ours. Hypothesis-jsonschema would draw the payloads, but its 0.23 release does not run
on the hypothesis this project uses, so `_Draw` builds the strategies for the few keywords these schemas use.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from functools import cache
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ampgate.ocpp import envelope, generate, v16, v201
from ampgate.ocpp.envelope import Fault, fault_from_validation

# Sized for CI (2 cores): 206 schemas x this many drawn payloads, each also mutated once.
EXAMPLES_PER_SCHEMA = 60
HYPOTHESIS = settings(
    derandomize=True,
    max_examples=EXAMPLES_PER_SCHEMA,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODULES = {"v16": v16, "v201": v201}
# The 1.6 security extension (Security Whitepaper edition 3): its schema files declare draft-06.
V16_SECURITY = frozenset(
    {
        "SecurityEventNotification",
        "SignCertificate",
        "CertificateSigned",
        "InstallCertificate",
        "DeleteCertificate",
        "GetInstalledCertificateIds",
        "SignedUpdateFirmware",
        "SignedFirmwareStatusNotification",
        "GetLog",
        "LogStatusNotification",
        "ExtendedTriggerMessage",
    }
)

# -- the oracle ---------------------------------------------------------------------------------------------

# RFC 3339 §5.6 date-time; jsonschema checks the format only with an optional package installed, so the
# suite brings its own check rather than silently checking nothing.
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?(?:[Zz]|[+-](\d\d):(\d\d))")


def is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True  # a wrong type is the type keyword's to report
    m = _RFC3339.fullmatch(value)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    off_h, off_m = int(m.group(8) or 0), int(m.group(9) or 0)
    return (
        1 <= month <= 12
        and 1 <= day <= days[month - 1]
        and hour <= 23
        and minute <= 59
        and second <= 60
        and off_h <= 23
        and off_m <= 59
    )


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time")(is_rfc3339)

# DECISIONS["datetime_syntax"] as the oracle reads it: a space for the 'T', an offset without its colon, and
# neither second 60 nor year 0000.
_LENIENT = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?(?:[Zz]|[+-](\d\d):?(\d\d))")


def is_msgspec_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _LENIENT.fullmatch(value)
    if m is None:
        return False
    strict = f"{value[:10]}T{value[11:]}"
    if m.group(8) is not None and value[-3] != ":":
        strict = f"{strict[:-2]}:{strict[-2:]}"
    return is_rfc3339(strict) and int(m.group(1)) >= 1 and int(m.group(6)) <= 59


ORACLE_FORMATS = jsonschema.FormatChecker(formats=())
ORACLE_FORMATS.checks("date-time")(is_msgspec_datetime)


def _decimal_multiple_of(validator: Any, step: float, instance: Any, schema: Any) -> Iterator[Exception]:
    # DECISIONS["multiple_of_decimal"]
    if validator.is_type(instance, "number") and Fraction(repr(instance)) % Fraction(repr(step)):
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {step} (in decimal)")


def _strict_integer(checker: Any, instance: Any) -> bool:
    # DECISIONS["integer_not_float"], DECISIONS["integer_int64"]
    return (
        isinstance(instance, int)
        and not isinstance(instance, bool)
        and generate.INT64_MIN <= instance <= generate.INT64_MAX
    )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)  # hashed by identity: one per schema file
class Case:
    version: str
    action: str
    response: bool
    schema: dict[str, Any]
    typ: type[msgspec.Struct]

    @property
    def id(self) -> str:
        return f"{self.version}-{self.action}{'Response' if self.response else 'Request'}"

    def __repr__(self) -> str:
        return f"Case({self.id})"

    @property
    def raw(self) -> Any:
        """The schema's own verdict: the draft its $schema names, date-time checked."""
        return _validators(self)[0]

    @property
    def oracle(self) -> Any:
        """The schema's verdict with the listed decisions applied."""
        return _validators(self)[1]


@cache
def _validators(case: Case) -> tuple[Any, Any]:
    cls = jsonschema.validators.validator_for(case.schema)
    oracle_cls = jsonschema.validators.extend(
        cls,
        validators={"multipleOf": _decimal_multiple_of},
        type_checker=cls.TYPE_CHECKER.redefine("integer", _strict_integer),
    )
    return cls(case.schema, format_checker=FORMATS), oracle_cls(case.schema, format_checker=ORACLE_FORMATS)


def _cases() -> list[Case]:
    out = []
    for version, module in MODULES.items():
        for action in generate.actions(version):
            for response in (False, True):
                path = generate.schema_file(version, action, response=response)
                typ = (module.RESPONSES if response else module.REQUESTS)[action]
                out.append(Case(version, action, response, json.loads(path.read_text()), typ))
    return out


CASES = _cases()
by_id = {case.id: case for case in CASES}


def verdict(typ: type[msgspec.Struct], payload: Any) -> msgspec.Struct | msgspec.ValidationError:
    """What msgspec makes of `payload`, from Python objects and from JSON text, which must agree."""
    try:
        obj = msgspec.convert(payload, typ)
    except msgspec.ValidationError as err:
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode(payload), type=typ)
        return err
    assert msgspec.json.decode(msgspec.json.encode(payload), type=typ) == obj
    return obj


def accepted(case: Case, payload: Any) -> msgspec.Struct:
    obj = verdict(case.typ, payload)
    assert not isinstance(obj, msgspec.ValidationError), obj
    # What we accept, we send back in a form the schema accepts, and read back the same.
    wire = msgspec.json.encode(obj)
    case.oracle.validate(msgspec.json.decode(wire))
    assert msgspec.json.decode(wire, type=case.typ) == obj
    return obj


def refused(typ: type[msgspec.Struct], payload: Any) -> Any:
    """The RpcFault msgspec's refusal of `payload` classifies into."""
    err = verdict(typ, payload)
    assert isinstance(err, msgspec.ValidationError), f"accepted {payload!r}"
    return fault_from_validation(err)


# -- drawing payloads ---------------------------------------------------------------------------------------

# Text as JSON can carry it and msgspec can encode it (no lone surrogates).
_CHARS = st.characters(codec="utf-8")
_TEXT = st.text(_CHARS, max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_OFFSET = (
    st.just("Z")
    | st.just("z")
    | st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59))
)
# Strict RFC 3339 as hypothesis-jsonschema draws it; the syntax msgspec reads differently is in
# test_datetime_syntax. Fractions stay within microseconds so 9999-12-31T23:59:59.9999999 cannot round over.
_DATETIME = st.builds(
    "{}{}{}{}".format,
    st.dates().map(str),
    st.sampled_from("Tt"),
    st.builds("{:02d}:{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
    | st.builds(
        "{:02d}:{:02d}:{:02d}.{}".format,
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.from_regex(r"[0-9]{1,6}", fullmatch=True),
    ),
    _OFFSET,
)


class _Draw:
    """Hypothesis strategies for one schema's values, valid for the oracle by construction (multipleOf
    aside: some drawn numbers are binary-float products, which both sides must refuse alike)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return self.root["definitions"][ref.removeprefix("#/definitions/")] if ref else node

    def value(self, node: dict[str, Any]) -> st.SearchStrategy[Any]:
        node = self.resolve(node)
        kind = node.get("type")
        if "enum" in node:
            return st.sampled_from(node["enum"])
        if kind == "object":
            props = node.get("properties", {})
            required = set(node.get("required", ()))
            fixed = {k: self.value(v) for k, v in props.items() if k in required}
            optional = {k: self.value(v) for k, v in props.items() if k not in required}
            objects = st.fixed_dictionaries(fixed, optional=optional)
            if node.get("additionalProperties", True) is False:
                return objects
            extra = st.dictionaries(_TEXT.filter(lambda k: k not in props), _JSON, max_size=2)
            return st.builds(lambda o, e: {**e, **o}, objects, extra)
        if kind == "array":
            low, high = node.get("minItems", 0), node.get("maxItems")
            return st.lists(self.value(node["items"]), min_size=low, max_size=min(high or 3, 4))
        if kind == "string":
            if node.get("format") == "date-time":
                return _DATETIME
            n = node.get("maxLength")
            if n is None:
                return _TEXT
            return st.text(_CHARS, max_size=min(n, 12)) | _CHARS.map(lambda c: c * n)  # at the limit
        if kind == "integer":
            return st.integers(min_value=_as_int(node.get("minimum")), max_value=_as_int(node.get("maximum")))
        if kind == "number":
            low, high = node.get("minimum"), node.get("maximum")
            step = node.get("multipleOf")
            floats = st.floats(low, high, allow_nan=False, allow_infinity=False) | st.integers(
                _as_int(low), _as_int(high)
            )
            if step is None:
                return floats
            decimals = st.integers(-(10**6), 10**6).map(lambda k: float(k * Fraction(repr(step))))
            return decimals | st.integers(-1000, 1000).map(lambda k: k * step) | floats
        if kind == "boolean":
            return st.booleans()
        return _JSON  # untyped: 2.0.1 DataTransfer data


def _as_int(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


@cache
def payloads(case: Case) -> st.SearchStrategy[Any]:
    return _Draw(case.schema).value(case.schema)


# -- mutations ------------------------------------------------------------------------------------------------

_DELETE = object()
_WRONG_TYPE = {
    "string": 12345,
    "integer": "1",
    "number": "1.5",
    "boolean": "true",
    "object": 42,
    "array": {"a": 1},
}
# Kind of mutation -> the Fault the OCPP error table wants for it.
EXPECTED = {
    "missing": Fault.MISSING,
    "wrong_type": Fault.TYPE,
    "too_long": Fault.TYPE,
    "bad_enum": Fault.VALUE,
    "below_minimum": Fault.VALUE,
    "above_maximum": Fault.VALUE,
    "extra_property": Fault.FORMAT,
    "too_few_items": Fault.MISSING,
    "too_many_items": Fault.MISSING,
    "not_multiple": Fault.VALUE,
}
# multipleOf is checked in the Struct's __post_init__, whose error points at the object (its message names
# the field), so for these only the fault kind is compared.
_PATH_IS_THE_OBJECT = frozenset({"not_multiple"})


@dataclasses.dataclass(frozen=True)
class Mutation:
    kind: str
    where: tuple[str | int, ...]  # the container (object) of the mutated key
    key: str | int
    value: Any

    def apply(self, payload: Any) -> Any:
        out = copy.deepcopy(payload)
        node = out
        for step in self.where:
            node = node[step]
        if self.value is _DELETE:
            del node[self.key]
        else:
            node[self.key] = self.value
        return out

    @property
    def path(self) -> str:
        """msgspec's JSON path of the error: the field, or the object for a missing or extra property and for
        multipleOf (checked in the object's __post_init__; the message names the field)."""
        on_object = self.kind in ("missing", "extra_property", "not_multiple")
        steps = self.where if on_object else (*self.where, self.key)
        return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


def mutations(
    draw: _Draw, node: dict[str, Any], value: Any, where: tuple[str | int, ...] = ()
) -> Iterator[Mutation]:
    """One mutation per constraint that `value` (valid for `node`) is subject to, at any depth."""
    node = draw.resolve(node)
    if node.get("type") != "object" or not isinstance(value, dict):
        return
    for key in node.get("required", ()):
        yield Mutation("missing", where, key, _DELETE)
    if node.get("additionalProperties", True) is False:
        yield Mutation("extra_property", where, "ampgateUnknown", 1)
    for key, prop in node.get("properties", {}).items():
        if key in value:
            yield from _field_mutations(draw, draw.resolve(prop), value[key], where, key)


def _field_mutations(
    draw: _Draw, node: dict[str, Any], value: Any, where: tuple, key: str | int
) -> Iterator[Mutation]:
    kind = node.get("type")
    if kind in _WRONG_TYPE:
        yield Mutation("wrong_type", where, key, _WRONG_TYPE[kind])
    if "enum" in node:
        yield Mutation("bad_enum", where, key, "NotAnOcppValue")
    elif "maxLength" in node:
        yield Mutation("too_long", where, key, "x" * (node["maxLength"] + 1))
    if "minimum" in node:
        yield Mutation(
            "below_minimum",
            where,
            key,
            _as_int(node["minimum"] - 1) if kind == "integer" else node["minimum"] - 1,
        )
    if "maximum" in node:
        yield Mutation(
            "above_maximum",
            where,
            key,
            _as_int(node["maximum"] + 1) if kind == "integer" else node["maximum"] + 1,
        )
    if "multipleOf" in node:
        yield Mutation("not_multiple", where, key, node["multipleOf"] / 2)
    if kind == "array":
        if node.get("minItems"):
            yield Mutation("too_few_items", where, key, [])
        if node.get("maxItems") and value:
            yield Mutation("too_many_items", where, key, value[:1] * (node["maxItems"] + 1))
        if value:
            yield from _field_mutations(draw, draw.resolve(node["items"]), value[0], (*where, key), 0)
    yield from mutations(draw, node, value, (*where, key))


def check_mutation(case: Case, payload: Any, mutation: Mutation) -> None:
    mutant = mutation.apply(payload)
    assert not case.raw.is_valid(mutant), f"{mutation} is not a violation"
    assert not case.oracle.is_valid(mutant)
    fault = refused(case.typ, mutant)
    if mutation.kind in _PATH_IS_THE_OBJECT:
        assert fault.fault is EXPECTED[mutation.kind], (mutation, fault.description)
    elif mutation.kind in EXPECTED:
        assert (fault.fault, fault.details["field"]) == (EXPECTED[mutation.kind], mutation.path), (
            mutation,
            fault.description,
        )


def maximal(draw: _Draw, node: dict[str, Any]) -> Any:
    """A valid value that has every property, so that every constraint can be mutated."""
    node = draw.resolve(node)
    kind = node.get("type")
    if "enum" in node:
        return node["enum"][-1]
    if kind == "object":
        out = {k: maximal(draw, v) for k, v in node.get("properties", {}).items()}
        if node.get("additionalProperties", True) is not False:
            out["vendorSpecific"] = {"any": [1, "json"]}
        return out
    if kind == "array":
        return [maximal(draw, node["items"])] * max(node.get("minItems", 1), 1)
    if kind == "string":
        return (
            "2024-02-29T23:59:59.123+05:30"
            if node.get("format") == "date-time"
            else "é" * node.get("maxLength", 3)
        )
    if kind == "integer":
        return _as_int(node.get("maximum", node.get("minimum", 7)))
    if kind == "number":
        return 0.3 if "multipleOf" in node else 1.5  # 0.3: see test_multiple_of_decimal
    if kind == "boolean":
        return True
    return {"any": [1, None, "json"]}


# -- every action -------------------------------------------------------------------------------------------


def test_every_schema_is_a_case():
    assert len(CASES) == 78 + 128
    assert len({case.typ for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_constraint_is_enforced(case):
    draw = _Draw(case.schema)
    payload = maximal(draw, case.schema)
    assert case.oracle.is_valid(payload)
    accepted(case, payload)
    found = list(mutations(draw, case.schema, payload))
    for mutation in found:
        check_mutation(case, payload, mutation)
    if case.schema.get("properties"):
        assert found
    for not_an_object in ([], "x", 1, None, [payload]):
        assert not case.raw.is_valid(not_an_object)
        fault = refused(case.typ, not_an_object)
        assert (fault.fault, fault.details["field"]) == (Fault.FORMAT, "$")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@HYPOTHESIS
@given(data=st.data())
def test_drawn_payloads_agree(case, data):
    payload = data.draw(payloads(case), label="payload")
    if case.oracle.is_valid(payload):
        accepted(case, payload)
    else:
        refused(case.typ, payload)
        return
    found = list(mutations(_Draw(case.schema), case.schema, payload))
    if found:
        check_mutation(case, payload, data.draw(st.sampled_from(found), label="mutation"))


# -- the listed decisions -----------------------------------------------------------------------------------

TESTED_DECISIONS: set[str] = set()


def decision(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    assert name in generate.DECISIONS
    TESTED_DECISIONS.add(name)
    return lambda test: test


def test_every_decision_is_tested():
    assert set(generate.DECISIONS) == TESTED_DECISIONS


def set_charging_profile(limit: float) -> dict[str, Any]:
    period = {"startPeriod": 0, "limit": limit}
    schedule = {"chargingRateUnit": "A", "chargingSchedulePeriod": [period]}
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": schedule,
    }
    return {"connectorId": 1, "csChargingProfiles": profile}


@decision("multiple_of_decimal")
def test_multiple_of_decimal():
    case = by_id["v16-SetChargingProfileRequest"]
    for limit in (0.3, 6.3, 13.7, 2.9):  # binary floating point says these are not multiples of 0.1
        assert not case.raw.is_valid(set_charging_profile(limit))
        req = accepted(case, set_charging_profile(limit))
        assert req.cs_charging_profiles.charging_schedule.charging_schedule_period[0].limit == limit
    for limit in (16, 16.0, 1e300, -0.1):  # both agree
        assert case.raw.is_valid(set_charging_profile(limit))
        accepted(case, set_charging_profile(limit))
    for limit in (0.05, 13.33, 0.30000000000000004):
        assert not case.raw.is_valid(set_charging_profile(limit))
        refused(case.typ, set_charging_profile(limit))
    with pytest.raises(ValueError, match=r"multiple of 0\.1"):
        v16.ChargingSchedulePeriod(start_period=0, limit=13.33)  # the CSMS cannot send one either


@decision("integer_not_float")
def test_integer_not_float():
    boot = {"status": "Accepted", "currentTime": "2024-01-01T00:00:00Z", "interval": 300.0}
    draft4, draft6 = by_id["v16-BootNotificationResponse"], by_id["v201-BootNotificationResponse"]
    assert isinstance(draft4.raw, jsonschema.Draft4Validator) and not draft4.raw.is_valid(boot)
    assert isinstance(draft6.raw, jsonschema.Draft6Validator) and draft6.raw.is_valid(boot)
    for case in (draft4, draft6):
        fault = refused(case.typ, boot)
        assert (fault.fault, fault.details["field"]) == (Fault.TYPE, "$.interval")
        accepted(case, {**boot, "interval": 300})
    signed = by_id["v16-SignedUpdateFirmwareRequest"]  # 1.6, but draft-06
    firmware = {
        "location": "https://fw",
        "retrieveDateTime": "2024-01-01T00:00:00Z",
        "signingCertificate": "c",
        "signature": "s",
    }
    assert signed.raw.is_valid({"requestId": 1.0, "firmware": firmware})
    assert refused(signed.typ, {"requestId": 1.0, "firmware": firmware}).fault is Fault.TYPE


@decision("integer_int64")
def test_integer_int64():
    # The schemas bound no integer; ours hold a signed 64-bit value, and refuse beyond it as out of range.
    status = {"connectorId": 2**63, "errorCode": "NoError", "status": "Available"}
    case = by_id["v16-StatusNotificationRequest"]
    assert case.raw.is_valid(status) and not case.oracle.is_valid(status)
    fault = refused(case.typ, status)
    assert (fault.fault, fault.details["field"]) == (Fault.VALUE, "$.connectorId")
    assert accepted(case, {**status, "connectorId": 2**63 - 1}).connector_id == 2**63 - 1
    assert refused(case.typ, {**status, "connectorId": -(2**63) - 1}).fault is Fault.VALUE
    # A lower bound the schema gives keeps its upper end at 64 bits.
    boot = {"status": "Accepted", "currentTime": "2024-01-01T00:00:00Z", "interval": 2**70}
    fault = refused(by_id["v201-BootNotificationResponse"].typ, boot)
    assert (fault.fault, fault.details["field"]) == (Fault.VALUE, "$.interval")


@decision("datetime_needs_offset")
def test_datetime_needs_offset():
    case = by_id["v201-HeartbeatResponse"]
    naive = {"currentTime": "2024-01-01T12:00:00"}
    assert not case.raw.is_valid(naive)
    fault = refused(case.typ, naive)
    assert (fault.fault, fault.details["field"]) == (Fault.TYPE, "$.currentTime")
    assert accepted(
        case, {"currentTime": "2024-01-01T12:00:00+02:00"}
    ).current_time.utcoffset() == datetime.timedelta(hours=2)


@decision("datetime_syntax")
def test_datetime_syntax():
    case = by_id["v16-HeartbeatResponse"]
    for lenient in ("2024-01-01 12:00:00Z", "2024-01-01T12:00:00+0100"):
        assert not case.raw.is_valid({"currentTime": lenient})
        obj = accepted(case, {"currentTime": lenient})
        assert case.raw.is_valid(msgspec.to_builtins(obj))  # what we send is strict
    for lenient in ("2024-01-01 12:00:00Z", "2024-01-01T12:00:00+0100"):
        assert case.oracle.is_valid({"currentTime": lenient})
    for strict in ("2016-12-31T23:59:60Z", "0000-01-01T00:00:00Z"):
        assert case.raw.is_valid({"currentTime": strict})
        assert not case.oracle.is_valid({"currentTime": strict})
        assert refused(case.typ, {"currentTime": strict}).fault is Fault.TYPE
    fine = accepted(case, {"currentTime": "2024-01-01T12:00:00.1234567Z"})
    assert fine.current_time.microsecond == 123457
    assert (
        msgspec.json.encode(v16.HeartbeatResponse(current_time=fine.current_time))
        == b'{"currentTime":"2024-01-01T12:00:00.123457Z"}'
    )


@decision("datetime_utc_range")
def test_datetime_utc_range():
    case = by_id["v16-StatusNotificationRequest"]
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    for outside in ("0001-01-01T00:07:00+05:00", "9999-12-31T23:00:00-01:00"):
        assert case.raw.is_valid({**status, "timestamp": outside})
        req = accepted(case, {**status, "timestamp": outside})  # the type holds it ...
        fault = envelope.utc_range_fault(req)  # ... and the router refuses it, naming the field
        assert fault is not None
        assert (fault.fault, fault.details["field"]) == (Fault.VALUE, "$.timestamp")
        assert envelope.may_leave_utc_range(
            json.dumps([2, "1", "StatusNotification", req_json(req)]).encode()
        )
    for inside in ("0001-01-01T00:00:00Z", "0001-01-01T05:00:00+05:00", "9999-12-31T23:59:59.999999Z"):
        assert envelope.utc_range_fault(accepted(case, {**status, "timestamp": inside})) is None
    deep = by_id["v201-TransactionEventRequest"]
    draw = _Draw(deep.schema)
    event = maximal(draw, deep.schema)
    event["meterValue"] = [
        event["meterValue"][0],
        {**event["meterValue"][0], "timestamp": "0001-01-01T00:00:00+00:01"},
    ]
    fault = envelope.utc_range_fault(accepted(deep, event))
    assert fault is not None and fault.details["field"] == "$.meterValue[1].timestamp"


def req_json(req: msgspec.Struct) -> Any:
    return msgspec.to_builtins(req)


@decision("null_is_absent")
def test_null_is_absent():
    case = by_id["v16-BootNotificationRequest"]
    boot = {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": None}
    assert not case.raw.is_valid(boot)
    req = accepted(case, boot)
    assert req.firmware_version is None
    assert msgspec.json.decode(msgspec.json.encode(req)) == {
        "chargePointVendor": "V",
        "chargePointModel": "M",
    }
    fault = refused(case.typ, {**boot, "chargePointModel": None})
    assert (fault.fault, fault.details["field"]) == (Fault.TYPE, "$.chargePointModel")


@decision("custom_data_open")
def test_custom_data_open():
    case = by_id["v201-HeartbeatRequest"]
    payload = {"customData": {"vendorId": "com.example", "tariff": {"eur": 1}}}
    assert case.raw.is_valid(payload)
    req = accepted(case, payload)
    assert msgspec.json.decode(msgspec.json.encode(req)) == {"customData": {"vendorId": "com.example"}}
    fault = refused(case.typ, {"customData": {"tariff": 1}})
    assert (fault.fault, fault.details["field"]) == (Fault.MISSING, "$.customData")

    class Tariff(v201.CustomDataType, kw_only=True):
        tariff: dict[str, int]

    sent = msgspec.json.encode(
        v201.HeartbeatRequest(custom_data=Tariff(vendor_id="com.example", tariff={"eur": 1}))
    )
    assert msgspec.json.decode(sent) == payload and case.raw.is_valid(msgspec.json.decode(sent))


@decision("draft_per_file")
def test_draft_per_file():
    drafts = {case.id: type(case.raw) for case in CASES}
    for case in CASES:
        draft6 = case.version == "v201" or case.action in V16_SECURITY
        assert drafts[case.id] is (jsonschema.Draft6Validator if draft6 else jsonschema.Draft4Validator), (
            case.id
        )
    assert sum(d is jsonschema.Draft4Validator for d in drafts.values()) == 56


@decision("uri_unchecked")
def test_uri_unchecked():
    case = by_id["v16-UpdateFirmwareRequest"]
    payload = {"location": "not a uri", "retrieveDate": "2024-01-01T00:00:00Z"}
    assert "uri" not in FORMATS.checkers and case.raw.is_valid(payload)
    assert accepted(case, payload).location == "not a uri"


@decision("array_occurrence")
def test_array_occurrence():
    case = by_id["v16-MeterValuesRequest"]
    empty = {"connectorId": 1, "meterValue": []}
    assert not case.raw.is_valid(empty)
    assert refused(case.typ, empty).details["field"] == "$.meterValue"
    case = by_id["v201-GetVariablesRequest"]
    one = {"component": {"name": "C"}, "variable": {"name": "V"}}
    assert accepted(case, {"getVariableData": [one]})
    assert not case.raw.is_valid({"getVariableData": []})
    refused(case.typ, {"getVariableData": []})


def test_occurrence_and_multiple_of_are_classified():
    too_few = refused(v16.MeterValuesRequest, {"connectorId": 1, "meterValue": []})
    too_many = refused(v201.GetReportRequest, {"requestId": 1, "componentCriteria": ["Active"] * 5})
    not_multiple = refused(v16.SetChargingProfileRequest, set_charging_profile(0.05))
    assert too_few.fault is EXPECTED["too_few_items"]
    assert too_many.fault is EXPECTED["too_many_items"]
    assert not_multiple.fault is EXPECTED["not_multiple"]


@decision("schema_defaults")
def test_schema_defaults():
    case = by_id["v201-MeterValuesRequest"]
    assert case.schema["definitions"]["ReadingContextEnumType"]["default"] == "Sample.Periodic"
    payload = {
        "evseId": 1,
        "meterValue": [{"timestamp": "2024-01-01T00:00:00Z", "sampledValue": [{"value": 1.5}]}],
    }
    req = accepted(case, payload)
    assert req.meter_value[0].sampled_value[0].context is None
    source = generate.render("v201")
    assert '    context: ReadingContextEnumType | None = None  # schema default: "Sample.Periodic"' in source
