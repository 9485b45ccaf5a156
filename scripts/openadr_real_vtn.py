"""`make test-openadr`: our VEN against a real VTN, the `openleadr-vtn` crate (LF Energy OpenLEADR, OpenADR 3.1),
on a throwaway PostgreSQL. Opt-in: it installs a Rust binary and runs a database server, so it is not part of
`make test`.

Steps, each printed as it runs; a step that cannot run here stops the script with the reason:
1. the VTN binary: `cargo install openleadr-vtn --features internal-oauth` into .cache/openleadr-vtn (kept
   between runs; the build takes long on a small machine: --build-timeout bounds it);
2. PostgreSQL from Debian's package (`apt-get install postgresql` when no initdb is found): a new cluster in a
   temporary directory, owned by the `postgres` user, listening on a free loopback port only;
3. the VTN on a free port with its own OAuth provider; it applies its migrations at start; the crate's user
   fixture adds a business-logic client (bl-client) and a VEN client (ven-client-client-id);
4. as the business logic: a program, the VEN (NL-AMP) and its resource for site A (by EAN), a capacity event
   targeting that EAN;
5. our VEN (ampgate.openadr) with the VEN client's credentials: one poll, then what it applied, rejected and
   could not do, and its status;
6. everything stopped and removed.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

from ampgate.clock import Clock  # noqa: E402
from ampgate.load.model import SiteRow  # noqa: E402
from ampgate.openadr import OpenAdrSettings, VenSettings, open_ven  # noqa: E402

CRATE = "openleadr-vtn"
CRATE_VERSION = "0.2.8"
CACHE = ROOT / ".cache" / "openleadr-vtn"
EAN = "871687120000000018"
# The crate's fixture users (src/data_source/postgres/fixtures/users.sql): their secrets are the plain text the
# fixture's comments give.
BL = ("bl-client", "bl-client")
VEN = ("ven-client-client-id", "ven-client")


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def stop(reason: str) -> None:
    print(f"\n!! cannot go on: {reason}", flush=True)
    raise SystemExit(2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vtn_binary(timeout: float) -> Path:
    binary = CACHE / "bin" / CRATE
    if binary.exists():
        print(f"using {binary}")
        return binary
    if shutil.which("cargo") is None:
        stop("cargo is not installed")
    cmd = [
        "cargo", "install", CRATE, "--version", CRATE_VERSION, "--features", "internal-oauth",
        "--root", str(CACHE), "--target-dir", str(CACHE / "target"),
    ]  # fmt: skip
    print(" ".join(cmd), f"(at most {timeout:.0f} s)")
    try:
        subprocess.run(cmd, check=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(f"building {CRATE} took longer than {timeout:.0f} s; run again with a larger --build-timeout")
    except subprocess.CalledProcessError as e:
        stop(f"cargo install failed ({e.returncode})")
    return binary


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        print("no PostgreSQL: apt-get install postgresql")
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        stop("Debian's postgresql package installed no initdb")
    return Path(found[-1]).parent


def as_postgres(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + cmd, check=True, **kwargs)


def crate_file(relative: str) -> Path:
    """A file of the crate's source, as cargo downloaded it (migrations, fixtures)."""
    pattern = os.path.expanduser(f"~/.cargo/registry/src/*/{CRATE}-{CRATE_VERSION}/{relative}")
    found = glob.glob(pattern)
    if not found:
        stop(f"the crate's {relative} is not in the cargo registry ({pattern})")
    return Path(found[0])


# PostgreSQL before 16 wants an alias on every subquery in FROM; two of the crate's migrations have none.
_UNALIASED = re.compile(r"(FROM \(SELECT unnest\(\w+\) AS \w+\))(?!\s+AS)")


def finish_migrations(psql: list[str]) -> list[str]:
    """Apply the crate's migrations the VTN could not (on Debian's PostgreSQL 15, those with an unaliased
    subquery), each with the alias added, recording them as sqlx does under the checksum of the crate's own
    text, so the VTN finds its schema complete and unmodified. Returns the versions applied here."""
    done = subprocess.run(
        [*psql, "-tAc", "SELECT version FROM _sqlx_migrations WHERE success"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    applied: list[str] = []
    for path in sorted(crate_file("migrations").glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if version in done:
            continue
        original = path.read_text()
        patched = _UNALIASED.sub(r"\1 AS u", original)
        checksum = hashlib.sha384(original.encode()).hexdigest()
        record = (
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES"
            f" ({int(version)}, '{name.replace('_', ' ')}', true, decode('{checksum}', 'hex'), 0);"
        )
        script = f"BEGIN;\n{patched}\n{record}\nCOMMIT;\n"
        subprocess.run([*psql, "-q", "-v", "ON_ERROR_STOP=1"], input=script, text=True, check=True)
        applied.append(f"{version}{' (alias added)' if patched != original else ''}")
    return applied


def wait_ready(base: str, work: Path) -> None:
    for _ in range(100):
        try:
            httpx.get(base + "/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    print((work / "vtn.log").read_text()[-2000:])
    stop("the VTN did not start listening")


class Limits:
    def __init__(self) -> None:
        self.applied: dict[str, tuple[str, float, datetime, datetime]] = {}

    async def apply_external(
        self, *, source: str, ref: str, node: str, limit_kw: float, start: datetime, end: datetime
    ) -> None:
        self.applied[ref] = (node, limit_kw, start, end)
        print(
            f"   apply_external {source} {ref}: {limit_kw} kW on {node} from {start:%H:%M:%S} to {end:%H:%M:%S}"
        )

    async def cancel_external(self, *, source: str, ref: str) -> None:
        self.applied.pop(ref, None)
        print(f"   cancel_external {source} {ref}")

    def external_refs(self, source: str) -> set[str]:
        return set(self.applied)


class Readings:
    def measured_kw(self, site_id: str) -> float | None:
        return 42.0

    def energy_kwh(self, site_id: str, start: datetime, end: datetime) -> float | None:
        return 10.5


class Sites:
    def page_sites(self, limit: int, after: str | None = None) -> list[SiteRow]:
        if after is not None:
            return []
        now = datetime.now(UTC)
        return [
            SiteRow(
                id="A", name=None, phase_limits_a=(200.0, 200.0, 200.0), limit_kw=None, voltage_v=230.0,
                time_zone="Europe/Amsterdam", location=None, ean=EAN, created_at=now, updated_at=now,
            )
        ]  # fmt: skip


class Prices:
    async def replace_event(self, event_id: str, prices: Any) -> None:
        print(f"   prices of {event_id}: {len(prices)}")

    async def delete_event(self, event_id: str) -> None:
        pass

    def event_ids(self) -> set[str]:
        return set()


def bl_call(http: httpx.Client, token: str, method: str, path: str, body: Any = None) -> Any:
    r = http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    print(f"   BL {method} {path}: {r.status_code}")
    if r.status_code >= 400:
        print(f"      {r.text[:400]}")
        return None
    return r.json()


def business_logic(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/auth/token",
            data={"grant_type": "client_credentials", "client_id": BL[0], "client_secret": BL[1]},
        )
        print(f"   BL token: {r.status_code}")
        if r.status_code != 200:
            stop(f"the VTN gave the business-logic client no token: {r.text[:300]}")
        token = r.json()["access_token"]
        now = datetime.now(UTC).replace(microsecond=0)
        program = bl_call(
            http,
            token,
            "POST",
            "/programs",
            {
                "objectType": "PROGRAM",
                "programName": "grid-aware-charging",
                "intervalPeriod": {"start": now.isoformat(), "duration": "PT15M"},
                "payloadDescriptors": [
                    {
                        "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                        "payloadType": "IMPORT_CAPACITY_LIMIT",
                        "units": "KW",
                    }
                ],
                "targets": [EAN],
            },
        )
        if program is None:
            stop("the VTN refused the program")
        ven = bl_call(
            http,
            token,
            "POST",
            "/vens",
            {"objectType": "BL_VEN_REQUEST", "clientID": VEN[0], "venName": "NL-AMP", "targets": [EAN]},
        )
        if ven is not None:
            bl_call(
                http,
                token,
                "POST",
                "/resources",
                {
                    "objectType": "BL_RESOURCE_REQUEST",
                    "clientID": VEN[0],
                    "venID": ven["id"],
                    "resourceName": "A",
                    "targets": [EAN],
                },
            )
        event = bl_call(
            http,
            token,
            "POST",
            "/events",
            {
                "objectType": "EVENT",
                "programID": program["id"],
                "eventName": "capacity",
                "targets": [EAN],
                "payloadDescriptors": [
                    {
                        "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                        "payloadType": "IMPORT_CAPACITY_LIMIT",
                        "units": "KW",
                    }
                ],
                # One-minute intervals, the first half over already: the VEN applies what remains and, once the
                # first interval ends, reports it.
                "intervalPeriod": {"start": (now - timedelta(seconds=30)).isoformat(), "duration": "PT1M"},
                "intervals": [
                    {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [40.0]}]},
                    {"id": 1, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [25.0]}]},
                ],
            },
        )
        if event is None:
            stop("the VTN refused the capacity event")


def show_reports(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/auth/token",
            data={"grant_type": "client_credentials", "client_id": BL[0], "client_secret": BL[1]},
        )
        token = r.json()["access_token"]
        for report in http.get("/reports", headers={"Authorization": f"Bearer {token}"}).json():
            print("     ", json.dumps(report))


async def run_ven(base: str) -> dict[str, Any]:
    limits = Limits()
    published: list[Any] = []
    settings = OpenAdrSettings(
        vtn_url=base, client_id=VEN[0], client_secret=VEN[1], ven=VenSettings(ven_name="NL-AMP")
    )
    async with open_ven(
        settings,
        limits=limits,
        readings=Readings(),
        sites=Sites(),
        prices=Prices(),  # type: ignore[arg-type,unused-ignore]
        publish=published.append,
        clock=Clock(),
        callback_url=None,
    ) as ven:
        ok = await ven.poll_once()
        print(f"   poll: {'answered' if ok else 'failed'}")
        if ok and limits.applied:
            first_end = min(end for _, _, _, end in limits.applied.values())
            wait = (first_end - datetime.now(UTC)).total_seconds() + 1
            print(f"   waiting {wait:.0f} s for the first interval to end, then reporting")
            await trio.sleep(max(0.0, wait))
            await ven.tick()
            print(f"   reports sent: {ven.reports_sent}")
        for e in published:
            print(
                f"   bus: {type(e).__name__} {json.dumps({k: str(getattr(e, k)) for k in e.__struct_fields__})}"
            )
        status = ven.status()
    print("   status:", json.dumps(status, default=str, indent=2))
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-timeout", type=float, default=3600.0, help="seconds for cargo install")
    parser.add_argument(
        "--vtn-binary",
        type=Path,
        default=None,
        help="an openleadr-vtn binary built with internal-oauth (no build)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="   %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.INFO)

    step(f"1. the VTN binary ({CRATE} {CRATE_VERSION}, internal OAuth)")
    binary = args.vtn_binary if args.vtn_binary is not None else vtn_binary(args.build_timeout)

    step("2. a throwaway PostgreSQL")
    bindir = pg_bin()
    work = Path(tempfile.mkdtemp(prefix="openadr-pg-"))
    shutil.chown(work, "postgres", "postgres") if os.geteuid() == 0 else None
    pg_port = free_port()
    data = work / "data"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
            stdout=subprocess.DEVNULL,
        )
        as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(work / "pg.log"), "-w", "start",
             "-o", f"-p {pg_port} -k {work} -c listen_addresses=127.0.0.1"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        as_postgres(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "openadr"]
        )
        print(f"PostgreSQL {bindir.parent.name} on 127.0.0.1:{pg_port}")

        step("3. the VTN")
        vtn_port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/openadr",
            "PORT": str(vtn_port),
            "OAUTH_TYPE": "INTERNAL",
            "OAUTH_BASE64_SECRET": "dGhpcyBpcyBhIHRocm93YXdheSBzZWNyZXQgb2YgMzIgYnl0ZXMh",
            "OAUTH_TOKEN_URL": f"http://127.0.0.1:{vtn_port}/auth/token",
            "RUST_LOG": "info",
        }
        log = open(work / "vtn.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{vtn_port}"
        wait_ready(base, work)
        psql = ["psql", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "-d", "openadr"]
        shimmed = finish_migrations(psql)
        if shimmed:
            # The VTN stopped at the first migration PostgreSQL 15 refused; with the rest applied here, it is
            # started again on the complete schema.
            print(
                f"migrations the VTN could not apply on PostgreSQL {bindir.parent.name}, applied here: {shimmed}"
            )
            procs[0].terminate()
            procs[0].wait(timeout=10)
            procs[0] = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
            wait_ready(base, work)
        subprocess.run(
            [
                *psql,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
                str(crate_file("src/data_source/postgres/fixtures/users.sql")),
            ],
            check=True,
        )
        print(f"VTN on {base}, fixture users loaded")

        step("4. the business logic: program, VEN, resource, capacity event")
        business_logic(base)

        step("5. our VEN (ampgate.openadr)")
        trio.run(run_ven, base)
        print("   reports as the VTN keeps them (read back by the business logic):")
        show_reports(base)
    finally:
        step("6. cleaning up")
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        if data.exists():
            as_postgres(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], stdout=subprocess.DEVNULL
            )
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
