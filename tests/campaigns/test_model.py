"""A campaign's rules (`ampgate.campaigns.model`): validation naming the field, groups, the success and error
conditions, every verb in every state, the dispatch rate."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from ampgate.campaigns import model as m
from ampgate.errors import ConflictError, ValidationError


def spec(**over: object) -> m.CampaignSpec:
    body: dict[str, object] = {"image_id": 1, "selector": {"vendor": "V"}, "groups": [{"percent": 100}]}
    body.update(over)
    return m.validate(msgspec.convert(body, m.CampaignSpec))


# -- validation ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"groups": []}, "groups"),
        ({"groups": [{"percent": 10, "count": 3}]}, "groups[0]"),
        ({"groups": [{"count": 3}, {}]}, "groups[1]"),
        ({"groups": [{"count": 3}, {"charger_ids": ["a"], "percent": 5}]}, "groups[1]"),
        ({"canary": {}}, "canary"),
        ({"canary": {"count": 1, "percent": 5}}, "canary"),
        ({"error_threshold_pct": 5, "error_threshold_count": 2}, "error_threshold_count"),
        ({"dispatch_growth_factor": 2}, "dispatch_growth_factor"),
        ({"selector": {}}, "selector"),
        ({"start_at": "2026-12-01T00:00:00"}, "start_at"),
    ],
)
def test_inconsistent_campaigns_are_refused_naming_the_field(over: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        spec(**over)
    assert e.value.field == field


@pytest.mark.parametrize(
    "over",
    [
        {"success_threshold_pct": 101},
        {"error_threshold_pct": -1},
        {"max_in_flight": 0},
        {"groups": [{"percent": 0}]},
        {"groups": [{"percent": 120}]},
        {"canary": {"count": 0}},
        {"success_action": "stop"},
        {"unknown": 1},
    ],
)
def test_out_of_range_fields_are_refused_by_the_schema(over: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        spec(**over)


def test_a_valid_campaign_keeps_its_defaults() -> None:
    s = spec(canary={"count": 2})
    assert s.success_action == "next_group" and s.max_in_flight == m.DEFAULT_MAX_IN_FLIGHT
    assert s.offline_timeout_s == 7 * 86_400


# -- groups --------------------------------------------------------------------------------------------------------

IDS = [f"cp{i:03}" for i in range(300)]


def test_split_canary_then_percent_groups_cover_every_target_once() -> None:
    groups = m.split(
        IDS, m.Canary(count=6), [m.GroupSpec(percent=10), m.GroupSpec(percent=30), m.GroupSpec(percent=100)]
    )
    assert [len(g) for g in groups] == [6, 30, 90, 174]
    flat = [c for g in groups for c in g]
    assert sorted(flat) == IDS and len(set(flat)) == len(flat)


def test_split_rounds_percentages_up_and_the_last_group_takes_the_rest() -> None:
    groups = m.split(IDS[:7], m.Canary(percent=10), [m.GroupSpec(percent=50)])
    assert [len(g) for g in groups] == [1, 6]  # 4 (ceil 3.5) + 2 left over joining the last group


def test_split_explicit_ids_take_targets_not_yet_taken() -> None:
    groups = m.split(
        IDS[:10],
        m.Canary(count=2),
        [m.GroupSpec(charger_ids=["cp001", "cp005", "zz", "cp005"]), m.GroupSpec(count=3)],
    )
    assert groups[0] == ["cp000", "cp001"]
    assert groups[1] == ["cp005"]
    assert groups[2] == ["cp002", "cp003", "cp004", "cp006", "cp007", "cp008", "cp009"]


# -- conditions ----------------------------------------------------------------------------------------------------


def t(**over: object) -> m.Thresholds:
    base: dict[str, object] = {
        "success_pct": 90,
        "error_pct": None,
        "error_count": None,
        "error_min_finished": 0,
    }
    base.update(over)
    return m.Thresholds(**base)  # type: ignore[arg-type]


def test_a_group_runs_while_chargers_are_pending_or_in_flight() -> None:
    for state in ("pending", "dispatched", "downloading", "downloaded", "installing"):
        assert m.group_verdict({"installed": 5, state: 1}, t()) == "running"


def test_success_threshold_over_the_chargers_judged() -> None:
    assert m.group_verdict({"installed": 9, "failed": 1}, t()) == "succeeded"
    assert m.group_verdict({"installed": 8, "failed": 2}, t()) == "below_success"
    # skipped and superseded chargers are not judged
    assert m.group_verdict({"installed": 9, "failed": 1, "skipped": 50, "superseded": 3}, t()) == "succeeded"
    assert m.group_verdict({"skipped": 4}, t()) == "succeeded"
    assert m.group_verdict({}, t()) == "succeeded"


def test_error_count_after_the_minimum_finished() -> None:
    th = t(error_count=2, error_min_finished=5)
    assert m.group_verdict({"failed": 2, "pending": 10}, th) == "running"  # only 2 finished
    assert m.group_verdict({"failed": 1, "timed_out": 1, "installed": 3, "pending": 10}, th) == "error"
    assert m.group_verdict({"failed": 1, "installed": 4, "pending": 10}, th) == "running"


def test_error_percent_of_the_finished() -> None:
    th = t(error_pct=20)
    assert m.group_verdict({"failed": 1, "installed": 4, "pending": 5}, th) == "error"
    assert m.group_verdict({"failed": 1, "installed": 5, "pending": 5}, th) == "running"
    assert m.group_verdict({"installed": 5, "pending": 5}, t(error_pct=0)) == "running"
    assert m.group_verdict({"failed": 1, "installed": 99, "pending": 5}, t(error_pct=0)) == "error"


def test_an_overridden_group_ignores_both_conditions() -> None:
    th = t(error_count=1)
    assert m.group_verdict({"failed": 5, "pending": 1}, th, overridden=True) == "running"
    assert m.group_verdict({"failed": 5}, th, overridden=True) == "succeeded"


# -- verbs ---------------------------------------------------------------------------------------------------------

EXPECTED = {
    # (state, verb): (state after, changed) or None for 409
    ("draft", "start"): ("running", True),
    ("scheduled", "start"): ("scheduled", False),
    ("running", "start"): ("running", False),
    ("paused", "start"): ("paused", False),
    ("finished", "start"): None,
    ("cancelled", "start"): None,
    ("draft", "pause"): None,
    ("scheduled", "pause"): ("paused", True),
    ("running", "pause"): ("paused", True),
    ("paused", "pause"): ("paused", False),
    ("finished", "pause"): None,
    ("cancelled", "pause"): None,
    ("draft", "resume"): None,
    ("scheduled", "resume"): ("scheduled", False),
    ("running", "resume"): ("running", False),
    ("paused", "resume"): ("running", True),
    ("finished", "resume"): None,
    ("cancelled", "resume"): None,
    ("draft", "cancel"): ("cancelled", True),
    ("scheduled", "cancel"): ("cancelled", True),
    ("running", "cancel"): ("cancelled", True),
    ("paused", "cancel"): ("cancelled", True),
    ("finished", "cancel"): None,
    ("cancelled", "cancel"): ("cancelled", False),
    ("draft", "retry-failed"): None,
    ("scheduled", "retry-failed"): None,
    ("running", "retry-failed"): ("running", True),
    ("paused", "retry-failed"): ("paused", True),
    ("finished", "retry-failed"): ("running", True),
    ("cancelled", "retry-failed"): None,
}


@pytest.mark.parametrize(("state", "verb"), sorted(EXPECTED))
def test_every_verb_in_every_state(state: str, verb: str) -> None:
    expected = EXPECTED[(state, verb)]
    if expected is None:
        with pytest.raises(ConflictError) as e:
            m.apply_verb(state, verb, has_errors=True)
        assert e.value.code == "campaign_state"
        return
    out = m.apply_verb(state, verb, has_errors=True)
    assert (out.state, out.changed) == expected
    if out.changed:  # the same verb again changes nothing
        again = m.apply_verb(out.state, verb, has_errors=False)
        assert (again.state, again.changed) == (out.state, False)


def test_every_state_and_verb_is_covered() -> None:
    assert {(s, v) for s in m.CAMPAIGN_STATES for v in m.VERBS} == set(EXPECTED)


def test_start_and_resume_schedule_a_campaign_that_starts_later() -> None:
    assert m.apply_verb("draft", "start", start_later=True).state == "scheduled"
    assert m.apply_verb("paused", "resume", start_later=True).state == "scheduled"


def test_retry_failed_without_errors_changes_nothing() -> None:
    assert m.apply_verb("finished", "retry-failed", has_errors=False) == m.VerbOutcome(
        state="finished", changed=False
    )


def test_an_unknown_verb_names_the_field() -> None:
    with pytest.raises(ValidationError) as e:
        m.apply_verb("running", "explode")
    assert e.value.field == "verb"


# -- rate ----------------------------------------------------------------------------------------------------------


def test_no_rate_means_no_limit() -> None:
    assert m.Rate(per_minute=None, growth=None, started=0).allowance(5) is None


def test_a_fixed_rate_lets_through_per_minute() -> None:
    r = m.Rate(per_minute=60, growth=None, started=0, tokens=0)
    total = 0
    for second in range(0, 121):
        n = r.allowance(float(second))
        assert n is not None
        r.spend(n)
        total += n
    assert total == 120


def test_a_quiet_spell_does_not_allow_a_burst() -> None:
    r = m.Rate(per_minute=60, growth=None, started=0)
    assert r.allowance(0) == 1
    assert r.allowance(3600) == 10  # ten seconds' worth at most


def test_a_growing_rate_multiplies_every_minute() -> None:
    r = m.Rate(per_minute=10, growth=2, started=0)
    assert [r.current(s) for s in (0, 59, 60, 120, 180)] == [10, 10, 20, 40, 80]
    assert r.current(10**9) == m.MAX_DISPATCH_PER_MINUTE


def test_start_at_is_kept_aware() -> None:
    s = spec(start_at="2026-12-01T00:00:00+01:00")
    assert isinstance(s.start_at, datetime) and s.start_at.utcoffset() is not None
