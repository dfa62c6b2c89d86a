"""Slow clients against a real gunicorn on 127.0.0.1 (gunicorn.conf.py, app.gunicorn_worker).

One worker with the configured threads and 2-second read limits: six clients that trickle their headers
a byte at a time, and as many that trickle a body (more than there are threads), are dropped or answered
408, /api/v1/health keeps answering meanwhile, and a body that stalls gets a 408. Bounded: the whole
test takes about 15 seconds.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import threading
import time

import pytest

from app.gunicorn_worker import READ_AHEAD, ReadAhead
from benchmarks.load import free_port
from tests.helpers.app import make_test_app
from tests.helpers.paths import REPO_ROOT

LIMIT = 2.0  # GUNICORN_HEADER_TIMEOUT and GUNICORN_BODY_TIMEOUT for this server
SLOW_CLIENTS = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """gunicorn (1 worker, gunicorn.conf.py's threads) on a free loopback port; stopped by its own pid."""
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    make_test_app(tmp_path).extensions["storage"].dispose()  # creates the tables in tmp_path/storecast.db
    port = free_port()
    env = {
        **os.environ,
        "SECRET_KEY": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'storecast.db'}",
        "STORECAST_INSTANCE": str(tmp_path / "instance"),
        "MODELS_DIR": str(tmp_path / "models"),
        "PORT": str(port),
        "GUNICORN_WORKERS": "1",
        "GUNICORN_HEADER_TIMEOUT": str(LIMIT),
        "GUNICORN_BODY_TIMEOUT": str(LIMIT),
        "GUNICORN_ACCESSLOG": "/dev/null",
        "GUNICORN_GRACEFUL_TIMEOUT": "2",
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [
            str(REPO_ROOT / ".venv" / "bin" / "gunicorn"),
            "--config",
            str(REPO_ROOT / "gunicorn.conf.py"),
            "wsgi:app",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()[-2000:]
            try:
                if _health(port)[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _health(port: int) -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/api/v1/health")
        return connection.getresponse().status, time.monotonic() - started
    finally:
        connection.close()


def _trickle(port: int, results: dict[int, float | None], key: int) -> None:
    """Send a request line, then one header byte every 0.3 s; note when the server hangs up."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(60):  # 18 s of trickling unless the server drops us
                sock.sendall(b"X")
                time.sleep(0.3)
        except OSError:
            results[key] = time.monotonic() - started
            return
    results[key] = None


def _trickle_body(port: int, answers: dict[int, int], key: int) -> None:
    """Send a request's headers, then its 20-byte body a byte every 0.3 s; note the answer's status."""
    body = b'{"store":1,"dept":1}'
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(
            b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for byte in body:
            sock.sendall(bytes([byte]))
            time.sleep(0.3)
        response = http.client.HTTPResponse(sock)
        response.begin()
        answers[key] = response.status


def test_slow_clients_are_dropped_while_health_still_answers(server):
    dropped: dict[int, float | None] = {}
    bodies: dict[int, int] = {}
    clients = [threading.Thread(target=_trickle, args=(server, dropped, i)) for i in range(SLOW_CLIENTS)]
    clients += [threading.Thread(target=_trickle_body, args=(server, bodies, i)) for i in range(SLOW_CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(0.5)
    answers = []
    while any(client.is_alive() for client in clients) and len(answers) < 20:
        answers.append(_health(server))
        time.sleep(0.25)
    for client in clients:
        client.join(30)
    assert all(status == 200 for status, _ in answers)
    assert max(seconds for _, seconds in answers) < LIMIT + 1.0  # never stuck behind the trickling
    assert len(dropped) == SLOW_CLIENTS and None not in dropped.values()
    assert max(dropped.values()) < LIMIT + 1.5  # its limit, and the second the worker's loop may take
    assert len(bodies) == SLOW_CLIENTS and 500 not in bodies.values()  # each slow body answered in turn


def test_a_stalled_body_gets_a_408(server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server), timeout=15) as sock:
        sock.sendall(
            b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"store"'
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    assert response.status == 408
    assert b"the request body stalled" in body
    assert time.monotonic() - started < LIMIT + 1.0


def test_a_request_goes_to_a_thread_once_its_head_and_a_small_body_are_in():
    get = ReadAhead()
    assert not get.take(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert get.take(b"\r\n")  # no body: the head is the request
    post = ReadAhead()
    assert not post.take(b"POST /p HTTP/1.1\r\ncontent-length: 10\r\n\r\n12345")
    assert post.take(b"67890")
    assert ReadAhead().take(b"POST /p HTTP/1.1\nContent-Length: 2\n\nok")  # bare line feeds too
    large = b"POST /p HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (READ_AHEAD + 1)
    assert ReadAhead().take(large)  # a large body is read by the thread
    assert ReadAhead().take(b"POST /p HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert ReadAhead().take(b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
