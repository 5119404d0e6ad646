"""Load on ``autolog server``: N concurrent clients sending metric batches, over loopback.

For each database (SQLite; PostgreSQL when ``initdb``/``pg_ctl`` are installed or
``AUTOLOG_TEST_POSTGRES_URL`` names one) and each client count, every client creates its own
run and sends ``--batches`` batches of ``--points`` metric points through the http backend's own
transport (keep-alive session, gzip bodies, retries on 503). Prints events stored per second and
the p50 / p99 latency of one batch request, then checks that the server stored every point
exactly once.

    .venv/bin/python benchmarks/bench_server.py            # 1, 8, 32 clients
    .venv/bin/python benchmarks/bench_server.py --quick    # a short run
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from autolog.backends.http import Transport
from autolog.server import auth
from autolog.server.db import Database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, db_url: str, workdir: Path, workers: int = 1):
        self.db_url, self.workdir, self.port = db_url, workdir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "autolog.server", "--port", str(self.port),
                   "--db", db_url, "--artifacts", str(workdir / "artifacts"),
                   "--workers", str(workers), "--log-level", "warning"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG_")}
        self.log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the server did not start; see " + str(workdir / "server.log"))

    def token(self) -> str:
        db = Database(self.db_url)
        secret, _ = auth.create_token(db, f"bench-{os.urandom(4).hex()}", "write")
        db.dispose()
        return secret

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # uvicorn's worker processes too
        self.process.wait(30)
        self.log.close()


class Postgres:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="autolog-bench-pg-"))
        self.port = free_port()
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.dir, "postgres", "postgres")
        self._call("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                   "--no-sync")
        self._call("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                   "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def binary(name: str) -> str | None:
        found = shutil.which(name) or next(iter(sorted(
            glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
        return found

    def _call(self, name: str, *args: str) -> None:
        subprocess.run([*self.run_as, str(self.binary(name)), *args], check=True,
                       capture_output=True)

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(self.binary("pg_ctl")), "-D", str(self.dir / "data"),
                        "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def client(url: str, token: str, batches: int, points: int, latencies: list[float],
           errors: list[str]) -> str:
    transport = Transport(url, token)
    run_id = os.urandom(16).hex()
    transport.json("PUT", f"/api/v1/runs/{run_id}", {"name": "bench", "project": "bench"})
    now = int(time.time() * 1000)
    for b in range(batches):
        steps = list(range(b * points, (b + 1) * points))
        body = {"start": b * 1000, "end": (b + 1) * 1000,
                "metrics": {"loss": {"steps": steps, "values": [1 / (s + 1) for s in steps],
                                     "timestamps": [now] * points}}}
        started = time.perf_counter()
        try:
            transport.json("POST", f"/api/v1/runs/{run_id}/batches", body)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - started)
    transport.close()
    return run_id


def measure(server: Server, token: str, clients: int, batches: int, points: int
            ) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    run_ids: list[str] = []
    threads = [threading.Thread(target=lambda: run_ids.append(
        client(server.url, token, batches, points, latencies, errors))) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    reader = Transport(server.url, token)
    stored = sum(reader.json("GET", f"/api/v1/runs/{r}/history",
                             params={"key": "loss", "max_points": 2})["total"] for r in run_ids)
    reader.close()
    latencies.sort()
    return {"clients": clients, "requests": len(latencies), "events": len(latencies) * points,
            "rate": len(latencies) * points / elapsed,
            "p50": statistics.median(latencies) * 1000 if latencies else float("nan"),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            if latencies else float("nan"),
            "errors": len(errors), "exact": stored == batches * points * clients}


def bench_database(name: str, url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        server = Server(url, Path(workdir), workers=args.workers)
        try:
            token = server.token()
            for clients in args.clients:
                row = measure(server, token, clients, args.batches, args.points)
                rows.append({"db": name, "workers": args.workers, **row})
                print_row(rows[-1])
        finally:
            server.stop()
    return rows


HEADER = (f"{'database':<11}{'workers':>8}{'clients':>8}{'requests':>10}{'events':>10}"
          f"{'events/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  stored exactly once")


def print_row(row: dict[str, Any]) -> None:
    print(f"{row['db']:<11}{row['workers']:>8}{row['clients']:>8}{row['requests']:>10}"
          f"{row['events']:>10}{row['rate']:>12,.0f}{row['p50']:>9.1f}{row['p99']:>9.1f}"
          f"{row['errors']:>8}  {'yes' if row['exact'] else 'NO'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 4 clients, fewer batches")
    parser.add_argument("--clients", default="1,8,32", help="comma list of client counts")
    parser.add_argument("--batches", type=int, default=40, help="batches per client")
    parser.add_argument("--points", type=int, default=1000, help="metric points per batch")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--db", default="sqlite,postgresql", help="databases to measure")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.batches, args.points = "1,4", 15, 500
    args.clients = [int(c) for c in args.clients.split(",")]
    print(f"autolog server load: {args.batches} batches of {args.points} points per client, "
          "loopback; provisional figures on a shared machine\n")
    print(HEADER)
    if "sqlite" in args.db:
        with tempfile.TemporaryDirectory() as tmp:
            bench_database("sqlite", f"sqlite:///{tmp}/bench.db", args)
    if "postgresql" in args.db:
        external = os.environ.get("AUTOLOG_TEST_POSTGRES_URL")
        if external:
            bench_database("postgresql", external, args)
        elif Postgres.binary("initdb") and Postgres.binary("pg_ctl"):
            cluster = Postgres()
            try:
                bench_database("postgresql", cluster.url, args)
            finally:
                cluster.stop()
        else:
            print("postgresql: skipped (no initdb/pg_ctl; set AUTOLOG_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
