"""OCPP-J messages for fuzzing a real node's router, the answer each one must get, and a client that checks it.

Shared by tests/fuzz/test_ocpp_router_fuzz.py (10^4 messages in `make test`) and bench/fuzz_router.py (10^6).

The generator (hypothesis strategies) starts from payloads that are valid for the `ocpp` package's JSON schemas
(drawn by tests/ocpp/test_conformance.py's `_Draw`) and breaks them at every level: the text (not JSON, cut
short, deep nesting), the envelope (wrong shapes, wrong message type ids, unique ids that are not strings,
duplicate unique ids, unknown and central-system-only actions, CALLRESULTs and CALLERRORs for ids nobody sent)
and the payload (one schema constraint broken, huge and negative numbers, wrong JSON types, very long strings).

The oracle (`expect`) does not trust the generator's intent: it reads the message text again, independently of
the node's decoder (Python's json, and jsonschema with the generator's listed DECISIONS applied), and says what
the node must answer per OCPP-J 1.6 §4.2.3 / 2.0.1 part 4 §4.2.3 and the node's error table
(ampgate.ocpp.envelope):

- not JSON, not an array, fewer than 3 elements, a unique id that is not a string: CALLERROR with unique id
  "-1", ProtocolError (1.6) / RpcFrameworkError (2.0.1). JSON nested deeper than the decoder reads (msgspec's
  limit, about 1,000 levels; Python's json stops near the same depth) is treated alike;
- a message type id other than 2, 3, 4: ProtocolError / MessageTypeNotSupported with the unique id;
- a CALL not of 4 elements or whose action is not a string: ProtocolError / RpcFrameworkError with the id;
- an action the version does not have: NotImplemented; one only the central system sends: NotSupported;
- a payload the schema refuses: the code of the constraint it breaks (FormationViolation / FormatViolation for
  a payload that is not an object or has a forbidden property, OccurenceConstraintViolation /
  OccurrenceConstraintViolation for a missing field or too few / many items, TypeConstraintViolation for a wrong
  type or a string over its maxLength, PropertyConstraintViolation for a value outside its enum or range);
- a valid payload: a CALLRESULT whose payload the response schema accepts;
- a CALLRESULT or CALLERROR for an id the node did not send: nothing (the node logs and drops it).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import time
from collections.abc import Callable
from typing import Any

import jsonschema
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from ampgate.ocpp import generate, v16, v201
from tests.ocpp import test_conformance as conformance

OCPP16, OCPP201 = "ocpp1.6", "ocpp2.0.1"
VERSION = {OCPP16: "v16", OCPP201: "v201"}
MODULE = {OCPP16: v16, OCPP201: v201}

# At most this many messages that expect a reply are on the wire per connection. A charger sends its next CALL
# only after the previous one is answered (OCPP-J §4.1.1); a node may queue a few and close a connection that
# sends more (the hardening issue's bounded per-charger CALL queue, default 4), so the fuzz stays within it.
WINDOW = 4
# The longest string put in a field: far over every maxLength (the largest is 5500) and well under the 1 MiB
# message limit, so the answer is a CALLERROR, not a close.
LONG_STRING = 200_000
# The node's --max-message default (1 MiB): a larger message closes the connection with 1009. The generator
# reaches it seldom (many items, each with a long string of escaped characters).
MAX_MESSAGE = 1_048_576
# Deeper than msgspec (and Python's json) will read: such a message is answered as unreadable.
TOO_DEEP = 1_200

# How each jsonschema keyword a mutated payload breaks is answered, per version (the node's error table).
_CODE_OF: dict[str, tuple[str, str]] = {
    "not_rpc": ("ProtocolError", "RpcFrameworkError"),
    "message_type": ("ProtocolError", "MessageTypeNotSupported"),
    "unknown_action": ("NotImplemented", "NotImplemented"),
    "csms_only": ("NotSupported", "NotSupported"),
    "format": ("FormationViolation", "FormatViolation"),
    "occurrence": ("OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
    "type": ("TypeConstraintViolation", "TypeConstraintViolation"),
    "property": ("PropertyConstraintViolation", "PropertyConstraintViolation"),
}
_KEYWORD: dict[str, str] = {
    "required": "occurrence",
    "minItems": "occurrence",
    "maxItems": "occurrence",
    "additionalProperties": "format",
    "type": "type",
    "maxLength": "type",
    "format": "type",  # a date-time that is not one: msgspec reads it as the wrong type
    "enum": "property",
    "minimum": "property",
    "maximum": "property",
    "multipleOf": "property",
}


def code(kind: str, protocol: str) -> str:
    v16_code, v201_code = _CODE_OF[kind]
    return v16_code if protocol == OCPP16 else v201_code


@dataclasses.dataclass(frozen=True)
class Expect:
    """What the node must answer: `kind` is "error" (a CALLERROR with `unique_id` and a code in `codes`),
    "result" (a CALLRESULT for `unique_id` that the response schema of `action` accepts) or "none"."""

    kind: str
    unique_id: str = ""
    codes: frozenset[str] = frozenset()
    action: str = ""

    def __str__(self) -> str:
        if self.kind == "error":
            return f"CALLERROR {self.unique_id!r} {sorted(self.codes)}"
        return f"CALLRESULT {self.unique_id!r} ({self.action})" if self.kind == "result" else "no reply"


NO_REPLY = Expect("none")


def _error(unique_id: str, kinds: set[str] | str, protocol: str) -> Expect:
    kinds = {kinds} if isinstance(kinds, str) else kinds
    return Expect("error", unique_id, frozenset(code(k, protocol) for k in kinds))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; JSON has neither


class _OutOfRange:
    """A JSON number beyond a double's range (1e400): JSON, but msgspec holds no value for it."""

    def __repr__(self) -> str:
        return "<out of range>"


OUT_OF_RANGE = _OutOfRange()


def _float(text: str) -> Any:
    value = float(text)
    return OUT_OF_RANGE if value in (float("inf"), float("-inf")) else value


def _has_out_of_range(value: Any) -> bool:
    stack = [value]  # a loop, not recursion: the value may be nested as deep as the decoder reads
    while stack:
        v = stack.pop()
        if v is OUT_OF_RANGE:
            return True
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return False


def _unicode(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            texts = [v]
        elif isinstance(v, list):
            stack.extend(v)
            continue
        elif isinstance(v, dict):
            stack.extend(v.values())
            texts = list(v)
        else:
            continue
        for t in texts:
            try:
                t.encode()
            except UnicodeEncodeError:
                return False
    return True


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nxt: list[Any] = []
        for v in level:
            if isinstance(v, list):
                nxt.extend(v)
            elif isinstance(v, dict):
                nxt.extend(v.values())
        level = nxt
    return depth


def expect(text: str, protocol: str) -> Expect:
    """The answer the node owes `text` from a charger speaking `protocol` that is Accepted."""
    try:
        msg = json.loads(text, parse_constant=_reject_constant, parse_float=_float)
    except (ValueError, RecursionError):
        return _error("-1", "not_rpc", protocol)
    if not _unicode(msg):
        # A lone surrogate escape ("\\ud800"): JSON's grammar allows it, but it is no Unicode text, and the node's
        # decoder refuses the message as it would any unreadable one.
        return _error("-1", "not_rpc", protocol)
    if _depth(msg) > TOO_DEEP - 200:
        # Near the decoders' limit: which side of it a message falls on is the decoder's business; either
        # answer is right, neither may be a crash.
        return Expect(
            "error", "-1", frozenset({code("not_rpc", protocol), *_expect_readable(msg, protocol).codes})
        )
    return _expect_readable(msg, protocol)


def _is_number(value: Any, n: int) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == n


def _expect_readable(msg: Any, protocol: str) -> Expect:
    if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[1], str):
        return _error("-1", "not_rpc", protocol)
    kind, unique_id = msg[0], msg[1]
    if _is_number(kind, 3) or _is_number(kind, 4):
        return NO_REPLY  # the generator never reuses an id of the node's own CALLs
    if not _is_number(kind, 2):
        return _error(unique_id, "message_type", protocol)
    if len(msg) != 4 or not isinstance(msg[2], str):
        return _error(unique_id, "not_rpc", protocol)
    action, payload = msg[2], msg[3]
    module = MODULE[protocol]
    if action not in module.CHARGER_INITIATED:
        return _error(
            unique_id, "csms_only" if action in module.CSMS_INITIATED else "unknown_action", protocol
        )
    case = conformance.by_id[f"{VERSION[protocol]}-{action}Request"]
    if not isinstance(payload, dict):
        return _error(unique_id, "format", protocol)
    readable = _drop_nulls(case, payload)
    errors = list(case.oracle.iter_errors(readable))
    kinds = {_kind_of(e) for e in errors}
    if any(e.validator == "format" for e in _utc_range(case).iter_errors(readable)):
        kinds.add("property")  # DECISIONS["datetime_utc_range"]
    if _has_out_of_range(payload):
        kinds.add("type")  # msgspec: "Number out of range", read as the wrong type wherever it sits
    if not kinds:
        return Expect("result", unique_id, action=action)
    return _error(unique_id, kinds, protocol)


def _kind_of(error: jsonschema.ValidationError) -> str:
    if error.validator == "type" and not error.absolute_path:
        return "format"  # the payload itself is not an object
    if (
        error.validator == "type"
        and isinstance(error.instance, int)
        and not isinstance(error.instance, bool)
        and error.schema.get("type") == "integer"
    ):
        return "property"  # DECISIONS["integer_int64"]: an integer beyond 64 bits is out of range
    return _KEYWORD[str(error.validator)]


def _drop_nulls(case: conformance.Case, payload: dict[str, Any]) -> dict[str, Any]:
    """DECISIONS["null_is_absent"]: null for an optional field reads as absent (top level only: the generator
    puts nulls nowhere deeper). A key the schema has no property for is no optional field: its null stays."""
    required = set(case.schema.get("required", ()))
    optional = set(case.schema.get("properties", {})) - required
    return {k: v for k, v in payload.items() if v is not None or k not in optional}


def _in_utc_range(value: object) -> bool:
    """False for a date-time msgspec reads whose UTC instant is outside the years 1..9999; True otherwise
    (whether it is a date-time at all is the oracle's format check)."""
    if not isinstance(value, str) or not conformance.is_msgspec_datetime(value):
        return True
    m = conformance._LENIENT.fullmatch(value)
    assert m is not None
    wall = datetime.datetime(*(int(g) for g in m.groups()[:6]))  # type: ignore[misc]
    sign = -1 if m.group(8) is not None and "-" in value[19:] else 1
    offset = datetime.timedelta(hours=int(m.group(8) or 0), minutes=int(m.group(9) or 0)) * sign
    try:
        wall - offset
    except OverflowError:
        return False
    return True


_UTC_RANGE = jsonschema.FormatChecker(formats=())
_UTC_RANGE.checks("date-time")(_in_utc_range)


@functools.cache
def _utc_range(case: conformance.Case) -> Any:
    return jsonschema.validators.validator_for(case.schema)(case.schema, format_checker=_UTC_RANGE)


def check_result(protocol: str, action: str, payload: Any) -> str | None:
    """Why a CALLRESULT payload for `action` is wrong, or None."""
    case = conformance.by_id[f"{VERSION[protocol]}-{action}Response"]
    errors = [e.message for e in case.oracle.iter_errors(payload)]
    return "; ".join(errors)[:300] if errors else None


# -- the generator ----------------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=16)
_NUMBERS = st.sampled_from(
    [0, -1, -(2**31), 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -(10**30), 1.5, -0.0, 1e308, -1e308]
)
_SCALARS = st.none() | st.booleans() | st.integers() | _NUMBERS | _TEXT
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
# Wrong values for any field: never null (null_is_absent makes it valid for optional fields, a generator detail
# the oracle would then have to follow deeper).
_WRONG = st.one_of(
    st.booleans(),
    _NUMBERS,
    st.integers(),
    _TEXT,
    st.lists(_SCALARS.filter(lambda v: v is not None), max_size=3),
    st.dictionaries(_TEXT, st.integers(), max_size=2),
    st.integers(1, 6).map(lambda n: "x" * (10**n if n < 6 else LONG_STRING)),
)


def _charger_actions(protocol: str) -> list[str]:
    return sorted(MODULE[protocol].CHARGER_INITIATED)


def _valid_payload(protocol: str, action: str) -> st.SearchStrategy[Any]:
    return conformance.payloads(conformance.by_id[f"{VERSION[protocol]}-{action}Request"])


def _paths(value: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in `value` a field sits (the paths of object keys and list items)."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*where, k))
            out.extend(_paths(v, (*where, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*where, i))
            out.extend(_paths(v, (*where, i)))
    return out


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = dict(value) if isinstance(value, dict) else list(value)
    out[path[0]] = _put(out[path[0]], path[1:], new)  # type: ignore[index]
    return out


class _Deep:
    """Arrays nested `depth` deep around 1: deeper than Python's json writes, so `dumps` writes it."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


def _nest(depth: int, leaf: Any = 1) -> Any:
    if depth > 500:
        return _Deep(depth)
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def dumps(value: Any) -> str:
    """JSON text of `value`, with `_Deep` markers written out."""
    deep: list[int] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, _Deep):
            deep.append(obj.depth)
            return f"\x00deep{len(deep) - 1}"
        raise TypeError(f"{obj!r} is not JSON")

    text = json.dumps(value, default=default)
    for i, depth in enumerate(deep):
        text = text.replace(json.dumps(f"\x00deep{i}"), "[" * depth + "1" + "]" * depth, 1)
    return text


@st.composite
def _payload_mutation(draw: st.DrawFn, protocol: str, action: str) -> Any:
    case = conformance.by_id[f"{VERSION[protocol]}-{action}Request"]
    payload = draw(_valid_payload(protocol, action), label="payload")
    how = draw(st.sampled_from(["constraint", "field", "nest", "not_object"]), label="how")
    if how == "constraint":
        found = list(conformance.mutations(conformance._Draw(case.schema), case.schema, payload))
        if found:
            return draw(st.sampled_from(found)).apply(payload)
        how = "field"
    paths = _paths(payload)
    if how == "not_object" or not paths:
        return draw(_WRONG | st.just(None) | st.just([payload]), label="not an object")
    path = draw(st.sampled_from(paths), label="path")
    if how == "nest":
        return _put(payload, path, _nest(draw(st.sampled_from([2, 50, 120, TOO_DEEP + 300]), label="depth")))
    return _put(payload, path, draw(_WRONG, label="wrong value"))


@st.composite
def _unique_id(draw: st.DrawFn, used: list[str]) -> str:
    if used and draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(used), label="duplicate id")  # a duplicate unique id
    uid = f"fz{len(used)}-{draw(st.integers(0, 10**6))}"
    if draw(st.integers(0, 19)) == 0:
        uid += draw(_TEXT, label="odd id")
    used.append(uid)
    return uid


@st.composite
def message(draw: st.DrawFn, protocol: str, used: list[str]) -> str:
    """One message text a (broken) charger speaking `protocol` sends; `used` collects the unique ids."""
    uid = draw(_unique_id(used))
    action = draw(st.sampled_from(_charger_actions(protocol)), label="action")
    shape = draw(
        st.sampled_from(
            [
                "valid",
                "payload",
                "payload",
                "payload",
                "envelope",
                "action",
                "reply",
                "text",
            ]
        ),
        label="shape",
    )
    if shape == "valid":
        return dumps([2, uid, action, draw(_valid_payload(protocol, action))])
    if shape == "payload":
        return dumps([2, uid, action, draw(_payload_mutation(protocol, action))])
    if shape == "action":
        other = draw(
            st.sampled_from(sorted(MODULE[protocol].CSMS_INITIATED))
            | _TEXT
            | st.sampled_from(["", "heartbeat"]),
            label="other action",
        )
        return dumps([2, uid, other, draw(_JSON.filter(lambda v: v is not None) | st.just({}))])
    if shape == "reply":
        # CALLRESULTs and CALLERRORs for ids the node never sent (its own ids are UUIDs; ours are not).
        payload = draw(_JSON | st.just(_nest(TOO_DEEP + 100)), label="reply payload")
        if draw(st.booleans()):
            return dumps([3, uid, payload])
        return dumps([4, uid, draw(_TEXT), draw(_TEXT), payload])
    valid = [2, uid, action, draw(_valid_payload(protocol, action))]
    if shape == "envelope":
        how = draw(st.sampled_from(["type", "short", "long", "uid", "action_type", "not_array", "deep_uid"]))
        if how == "type":
            valid[0] = draw(
                _JSON.filter(lambda v: not (_is_number(v, 3) or _is_number(v, 4))), label="type id"
            )
        elif how == "short":
            valid = valid[: draw(st.integers(0, 3))]
        elif how == "long":
            valid += draw(st.lists(_JSON, min_size=1, max_size=3))
        elif how == "uid":
            valid[1] = draw(_JSON.filter(lambda v: not isinstance(v, str)), label="unique id")
        elif how == "action_type":
            valid[2] = draw(_JSON.filter(lambda v: not isinstance(v, str)), label="action")
        elif how == "deep_uid":
            valid[1] = _nest(draw(st.sampled_from([3, TOO_DEEP + 100])), "x")
        else:
            return dumps(draw(_JSON.filter(lambda v: not isinstance(v, list))))
        return dumps(valid)
    # shape == "text": not JSON, or JSON cut short, or JSON with bytes flipped
    text = dumps(valid)
    how = draw(st.sampled_from(["garbage", "cut", "flip", "nan"]))
    if how == "garbage":
        return draw(st.text(st.characters(codec="utf-8"), max_size=64), label="garbage")
    if how == "cut":
        return text[: draw(st.integers(0, max(len(text) - 1, 0)), label="cut at")]
    if how == "nan":
        return text.replace("[2,", "[2, NaN,", 1)
    at = draw(st.integers(0, max(len(text) - 1, 0)), label="flip at")
    return text[:at] + draw(st.sampled_from(list('{}[]",:\\x0 '))) + text[at + 1 :]


# -- the client ---------------------------------------------------------------------------------------------


class Mismatch(AssertionError):
    pass


@dataclasses.dataclass
class Stats:
    sent: int = 0
    replies: int = 0
    errors: int = 0
    results: int = 0
    silent: int = 0
    closed: int = 0  # messages over the size limit, answered by closing the connection (1009)
    codes: dict[str, int] = dataclasses.field(default_factory=dict)


class FuzzCharger:
    """One Accepted charger on a blocking WebSocket that sends messages with up to WINDOW awaiting a reply and
    checks every reply against `expect`. Calls from the node ([2, ...]) are answered with a CALLERROR of our own
    (a charger that does not implement them), which keeps the node's one outstanding CALL moving."""

    def __init__(
        self, connect: Callable[[], Any], protocol: str, charger_id: str, timeout: float = 15.0
    ) -> None:
        self._connect = connect
        self.protocol = protocol
        self.charger_id = charger_id
        self.timeout = timeout
        self.stats = Stats()
        self.ws: Any = None
        self._waiting: list[tuple[Expect, str]] = []  # (what is owed, the message that owes it)
        self.failures: list[str] = []  # every failure seen, the first one first (shrinking adds more)

    def open(self) -> None:
        # websockets' sync connect() must be entered as a context manager (17.1); closed in close().
        self.ws = self._connect().__enter__()
        boot = conformance.maximal(*self._boot_schema())
        self.ws.send(dumps([2, "boot", "BootNotification", boot]))
        reply = self._recv()
        if reply[:2] != [3, "boot"] or reply[2].get("status") != "Accepted":
            raise Mismatch(f"{self.charger_id} not accepted at boot: {reply}")

    def _boot_schema(self) -> tuple[Any, Any]:
        case = conformance.by_id[f"{VERSION[self.protocol]}-BootNotificationRequest"]
        return conformance._Draw(case.schema), case.schema

    def close(self) -> None:
        if self.ws is not None:
            self.ws.__exit__(None, None, None)
            self.ws = None

    def _recv(self) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Mismatch(f"{self.charger_id}: no reply within {self.timeout}s; owed: {self._owed()}")
            try:
                text = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            msg = json.loads(text)
            if isinstance(msg, list) and msg and msg[0] == 2:  # the node's own CALL
                self.ws.send(dumps([4, msg[1], "NotImplemented", "fuzz charger", {}]))
                continue
            return msg

    def _owed(self) -> str:
        return "; ".join(f"{e} for {m[:120]!r}" for e, m in self._waiting[:5])

    def send_all(self, texts: list[str]) -> None:
        """Send `texts` in order, at most WINDOW awaiting replies at once; returns when every reply came and
        matched. Raises Mismatch on a wrong, missing or unexpected reply, after starting a fresh connection (so
        that hypothesis, replaying the example to shrink it, finds nothing of the failed one on the wire)."""
        try:
            self._send_all(texts)
        except Exception as e:
            import traceback

            self.failures.append("".join(traceback.format_exception(e))[-3000:])
            self.close()
            self._waiting.clear()
            self.open()
            raise

    def _send_all(self, texts: list[str]) -> None:
        for text in texts:
            if len(text.encode()) > MAX_MESSAGE:
                self._too_big(text)
                continue
            owed = expect(text, self.protocol)
            # A repeated unique id goes out once the earlier message with it was answered: two answers to one id
            # on the wire at once could not be told apart (the node answers each; which is which is guesswork).
            while owed.unique_id != "-1" and any(o.unique_id == owed.unique_id for o, _ in self._waiting):
                self._match(self._recv())
            self.ws.send(text)
            self.stats.sent += 1
            if owed.kind == "none":
                self.stats.silent += 1
                continue
            self._waiting.append((owed, text))
            while len(self._waiting) >= WINDOW:
                self._match(self._recv())
        self.flush()

    def _too_big(self, text: str) -> None:
        """A message over the node's --max-message: the connection is closed with 1009 (docs/operations.md,
        "Message size limits"); the charger reconnects and goes on."""
        self.flush()
        self.ws.send(text)
        self.stats.sent += 1
        try:
            reply = self._recv()
        except ConnectionClosed as e:
            if e.rcvd is None or e.rcvd.code != 1009:
                raise Mismatch(
                    f"{self.charger_id}: a {len(text)}-byte message closed with {e.rcvd}"
                ) from None
        else:
            raise Mismatch(f"{self.charger_id}: a {len(text)}-byte message was answered {str(reply)[:200]}")
        self.stats.closed += 1
        self.close()
        self.open()

    def flush(self) -> None:
        """Wait for every owed reply, then prove nothing else is on its way: a Heartbeat's answer must be the next
        thing that comes."""
        while self._waiting:
            self._match(self._recv())
        self.ws.send(dumps([2, "sentinel", "Heartbeat", {}]))
        reply = self._recv()
        if reply[:2] != [3, "sentinel"]:
            raise Mismatch(f"{self.charger_id}: unexpected {str(reply)[:300]} (a message that owed nothing?)")

    def _match(self, reply: Any) -> None:
        self.stats.replies += 1
        if not isinstance(reply, list) or len(reply) < 3 or reply[0] not in (3, 4):
            raise Mismatch(f"not an OCPP-J reply: {str(reply)[:300]}")
        wrong_result = ""
        for i, (owed, _text) in enumerate(self._waiting):
            if owed.unique_id != reply[1]:
                continue
            if reply[0] == 4 and owed.kind == "error" and reply[2] in owed.codes:
                if len(reply) != 5 or not isinstance(reply[3], str) or not isinstance(reply[4], dict):
                    raise Mismatch(f"malformed CALLERROR {str(reply)[:300]}")
                self.stats.errors += 1
                self.stats.codes[reply[2]] = self.stats.codes.get(reply[2], 0) + 1
                del self._waiting[i]
                return
            if reply[0] == 3 and owed.kind == "result":
                why = check_result(self.protocol, owed.action, reply[2])
                if why:
                    wrong_result = f"; as a {owed.action} CALLRESULT it breaks its schema: {why}"
                    break
                self.stats.results += 1
                del self._waiting[i]
                return
        raise Mismatch(
            f"{self.charger_id} ({self.protocol}): got {str(reply)[:300]}; owed: {self._owed()}{wrong_result}"
        )


def actions_of(protocol: str) -> list[str]:
    return _charger_actions(protocol)


assert generate.INT64_MAX == 2**63 - 1  # the oracle's integer_int64 reading above
