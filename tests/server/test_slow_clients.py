"""Issue 15, item 13: unauthenticated clients can lock everyone out.

A real ``autolog server`` process on loopback with its default limits, 100 slow
unauthenticated connections held open against it (``slow.SlowClients``: partial bodies with no,
a made-up or a forged credential, a half-sent sign-in form, half-sent request heads, each
trickling a byte every half second), and, meanwhile, clients with a real token (a bearer
header, or a browser's session cookie) whose every request must succeed, quickly.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import new_run_id
from .live import LiveServer
from .slow import SlowClients, timed

QUICK_S = 3.0  # each authenticated request during the attack (they take ~10 ms when idle)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with the default limits (64 requests in flight), as users run it."""
    workdir = tmp_path_factory.mktemp("slow")
    server = LiveServer(f"sqlite:///{workdir / 'autolog.db'}", workdir).start()
    yield server
    server.stop()


def _bearer_requests(url: str, token: str, run_id: str) -> list[tuple[int, float]]:
    """Ten requests with a bearer token, each on a new connection: status and seconds."""
    auth = {"Authorization": f"Bearer {token}"}
    calls = [lambda: requests.put(f"{url}/api/v1/runs/{run_id}", json={"name": "under attack"},
                                  headers=auth, timeout=30)]
    for i in range(7):
        body = {"start": i, "end": i + 1, "metrics": {"loss": {
            "steps": [i], "values": [1.0 / (i + 1)], "timestamps": [1000 + i]}}}
        calls.append(lambda body=body: requests.post(f"{url}/api/v1/runs/{run_id}/batches",
                                                     json=body, headers=auth, timeout=30))
    calls.append(lambda: requests.get(f"{url}/api/v1/runs/{run_id}", headers=auth, timeout=30))
    calls.append(lambda: requests.get(f"{url}/api/v1/runs", headers=auth, timeout=30))
    return [(response.status_code, took) for response, took in map(timed, calls)]


def _assert_quick(results: list[tuple[int, float]]) -> None:
    statuses = [status for status, _ in results]
    assert statuses == [200] * len(results), results
    assert max(took for _, took in results) < QUICK_S, results


def test_unauthenticated_clients_cannot_lock_everyone_out(live: LiveServer) -> None:
    token = live.token("trainer", "write")
    run_id = new_run_id()
    with SlowClients(live.port, 100) as slow:
        time.sleep(1.5)  # the server has taken every one of them in
        results = _bearer_requests(live.url, token, run_id)
        still_open = len(slow.socks) - slow.closed_by_server()
    _assert_quick(results)
    assert still_open > 0  # the attack was real: the partial heads were still being held
    run = requests.get(f"{live.url}/api/v1/runs/{run_id}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert run["name"] == "under attack" and run["metric_summary"]["loss"]["count"] == 7


def test_a_signed_in_browser_is_not_locked_out_either(live: LiveServer) -> None:
    token = live.token("browser", "write")
    api = {"Authorization": f"Bearer {token}"}
    run_id = new_run_id()
    assert requests.put(f"{live.url}/api/v1/runs/{run_id}", json={}, headers=api,
                        timeout=30).ok
    browser = requests.Session()
    assert browser.post(f"{live.url}/login", data={"token": token}, allow_redirects=False,
                        timeout=30).status_code == 303
    csrf = browser.get(f"{live.url}/api/v1/session", timeout=30).json()["csrf"]
    with SlowClients(live.port, 100):
        time.sleep(1.5)
        calls = [lambda: browser.get(f"{live.url}/api/v1/session", timeout=30),
                 lambda: browser.get(f"{live.url}/api/v1/runs", timeout=30),
                 lambda: browser.get(f"{live.url}/api/v1/projects", timeout=30),
                 lambda: browser.get(f"{live.url}/r/{run_id}", timeout=30),  # a page
                 *[lambda i=i: browser.patch(f"{live.url}/api/v1/runs/{run_id}",
                                             json={"note": f"edit {i}"},
                                             headers={"X-CSRF-Token": csrf}, timeout=30)
                   for i in range(5)],
                 lambda: browser.get(f"{live.url}/api/v1/runs/{run_id}", timeout=30)]
        results = [(response.status_code, took) for response, took in map(timed, calls)]
    _assert_quick(results)
    assert requests.get(f"{live.url}/api/v1/runs/{run_id}", headers=api,
                        timeout=30).json()["note"] == "edit 4"


def test_a_slow_authenticated_body_times_out_and_frees_its_slot(tmp_path: Path) -> None:
    server = LiveServer(f"sqlite:///{tmp_path / 'autolog.db'}", tmp_path, "--max-in-flight",
                        "2", "--body-timeout", "1").start()
    try:
        token = server.token("slow-uploader", "write")
        run_id = new_run_id()
        assert requests.put(f"{server.url}/api/v1/runs/{run_id}", json={}, timeout=30,
                            headers={"Authorization": f"Bearer {token}"}).ok
        socks = []
        for _ in range(2):  # both slots: uploads that stop after 10 of 1,000 bytes
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(f"PUT /api/v1/runs/{run_id}/files/slow.bin HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n"
                         "0123456789".encode())
            socks.append(sock)
        began = time.monotonic()
        answers = [_read_to_close(sock) for sock in socks]
        waited = time.monotonic() - began
        for sock in socks:
            sock.close()
    finally:
        server.stop()
    assert all(a.startswith("HTTP/1.1 408") for a in answers), answers
    assert "no part of the request body arrived for 1 s" in answers[0]
    assert 0.5 < waited < 5, waited
    assert not (server.artifacts / run_id / "slow.bin").exists()


def _read_to_close(sock: socket.socket) -> str:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_half_sent_request_head_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    server = LiveServer(f"sqlite:///{tmp_path / 'autolog.db'}", tmp_path,
                        "--header-timeout", "1").start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        began = time.monotonic()
        for _ in range(3):  # trickling does not keep it open
            time.sleep(0.3)
            sock.sendall(b"X-A: b\r\n")
        data = sock.recv(4096)  # EOF once the server closes it
        waited = time.monotonic() - began
        sock.close()
        assert requests.get(f"{server.url}/healthz", timeout=10).ok
    finally:
        server.stop()
    assert data == b"" and 0.5 < waited < 5, (data, waited)


def test_unauthenticated_requests_are_limited_per_client_address(tmp_path: Path) -> None:
    server = LiveServer(f"sqlite:///{tmp_path / 'autolog.db'}", tmp_path,
                        "--max-anonymous-per-client", "3").start()
    try:
        forms = []
        for _ in range(3):  # three half-sent sign-in forms take this address's share
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=")
            forms.append(sock)
        time.sleep(0.5)
        refused = requests.get(f"{server.url}/login", timeout=10)
        token = server.token("someone", "read")
        allowed = requests.get(f"{server.url}/api/v1/runs", timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
        for sock in forms:
            sock.close()
        time.sleep(0.5)
        again = requests.get(f"{server.url}/login", timeout=10)
    finally:
        server.stop()
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1", refused.text
    assert "unauthenticated" in refused.json()["detail"]
    assert allowed.status_code == 200 and again.status_code == 200


def test_an_unauthenticated_api_request_is_refused_before_its_body(live: LiveServer) -> None:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    sock.sendall(b"POST /api/v1/runs/" + b"0" * 32 + b"/batches HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 1000000\r\n\r\n{")
    began = time.monotonic()
    answer = _read_to_close(sock)  # at once: the 999,999 other bytes are never awaited
    took = time.monotonic() - began
    sock.close()
    assert answer.startswith("HTTP/1.1 401"), answer
    assert "\r\nwww-authenticate: Bearer\r\n" in answer and "missing bearer token" in answer
    assert took < QUICK_S


def test_a_refused_small_body_is_read_so_the_answer_is_not_reset(live: LiveServer) -> None:
    """Found by the fuzzer (item 14): a 401 sent while the request's body was still arriving,
    then a close, let the kernel reset the connection and destroy the 401 before the client
    read it. A small body is now read and dropped first, and the connection stays usable."""
    body = b'{"start": 0, "end": 1}'
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    head = (f"POST /api/v1/runs/{'0' * 32}/batches HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head)
    time.sleep(0.2)  # the server has the head, not yet the body
    sock.sendall(body)
    first = _read_response(sock)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection
    second = _read_response(sock)
    sock.close()
    assert first.startswith("HTTP/1.1 401") and "connection: close" not in first.lower(), first
    assert second.startswith("HTTP/1.1 200"), second


def _read_response(sock: socket.socket) -> str:
    """One whole response (its head, then ``Content-Length`` bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data  # the server closed the connection
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, data
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()
