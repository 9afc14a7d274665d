"""TLS benchmark: ``dispatch send +tls`` against DCMTK's ``storescu +tls`` on the same
TLS ``storescp`` (``--ignore``, ``TCP_NODELAY=1``), over the tiny and CT corpora of
:mod:`benchmarks.corpus`. Prints seconds (best of ``--runs``) and the ratio
storescu / dispatch (above 1.0: dispatch is faster). Certificates (a CA, a server and a
client, mutual authentication) are made with ``openssl`` in a temporary directory.

    python -m benchmarks.bench_tls [--runs 3] [tiny ct]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import corpus as corpora
from benchmarks.bench_send import STORESCU, dispatch_executable, free_port

STORESCP = "/usr/bin/storescp"
ENV = {**os.environ, "TCP_NODELAY": "1"}


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_certs(directory: Path) -> dict[str, Path]:
    """CA, server and client key/certificate pairs (EC P-256)."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", directory / "ca.key", "-out",
             directory / "ca.pem", "-days", "2", "-subj", "/CN=bench CA")  # fmt: skip
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-new", *ec, "-keyout", directory / f"{name}.key", "-out",
                 directory / f"{name}.csr", "-subj", f"/CN={name}")  # fmt: skip
        _openssl("x509", "-req", "-in", directory / f"{name}.csr", "-CA", directory / "ca.pem",
                 "-CAkey", directory / "ca.key", "-CAcreateserial", "-out",
                 directory / f"{name}.pem", "-days", "2", "-extfile", ext)  # fmt: skip
    return {p.stem + p.suffix: p for p in directory.iterdir()}


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("storescp +tls did not start")


def best_of(argv: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, env=ENV, capture_output=True)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-500:]!r}")
        best = min(best, elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", default=["tiny", "ct"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    try:
        certs = make_certs(workdir)
        tls_server = ["+tls", str(certs["server.key"]), str(certs["server.pem"]),
                      "+cf", str(certs["ca.pem"])]  # fmt: skip
        tls_client = ["+tls", str(certs["client.key"]), str(certs["client.pem"]),
                      "+cf", str(certs["ca.pem"])]  # fmt: skip
        port = free_port()
        peer = subprocess.Popen([STORESCP, "--ignore", *tls_server, str(port)], env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            _wait_listening(port, peer)
            print(f"{'corpus':8} {'files':>6} {'MB':>8} {'dispatch s':>11} {'storescu s':>11}"
                  f" {'ratio':>6}")  # fmt: skip
            for name in args.corpora:
                c = corpora.ensure(name)
                ours = best_of([str(dispatch_executable()), "send", *tls_client, "+sd",
                                "127.0.0.1", str(port), str(c.directory)], args.runs)  # fmt: skip
                theirs = best_of([STORESCU, *tls_client, "+sd", "127.0.0.1", str(port),
                                  str(c.directory)], args.runs)  # fmt: skip
                print(f"{name:8} {c.files:6d} {c.total_bytes / 1e6:8.1f} {ours:11.2f}"
                      f" {theirs:11.2f} {theirs / ours:6.2f}x", flush=True)  # fmt: skip
        finally:
            peer.terminate()
            peer.wait(10)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
