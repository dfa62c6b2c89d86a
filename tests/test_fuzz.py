"""Bad input from the security angle: a schema-driven fuzzer plus the hostile inputs a review names.

The fuzzer (schemathesis, in-process through WSGI) generates valid and invalid requests for every
operation of /api/v1/openapi.json against an app serving the small real model: no answer may be a
5xx, and every answer must match the document (status codes, content types, bodies).
"""

from __future__ import annotations

import collections
import io
import logging
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from sqlalchemy import func, select

from app.storage import PredictionLog
from tests.helpers.app import make_test_app
from tests.helpers.registry import register_production

log = logging.getLogger(__name__)

# Enough to find real violations in seconds; STORECAST_FUZZ_EXAMPLES raises it for a deeper run.
MAX_EXAMPLES = int(os.environ.get("STORECAST_FUZZ_EXAMPLES", "25"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, small_artifact):
    """One app with the small model in production for the whole module (fuzzing is read-mostly)."""
    app = make_test_app(tmp_path_factory.mktemp("fuzz"))
    register_production(app, small_artifact)
    yield app
    app.extensions["storage"].dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


def _fuzz_operation(
    operation, mode: GenerationMode, counter: dict[str, int], headers: dict[str, str] | None = None
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    def run(case) -> None:
        counter["requests"] += 1
        response = case.call_and_validate(checks=CHECKS, headers=headers)
        counter[f"status {response.status_code}"] += 1
        counter[f"{operation.label} {response.status_code}"] += 1

    run()


# schemathesis.pytest.from_fixture needs pytest < 9 (it reads node._nodeid), so the operations are
# walked here, each through a Hypothesis run of its own; every failure is collected, then reported.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_answers_every_generated_request_within_its_schema(api_schema, mode: GenerationMode) -> None:
    counter: collections.Counter[str] = collections.Counter()
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _fuzz_operation(operation, mode, counter)
        except Unsatisfiable:  # nothing to get wrong: an operation without parameters or body
            counter["operations without invalid inputs"] += 1
        except Exception as error:  # noqa: BLE001 - collect every operation's failure, then fail once
            failures.append(f"{operation.label}: {error}")
    log.info("fuzzed %d operations (%s): %s", operations, mode, dict(counter))
    assert operations >= 16 and counter["requests"] >= operations
    assert not failures, "\n\n".join(failures)


ADMIN_TOKEN = "fuzz-admin-token"
TOKEN_GATED = {
    "POST /models/{version}/promote",
    "POST /models/rollback",
    "POST /models/{version}/archive",
    "POST /actuals",
}


# Without a token the admin operations only ever answer 401/403: with the right one, the fuzzer reaches
# their bodies and the registry (the only version is in production, so no generated request changes it).
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_token_gated_operations_with_the_token_hold_to_their_schema(
    fuzz_app, api_schema, mode: GenerationMode
) -> None:
    counter: collections.Counter[str] = collections.Counter()
    failures = []
    operations = [r.ok() for r in api_schema.get_all_operations() if r.ok().label in TOKEN_GATED]
    assert {operation.label for operation in operations} == TOKEN_GATED
    fuzz_app.config["STORECAST_ADMIN_TOKEN"] = ADMIN_TOKEN
    try:
        for operation in operations:
            try:
                _fuzz_operation(operation, mode, counter, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
            except Exception as error:  # noqa: BLE001 - collect every operation's failure, then fail once
                failures.append(f"{operation.label}: {error}")
    finally:
        fuzz_app.config.pop("STORECAST_ADMIN_TOKEN")
    log.info("fuzzed the token-gated operations with the token (%s): %s", mode, dict(counter))
    assert counter["requests"] >= len(operations)
    assert not failures, "\n\n".join(failures)


# named hostile inputs


@pytest.fixture
def client(fuzz_app):
    return fuzz_app.test_client()


def _fields(response) -> set[str]:
    return {str(d["field"]).rsplit(".", 1)[-1] for d in response.get_json()["details"]}


def test_an_upload_over_10_mb_is_refused_with_413(client) -> None:
    body = b"Store,Dept,Date\n" + b"1,1,2012-11-02\n" * (11 * 1024 * 1024 // 15)
    assert len(body) > 10 * 1024 * 1024
    response = client.post("/api/v1/predict/batch", data=body, content_type="text/csv")
    assert response.status_code == 413 and response.is_json
    assert response.get_json()["error"]
    page = client.post(
        "/batch",
        data={"file": (io.BytesIO(body), "big.csv")},
        content_type="multipart/form-data",
    )
    assert page.status_code == 413


UNUSABLE_CSV = {
    "binary junk": bytes(range(256)) * 64,
    "gzip bytes": b"\x1f\x8b\x08\x00" + os.urandom(2048),
    "UTF-16": "Store,Dept,Date\n1,1,2012-11-02\n".encode("utf-16"),
    "missing columns": b"Store,Dept\n1,1\n",
    "no header at all": b"1,1,2012-11-02\n",
}


@pytest.mark.parametrize("name", list(UNUSABLE_CSV))
def test_an_unusable_csv_is_a_client_error_with_a_reason(client, name: str) -> None:
    response = client.post("/api/v1/predict/batch", data=UNUSABLE_CSV[name], content_type="text/csv")
    assert response.status_code in (400, 422), response.get_data(as_text=True)[:300]
    payload = response.get_json()
    assert payload["error"] and payload["details"], payload
    assert all(d["field"] and d["message"] for d in payload["details"])


@pytest.mark.parametrize("name", list(UNUSABLE_CSV))
def test_an_unusable_csv_is_a_400(client, name: str) -> None:
    response = client.post("/api/v1/predict/batch", data=UNUSABLE_CSV[name], content_type="text/csv")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"store": 1, "dept": 1, "date": "2012-02-30"}, "date"),
        ({"store": "1; DROP TABLE prediction_log", "dept": 1, "date": "2012-11-02"}, "store"),
        ({"store": 1, "dept": "1 OR 1=1", "date": "2012-11-02"}, "dept"),
        ({"store": 1, "dept": 1, "date": "2012-11-02'; --"}, "date"),
        ({"store": 1e308, "dept": 1, "date": "2012-11-02"}, "store"),
        ({"store": 1, "dept": 1, "date": "2012-11-02", "temperature": "NaN"}, "temperature"),
    ],
)
def test_a_bad_field_is_a_422_naming_it_and_logs_nothing(fuzz_app, client, body: dict, field: str) -> None:
    with fuzz_app.extensions["storage"].session() as session:
        before = session.scalar(select(func.count()).select_from(PredictionLog))
    response = client.post("/api/v1/predict", json=body)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert field in _fields(response)
    with fuzz_app.extensions["storage"].session() as session:
        assert session.scalar(select(func.count()).select_from(PredictionLog)) == before


def test_a_bad_date_in_a_csv_names_the_line_and_field(client) -> None:
    body = b"Store,Dept,Date\n1,1,2012-11-02\n1;DROP TABLE x,1,2012-02-30\n"
    response = client.post("/api/v1/predict/batch", data=body, content_type="text/csv")
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert {"store", "date"} <= {d["field"].rsplit(".", 1)[-1] for d in details}
    assert all(d.get("line") == 3 for d in details if d["field"].startswith("rows[1]"))
    assert {d.get("line") for d in details} <= {2, 3}  # line 2 too when the model refuses it (one pass)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"store": 1}', "text/plain"),
        (b"null", "application/json"),
    ],
)
def test_malformed_bodies_are_4xx_json(client, data: bytes, content_type: str) -> None:
    for path in ("/api/v1/predict", "/api/v1/forecast", "/api/v1/predict/batch"):
        response = client.post(path, data=data, content_type=content_type)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert response.is_json and response.get_json()["error"]
