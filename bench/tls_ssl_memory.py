"""How much an OpenSSL server connection (this machine's libssl, through Python's ssl) holds, alone: N server
SSL objects before any handshake, then N after a TLS 1.3 handshake on memory BIOs (the client side freed,
malloc's free pages returned). The comparison for the worker's figure in bench/tls.py (docs/benchmarks.md).

    python bench/tls_ssl_memory.py
"""

import ctypes
import gc
import os
import ssl

import trustme

from tls import memory_contexts, memory_handshake


def pss_kb() -> int:
    with open(f"/proc/{os.getpid()}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss")


def main() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", key_type=trustme.KeyType.ECDSA)
    server, client = memory_contexts(leaf, ca)
    n = 5000
    base = pss_kb()
    keep = [server.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True) for _ in range(n)]
    print(f"server SSL object before a handshake: {(pss_kb() - base) / n:.2f} KB")
    del keep
    gc.collect()

    base = pss_kb()
    servers = [memory_handshake(server, client)[0] for _ in range(n)]
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    print(f"server side after a TLS 1.3 handshake: {(pss_kb() - base) / n:.2f} KB ({len(servers)} held)")
    print(f"OpenSSL {ssl.OPENSSL_VERSION}")


if __name__ == "__main__":
    main()
