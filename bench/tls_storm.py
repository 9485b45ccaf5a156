"""A boot storm over TLS through the fleet simulator: N chargers connect at once (`ampgate sim --scenario
boot-storm`) and boot, over plain ws, over wss (security profile 2's transport: the server's certificate) and over
wss with a client certificate per charger (profile 3: each issued by the simulator from a test CA at its first
connect, its CN the charger's id, verified by the node against that CA and matched to the URL's id).

    python bench/tls_storm.py --chargers 10000 [--workers 2] [--json OUT]

Each mode gets a fresh node (`ampgate serve`, its own database, --workers gateway workers, wss on an ECDSA P-256
certificate; unknown chargers accepted, the default). The simulator runs in its own processes on the same two
cores. Figures per mode, from the simulator's report (`--report`): connects/s and boots/s over their windows,
BootNotification round trip p50/p99 (from the CALL to its answer, after the handshakes), chargers booted, errors;
and the node's CPU over the run per charger (all its processes). The comparison in the same run: OpenSSL doing
both ends of a full handshake in one process on one core (bench/tls.py's limit), the most a core could do if the
node did nothing else. Prints a table and JSON (--json writes it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trustme

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nodeproc import start_node  # noqa: E402
from tls import cpu_s, emit, node_processes, openssl_limit, server_files  # noqa: E402

SIM_TIMEOUT = 600.0


def run_sim(url: str, chargers: int, duration: float, report: Path, extra: list[str]) -> dict[str, Any]:
    cmd = [str(Path(sys.executable).with_name("ampgate")), "sim", "--url", url, "--chargers", str(chargers)]
    cmd += [
        "--scenario",
        "boot-storm",
        "--duration",
        str(duration),
        "--report",
        str(report),
        "--quiet",
        *extra,
    ]
    subprocess.run(cmd, check=True, timeout=SIM_TIMEOUT, stdout=subprocess.DEVNULL)
    return dict(json.loads(report.read_text()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chargers", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds each simulator run lasts")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    server_ca, client_ca = trustme.CA(), trustme.CA()
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "chargers": args.chargers,
        "workers": args.workers,
    }
    with tempfile.TemporaryDirectory(prefix="ampgate-tls-storm-") as tmp:
        work = Path(tmp)
        leaf, cert, key, ca_pem = server_files(server_ca, work)
        ccert, ckey = work / "client-ca.pem", work / "client-ca.key"
        client_ca.cert_pem.write_to_path(str(ccert))
        client_ca.private_key_pem.write_to_path(str(ckey))
        modes = {
            "ws": [],
            "wss": ["--ca", str(ca_pem)],
            "wss_client_cert": [
                "--ca",
                str(ca_pem),
                "--client-ca-cert",
                str(ccert),
                "--client-ca-key",
                str(ckey),
            ],
        }
        for mode, extra in modes.items():
            node = start_node(
                work / mode, work / mode / "ampgate.db",
                "--workers", str(args.workers), "--max-chargers", str(args.chargers),
                "--ocpp-tls-port", "0", "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(ccert),
            )  # fmt: skip
            try:
                procs = node_processes(node)
                url = (
                    f"ws://127.0.0.1:{node.ocpp_port}/ocpp"
                    if mode == "ws"
                    else f"wss://127.0.0.1:{node.ocpp_tls_port}/ocpp"
                )
                cpu0, t0 = cpu_s(procs), time.monotonic()
                report = run_sim(url, args.chargers, args.duration, work / f"{mode}.json", extra)
                cpu1, wall = cpu_s(procs), time.monotonic() - t0
            finally:
                node.stop()
            boot = report.get("latency_ms", {}).get("BootNotification", {})
            results[mode] = {
                "booted": report.get("booted"),
                "connected": report.get("connected"),
                "connects_per_s": report.get("connects_per_s"),
                "boots_per_s": report.get("boots_per_s"),
                "boot_p50_ms": boot.get("p50"),
                "boot_p99_ms": boot.get("p99"),
                "errors": report.get("errors", {}),
                "error_details": report.get("error_details", {}),
                "refused_busy": report.get("refused_busy"),
                "tls": report.get("tls"),
                "node_cpu_ms_per_charger": round((cpu1 - cpu0) / args.chargers * 1000, 3),
                "run_s": round(wall, 1),
            }
        results["openssl_both_ends_one_core"] = openssl_limit(leaf, server_ca)
    limit = results["openssl_both_ends_one_core"]
    cols = list(modes)
    print(f"{args.chargers:,} chargers, boot storm{'':16}" + "".join(f"{c:>18}" for c in cols))
    for field in (
        "booted",
        "connects_per_s",
        "boots_per_s",
        "boot_p50_ms",
        "boot_p99_ms",
        "node_cpu_ms_per_charger",
    ):
        print(f"{field:42}" + "".join(f"{results[c][field]!s:>18}" for c in cols))
    print(f"{'errors':42}" + "".join(f"{sum(results[c]['errors'].values())!s:>18}" for c in cols))
    print(f"OpenSSL both ends, one core: {limit['full_per_s']:,} full handshakes/s")
    return emit(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
