"""The OCPP message benchmark at CI size: both paths handle every case and answer the same CALLRESULT.

No timing is asserted (CI machines vary, and --quick runs too few iterations to mean anything).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = ("heartbeat_16", "meter_values_16", "transaction_event_201")
CASE_KEYS = (
    "case",
    "protocol",
    "action",
    "message_bytes",
    "ours_path",
    "theirs_path",
    "agree",
    "ours_reply",
    "theirs_reply",
    "ours_ns",
    "theirs_ns",
    "ratio",
    "meets_target",
)


@pytest.mark.timeout(60)
def test_quick_run_both_paths_agree(tmp_path: Path) -> None:
    out = tmp_path / "ocpp_messages.json"
    cmd = [sys.executable, str(ROOT / "bench" / "ocpp_messages.py"), "--quick", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=50, cwd=ROOT)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    for key in ("quick", "target_ratio", "all_agree", "all_meet_target", "cases", "versions"):
        assert key in r, key
    assert r["quick"] is True
    assert [c["case"] for c in r["cases"]] == list(CASES)
    for c in r["cases"]:
        for key in CASE_KEYS:
            assert key in c, (c["case"], key)
        assert c["agree"], c
        assert json.loads(c["ours_reply"]) == json.loads(c["theirs_reply"])
        assert json.loads(c["ours_reply"])[0] == 3  # a CALLRESULT, not a CALLERROR
    assert r["all_agree"] is True
