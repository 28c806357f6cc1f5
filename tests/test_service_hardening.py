"""`carroyage serve` against greedy, slow and hostile clients, over real HTTP (uvicorn on 127.0.0.1,
with the protocol and settings `carroyage serve` uses, short bounds), and its OpenAPI fuzzed."""

import socket
import time

import pytest
from servers import client, serving

from carroyage.address.server import API_CSP, Limits, create_app
from carroyage.data import BAN_FIXTURE

LIMIT = 200_000  # bytes of body accepted
SHORT = Limits(headers_timeout=0.4, request_timeout=0.8, max_header_bytes=4096)
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


@pytest.fixture(scope="module")
def app():
    from carroyage.address.check import make_checker

    return create_app(make_checker(None, BAN_FIXTURE), max_upload_bytes=LIMIT)


@pytest.fixture(scope="module")
def url(app):
    with serving(app, SHORT) as base:
        yield base


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def talk(url: str, *chunks: bytes, pause: float = 0.0, wait: float = 5.0) -> tuple[bytes, float]:
    """Send ``chunks`` on a raw connection, ``pause`` seconds apart; what came back until the
    server closed it, and after how long (from the first byte sent)."""
    with socket.create_connection(("127.0.0.1", port_of(url))) as sock:
        sock.settimeout(wait)
        start = time.monotonic()
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(pause)
        received = b""
        while block := sock.recv(65536):
            received += block
        return received, time.monotonic() - start


def multipart(rows: int, field: str = "file"):
    """A CSV upload as a generator: httpx sends it chunked, with no Content-Length."""
    yield f'--B\r\nContent-Disposition: form-data; name="{field}"; filename="a.csv"\r\n\r\nid;lon;lat\r\n'.encode()
    for _ in range(rows // 1000):
        yield b"1;2.3046;49.9103\r\n" * 1000
    yield b"\r\n--B--\r\n"


MULTIPART = {"content-type": "multipart/form-data; boundary=B"}


def test_bodies_over_the_limit_get_413_chunked_or_declared(url):
    with client(url) as http:
        small = http.post("/api/locate-csv", content=multipart(2000), headers=MULTIPART)
        assert small.status_code == 200 and small.text.count("\n") == 2001  # chunked, under the limit: served
        for path, field in (("/api/locate-csv", "file"), ("/search/csv", "data"), ("/search/csv/", "data")):
            big = http.post(path, content=multipart(20_000, field), headers=MULTIPART)  # 360 kB, chunked
            assert big.status_code == 413, (path, big.status_code, big.text)
            assert big.json()["detail"] == "fichier trop volumineux : 0,2 Mo au plus"
            assert "content-length" not in big.request.headers
        declared = http.post("/api/locate-csv", files={"file": ("a.csv", b"id;lon;lat\n" + b"1;2.3;49.9\n" * 30_000)})
        assert declared.status_code == 413 and declared.headers["x-frame-options"] == "DENY"
        assert http.get("/api/locate", params={"lon": 2.3046, "lat": 49.9103}).status_code == 200  # same client


def test_a_partial_request_line_is_answered_408_and_closed_in_time(url):
    answer, after = talk(url, b"GET /api/lo")  # and then nothing
    assert answer.startswith(b"HTTP/1.1 408 ") and after < SHORT.headers_timeout + 0.5, (answer[:60], after)
    assert b"x-content-type-options: nosniff" in answer and b"0,4 s" in answer


def test_trickled_headers_get_no_more_time_for_each_byte(url):
    request = b"GET /api/locate?lon=2.3&lat=49.9 HTTP/1.1\r\n"
    answer, after = talk(url, *[bytes([c]) for c in request], pause=0.05)
    assert answer.startswith(b"HTTP/1.1 408 ") and after < SHORT.headers_timeout + 0.5, after


def test_a_body_that_never_comes_is_cut_at_the_request_bound(url):
    head = b"POST /api/locate-csv HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
    head += b"Content-Type: multipart/form-data; boundary=B\r\n\r\n--B\r\n"
    answer, after = talk(url, head)  # headers in time, then 5 bytes of the 1000 announced
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:60]
    assert SHORT.request_timeout - 0.1 < after < SHORT.request_timeout + 0.5, after


def test_many_idle_connections_are_all_closed_in_time(url):
    sockets = [socket.create_connection(("127.0.0.1", port_of(url))) for _ in range(40)]
    try:
        for sock in sockets:
            sock.settimeout(SHORT.headers_timeout + 1.0)
        closed = [sock.recv(4096).startswith(b"HTTP/1.1 408 ") and sock.recv(4096) == b"" for sock in sockets]
        assert all(closed)
    finally:
        for sock in sockets:
            sock.close()
    with client(url) as http:  # and the server still answers
        assert http.get("/openapi.json").status_code == 200


def test_headers_too_long_get_431(url):
    answer, _ = talk(url, b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ", b"a" * 3000, b"a" * 3000, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_connections_over_the_cap_get_503(app):
    with serving(app, Limits(max_connections=3)) as base:
        idle = [socket.create_connection(("127.0.0.1", port_of(base))) for _ in range(2)]
        try:
            time.sleep(0.1)
            answer, _ = talk(base, b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 503 ") and b"content-security-policy: default-src 'none'" in answer
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.1)
        with client(base) as http:
            assert http.get("/openapi.json").status_code == 200


def test_every_response_carries_the_security_headers(url):
    with client(url) as http:
        replies = {
            "page": http.get("/"),
            "api": http.get("/api/locate", params={"lon": 2.3046, "lat": 49.9103}),
            "not found": http.get("/nowhere"),
            "invalid": http.get("/api/zones", params={"lon": "x", "lat": 1}),
            "refused": http.get("/api/locate", params={"adresse": "zzzz qqqq"}),
            "csv": http.post("/api/locate-csv", files={"file": ("a.csv", b"id;lon;lat\n1;2.3;49.9\n")}),
        }
    assert [name for name, reply in replies.items() if not SECURITY.items() <= reply.headers.items()] == []
    assert {reply.headers["referrer-policy"] for reply in replies.values()} == {"strict-origin-when-cross-origin"}
    page = replies.pop("page").headers["content-security-policy"]
    assert {reply.headers["content-security-policy"] for reply in replies.values()} == {API_CSP}
    assert "'unsafe-inline'" not in page and "'unsafe-eval'" not in page and "frame-ancestors 'none'" in page
    assert page.count("'sha256-") == 5  # Leaflet and the page's script, three style sheets
    assert "https://" not in page.replace("https://tile.openstreetmap.org", "")  # no other origin


def test_the_openapi_description_holds_under_fuzzing(app):
    """Schemathesis, in process against the ASGI app: no 5xx, every answer as the schema says
    (status, content type, body), and the security headers on each; bounded (30 cases an operation and mode)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.method.upper() == "GET":  # multipart fields are all text: no "wrong type" to send
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=30,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases every run
                phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows its first case at once
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case):
                response = case.call()
                # "a schema-valid request must be accepted" cannot hold: an address OR lon and lat
                # (and /search's q) are required together, which OpenAPI cannot say
                case.validate_response(response, excluded_checks=[positive_data_acceptance])
                headers = {name.lower(): values[0] for name, values in response.headers.items()}
                assert SECURITY.items() <= headers.items(), case.as_curl_command()

            try:
                fuzz()
            except BaseException as exc:  # hypothesis raises groups of failures
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
