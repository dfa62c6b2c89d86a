"""Slow clients against a real gunicorn on 127.0.0.1 (gunicorn.conf.py, app.gunicorn_worker).

One worker with the configured threads and 2-second read limits: six clients that trickle their headers
a byte at a time, and as many that trickle a body (more than there are threads), are dropped or answered
408, /api/v1/health keeps answering meanwhile, and a body that stalls gets a 408. Bounded: the whole
test takes about 15 seconds.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.gunicorn_worker import READ_AHEAD, ReadAhead
from benchmarks.load import free_port
from tests.helpers.app import make_test_app
from tests.helpers.paths import REPO_ROOT

LIMIT = 2.0  # GUNICORN_HEADER_TIMEOUT and GUNICORN_BODY_TIMEOUT for this server
SLOW_CLIENTS = 6


@contextlib.contextmanager
def _gunicorn(tmp_path: Path, ready: Callable[[int], bool], **settings: str) -> Iterator[int]:
    """gunicorn (1 worker, gunicorn.conf.py's threads) on a free loopback port, once `ready(port)`;
    stopped by its own pid. `settings` join its environment."""
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
        **settings,
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
                if ready(port):
                    break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with _gunicorn(tmp_path_factory.mktemp("gunicorn"), lambda port: _health(port)[0] == 200) as port:
        yield port


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


def _https_status(port: int, context: ssl.SSLContext, path: str = "/api/v1/health") -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_gunicorn_given_a_certificate_serves_https(tmp_path):
    """TLS terminated by gunicorn itself: the worker leaves the handshake to gthread and still answers."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    tls = f"--certfile {cert} --keyfile {key}"
    with _gunicorn(tmp_path, lambda port: _https_status(port, context) == 200, GUNICORN_CMD_ARGS=tls) as port:
        assert [_https_status(port, context) for _ in range(3)] == [200, 200, 200]
        assert _https_status(port, context, "/api/v1/no-such-thing") == 404
