"""The JSON API: every endpoint, every error status, and the prediction log behind it.

`fake_client` serves a deterministic fake Forecaster (shapes and error paths); `client` serves the
real small model from the registry (integration).
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from app.storage import PredictionLog

ROW = {"store": 1, "dept": 2, "date": "2012-11-02"}
PREDICTION_KEYS = {
    "store", "dept", "week", "horizon", "prediction", "lower_80", "upper_80", "lower_95", "upper_95",
    "inputs", "assumed", "cold_start", "model_version", "prediction_id",
}  # fmt: skip


def logged(app, **where) -> int:
    with app.extensions["storage"].session() as session:
        query = select(func.count()).select_from(PredictionLog)
        for name, value in where.items():
            query = query.where(getattr(PredictionLog, name) == value)
        return session.scalar(query)


def assert_error(response, status: int, *fields: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "details"} and isinstance(body["error"], str)
    for detail in body["details"]:
        assert {"field", "message"} <= set(detail)
    got = [d["field"] for d in body["details"]]
    for field in fields:
        assert field in got, got
    return body


# ------------------------------------------------------------------------------------- health, ready
def test_health(fake_client):
    assert fake_client.get("/api/v1/health").get_json() == {"status": "ok"}


def test_ready_with_a_model(fake_client):
    response = fake_client.get("/api/v1/ready")
    assert response.status_code == 200
    assert response.get_json()["model_version"] == "v1"


def test_ready_without_a_model_is_503(app):
    response = app.test_client().get("/api/v1/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["model_loaded"] is False and body["database"] is True


def test_ready_without_database_is_503(fake_app, monkeypatch):
    monkeypatch.setattr(fake_app.extensions["storage"], "ping", lambda: False)
    response = fake_app.test_client().get("/api/v1/ready")
    assert response.status_code == 503 and response.get_json()["database"] is False


# ------------------------------------------------------------------------------------------ predict
def test_predict_returns_the_prediction_and_logs_it(fake_app, fake_client):
    response = fake_client.post("/api/v1/predict", json={**ROW, "temperature": 70})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= PREDICTION_KEYS and body["request_id"]
    assert body["week"] == "2012-11-02" and body["model_version"] == "v1"
    assert body["lower_95"] <= body["lower_80"] <= body["prediction"] <= body["upper_80"] <= body["upper_95"]
    assert body["inputs"]["temperature"] == 70 and "temperature" not in body["assumed"]
    assert response.headers["X-Request-ID"] == body["request_id"]
    assert logged(fake_app, source="api", request_id=body["request_id"]) == 1
    assert int(body["prediction_id"]) > 0  # the prediction log's row id


def test_predict_uses_a_sane_incoming_request_id(fake_client):
    body = fake_client.post("/api/v1/predict", json=ROW, headers={"X-Request-ID": "abc-123"}).get_json()
    assert body["request_id"] == "abc-123"
    body = fake_client.post("/api/v1/predict", json=ROW, headers={"X-Request-ID": "<script>"}).get_json()
    assert body["request_id"] != "<script>"


def test_predict_without_logging_still_gives_ids(tmp_path, monkeypatch):
    from app.web import service
    from tests.conftest import make_test_app
    from tests.web.conftest import install_fake

    app = make_test_app(tmp_path, PREDICTION_LOGGING=False)
    fake = install_fake(app)
    monkeypatch.setattr(service, "_forecast_error_type", lambda: fake.error_type)
    body = app.test_client().post("/api/v1/predict", json=ROW).get_json()
    assert body["prediction_id"] == f"{body['request_id']}-0"
    assert logged(app) == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**ROW, "date": "2012-02-30"}, "date"),
        ({**ROW, "store": "1; DROP TABLE"}, "store"),
        ({**ROW, "store": None}, "store"),
        ({"dept": 1, "date": "2012-11-02"}, "store"),
        ({**ROW, "fuel_price": -3}, "fuel_price"),
        ({**ROW, "markdown9": 1}, "markdown9"),
    ],
)
def test_predict_validation_is_422_naming_the_field(fake_app, fake_client, payload, field):
    body = assert_error(fake_client.post("/api/v1/predict", json=payload), 422, field)
    assert body["error"] == "invalid request"
    assert logged(fake_app) == 0


def test_forecast_error_from_the_core_is_422_naming_its_field(fake_client):
    assert_error(fake_client.post("/api/v1/predict", json={**ROW, "store": 77}), 422, "store")
    assert_error(fake_client.post("/api/v1/predict", json={**ROW, "date": "2015-01-02"}), 422, "date")


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"store": 1,}'])
def test_malformed_json_is_400(fake_client, body):
    response = fake_client.post("/api/v1/predict", data=body, content_type="application/json")
    assert_error(response, 400, "body")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400(fake_client, body):
    assert_error(fake_client.post("/api/v1/predict", data=body, content_type="application/json"), 400, "body")


def test_wrong_content_type_is_415(fake_client):
    assert_error(fake_client.post("/api/v1/predict", data="store=1"), 415, "Content-Type")
    assert_error(fake_client.post("/api/v1/forecast", data="x", content_type="text/plain"), 415)


def test_unknown_route_and_wrong_method_are_json(fake_client):
    body = assert_error(fake_client.get("/api/v1/nope"), 404)
    assert body["details"] == []
    assert_error(fake_client.get("/api/anything/else"), 404)
    response = fake_client.get("/api/v1/predict")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_error(fake_client.delete("/api/v1/health"), 405)


def test_body_over_max_content_length_is_413(tmp_path):
    from tests.conftest import make_test_app

    app = make_test_app(tmp_path, MAX_CONTENT_LENGTH=100)
    response = app.test_client().post("/api/v1/predict/batch", data="x" * 500, content_type="text/csv")
    assert_error(response, 413)


def test_no_model_is_503_everywhere(app):
    client = app.test_client()
    for response in (
        client.post("/api/v1/predict", json=ROW),
        client.post("/api/v1/predict/batch", json={"rows": [ROW]}),
        client.post("/api/v1/forecast", json={"store": 1, "dept": 1}),
        client.get("/api/v1/stores/1/forecast"),
        client.get("/api/v1/model"),
        client.get("/api/v1/model/features"),
    ):
        assert_error(response, 503, "model")


# -------------------------------------------------------------------------------------------- batch
def test_batch_json(fake_app, fake_client):
    rows = [ROW, {**ROW, "dept": 3, "is_holiday": True}, {**ROW, "store": 2, "dept": 5}]
    response = fake_client.post("/api/v1/predict/batch", json={"rows": rows})
    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 3 and body["model_version"] == "v1"
    assert [p["dept"] for p in body["predictions"]] == [2, 3, 5]
    assert body["predictions"][2]["cold_start"] is True
    assert len({p["prediction_id"] for p in body["predictions"]}) == 3
    assert logged(fake_app, source="batch") == 3
    assert fake_app.fake.calls[-1] == ("predict_rows", 3)  # one call to the core for the whole batch


def test_batch_lists_every_bad_row_by_index_and_field(fake_app, fake_client):
    rows = [ROW, {**ROW, "store": "x"}, ROW, {**ROW, "date": "2012-02-30", "cpi": "high"}, "not a row"]
    body = assert_error(fake_client.post("/api/v1/predict/batch", json={"rows": rows}), 422)
    got = [(d["row"], d["field"]) for d in body["details"]]
    assert got == [(1, "rows[1].store"), (3, "rows[3].date"), (3, "rows[3].cpi"), (4, "rows[4]")]
    assert "3 invalid rows" in body["error"]
    assert logged(fake_app) == 0


def test_batch_names_rows_the_model_cannot_answer(fake_app, fake_client):
    rows = [ROW, {**ROW, "store": 42}, ROW, {**ROW, "date": "2016-01-01"}, {**ROW, "date": "2012-10-31"}]
    body = assert_error(fake_client.post("/api/v1/predict/batch", json={"rows": rows}), 422)
    assert [(d["row"], d["field"]) for d in body["details"]] == [(1, "rows[1].store"), (3, "rows[3].date")]
    assert logged(fake_app) == 0


def test_batch_shape_errors(fake_client):
    assert_error(fake_client.post("/api/v1/predict/batch", json={"rows": "x"}), 422, "rows")
    assert_error(fake_client.post("/api/v1/predict/batch", json={"rows": []}), 422, "rows")
    assert_error(fake_client.post("/api/v1/predict/batch", json={}), 422, "rows")
    assert_error(fake_client.post("/api/v1/predict/batch", json={"rows": [ROW], "x": 1}), 422, "x")
    assert_error(fake_client.post("/api/v1/predict/batch", data="a", content_type="text/plain"), 415)


def test_batch_over_the_limit_is_413_naming_it(fake_app, fake_client):
    limit = fake_app.config["MAX_BATCH_ROWS"]
    body = assert_error(
        fake_client.post("/api/v1/predict/batch", json={"rows": [ROW] * (limit + 1)}), 413, "rows"
    )
    assert str(limit) in body["error"]
    csv_body = "Store,Dept,Date\n" + "1,1,2012-11-02\n" * (limit + 1)
    body = assert_error(
        fake_client.post("/api/v1/predict/batch", data=csv_body, content_type="text/csv"), 413
    )
    assert str(limit) in body["error"]
    ok = fake_client.post("/api/v1/predict/batch", json={"rows": [ROW] * limit})
    assert ok.status_code == 200 and ok.get_json()["count"] == limit


def test_batch_csv_body_in_kaggle_columns(fake_client):
    text = "Store,Dept,Date,IsHoliday\n1,1,2012-11-02,FALSE\n2,5,2012-11-23,TRUE\n"
    response = fake_client.post("/api/v1/predict/batch", data=text, content_type="text/csv")
    assert response.status_code == 200
    assert [p["store"] for p in response.get_json()["predictions"]] == [1, 2]


def test_batch_csv_errors_carry_line_numbers(fake_client):
    text = "Store,Dept,Date\n1,1,2012-11-02\n1,1,2012-02-30\n"
    body = assert_error(fake_client.post("/api/v1/predict/batch", data=text, content_type="text/csv"), 422)
    assert body["details"][0] | {} == {
        "field": "rows[1].date",
        "message": body["details"][0]["message"],
        "row": 1,
        "line": 3,
    }
    body = assert_error(
        fake_client.post("/api/v1/predict/batch", data="Shop,Dept\n1,1\n", content_type="text/csv"), 422
    )
    assert {"Shop", "store", "date"} <= {d["field"] for d in body["details"]}


def test_batch_csv_out(fake_client):
    text = "Store,Dept,Date,Weekly_Sales\n1,1,2012-11-02,100.5\n"
    response = fake_client.post("/api/v1/predict/batch?format=csv", data=text, content_type="text/csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    header, line = response.get_data(as_text=True).strip().splitlines()
    assert header.startswith("weekly_sales,store,dept,week,horizon,prediction")
    assert line.startswith("100.5,1,1,2012-11-02")


# ----------------------------------------------------------------------------------------- forecast
def test_forecast_weeks_and_covariates(fake_app, fake_client):
    payload = {"store": 1, "dept": 2, "start": "2012-11-01", "weeks": 4, "covariates": [{"temperature": 80}]}
    response = fake_client.post("/api/v1/forecast", json=payload)
    assert response.status_code == 200
    body = response.get_json()
    assert body["weeks"] == 4 and body["start"] == "2012-11-02"  # a Thursday means its week's Friday
    assert [p["horizon"] for p in body["predictions"]] == [1, 2, 3, 4]
    assert body["predictions"][0]["inputs"]["temperature"] == 80
    assert body["predictions"][1]["assumed"]["temperature"] == "last_year"
    assert logged(fake_app, source="forecast") == 4


def test_forecast_defaults_to_the_week_after_the_history(fake_client):
    body = fake_client.post("/api/v1/forecast", json={"store": 1, "dept": 1}).get_json()
    assert body["start"] == "2012-11-02" and body["weeks"] == 8


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"store": 1, "dept": 1, "weeks": 53}, "weeks"),
        ({"store": 1, "dept": 1, "weeks": 0}, "weeks"),
        ({"store": 1, "dept": 1, "start": "2012-02-30"}, "start"),
        ({"store": 1, "dept": 1, "weeks": 2, "covariates": [{}, {}, {}]}, "covariates"),
        ({"store": 1, "dept": 1, "covariates": [{"cpi": "x"}]}, "covariates[0].cpi"),
        ({"store": 1, "dept": 1, "start": "2016-01-01"}, "date"),  # ForecastError from the core
        ({"store": 99, "dept": 1}, "store"),
    ],
)
def test_forecast_errors(fake_client, payload, field):
    assert_error(fake_client.post("/api/v1/forecast", json=payload), 422, field)


# ------------------------------------------------------------------------------------ store forecast
def test_store_forecast_ranks_departments_and_totals(fake_app, fake_client):
    response = fake_client.get("/api/v1/stores/1/forecast?weeks=3&start=2012-11-02")
    assert response.status_code == 200
    body = response.get_json()
    assert body["store"] == 1 and body["weeks"] == 3 and len(body["total"]) == 3
    assert [d["dept"] for d in body["departments"]] == [3, 2, 1]  # largest first
    assert [d["rank"] for d in body["departments"]] == [1, 2, 3]
    first_week = sum(d["predictions"][0]["prediction"] for d in body["departments"])
    assert body["total"][0]["prediction"] == pytest.approx(first_week)
    assert logged(fake_app, source="forecast") == 9


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/stores/abc/forecast", "store"),
        ("/api/v1/stores/1;DROP/forecast", "store"),
        ("/api/v1/stores/1/forecast?weeks=60", "weeks"),
        ("/api/v1/stores/1/forecast?start=2012-02-30", "start"),
        ("/api/v1/stores/1/forecast?colour=red", "colour"),
        ("/api/v1/stores/42/forecast", "store"),
    ],
)
def test_store_forecast_errors(fake_client, url, field):
    assert_error(fake_client.get(url), 422, field)


# -------------------------------------------------------------------------------------------- model
def test_model_and_features(fake_client):
    body = fake_client.get("/api/v1/model").get_json()
    assert body["model_version"] == "v1" and body["kind"] == "hgb"
    assert body["params"]["max_iter"] == 60
    assert body["backtest"]["baseline_wmae"] == 2100.0
    assert body["training"]["start"] == "2010-02-05"
    assert body["feature_importances"][0] == {"feature": "lag52", "importance": 0.4}
    features = fake_client.get("/api/v1/model/features").get_json()
    assert features["model_version"] == "v1"
    inputs = {f["name"]: f for f in features["inputs"]}
    assert inputs["temperature"]["minimum"] == -80 and inputs["store"]["required"]
    model = {f["name"]: f for f in features["features"]}
    assert model["lag52"]["importance"] == 0.4 and model["lag52"]["description"]


# ------------------------------------------------------------------------------------------ openapi
def test_openapi_is_generated_from_the_request_schemas(fake_client):
    from app.web.schemas import PredictRequest

    doc = fake_client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/health",
        "/ready",
        "/predict",
        "/predict/batch",
        "/forecast",
        "/stores/{store}/forecast",
        "/model",
    ):
        assert path in doc["paths"]
    schema = doc["components"]["schemas"]["PredictRequest"]
    assert set(schema["properties"]) == set(PredictRequest.model_fields)
    assert schema["properties"]["store"]["minimum"] == 1
    ref = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/PredictRequest"
    # every $ref resolves
    text = str(doc)
    for name in doc["components"]["schemas"]:
        assert name in text
    import re

    for target in re.findall(r"#/components/schemas/(\w+)", text):
        assert target in doc["components"]["schemas"]


def test_api_docs_page_is_rendered_locally(fake_client):
    response = fake_client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "/api/v1/predict/batch" in html and "PredictRequest" in html and "is_holiday" in html
    assert "swagger" not in html.lower() and "cdn" not in html.lower()


def test_bad_input_never_gives_500(fake_client):
    """A sweep of odd inputs over every POST endpoint: always a 4xx JSON, never a 500."""
    odd = [None, [], {}, "", "x", 1e308, -1, True, {"a": 1}, [ROW], "2012-11-02", 10**30]
    for path in ("/api/v1/predict", "/api/v1/forecast", "/api/v1/predict/batch"):
        for field in ("store", "dept", "date", "start", "weeks", "covariates", "rows", "is_holiday", "cpi"):
            for value in odd:
                base = {"rows": [ROW]} if path.endswith("batch") else {**ROW, "start": "2012-11-02"}
                if path.endswith("forecast"):
                    base.pop("date")
                response = fake_client.post(path, json={**base, field: value})
                assert response.status_code < 500, (path, field, value, response.get_data(as_text=True))


# ------------------------------------------------------------------------------- the real small model
def test_real_model_predict_forecast_and_store(client, model_app):
    week = _first_week(client)
    before = logged(model_app)
    body = client.post("/api/v1/predict", json={"store": 1, "dept": 1, "date": week}).get_json()
    assert set(body) >= PREDICTION_KEYS and body["model_version"] == "v1"
    assert body["lower_95"] <= body["prediction"] <= body["upper_95"]
    forecast = client.post("/api/v1/forecast", json={"store": 1, "dept": 1, "weeks": 52}).get_json()
    assert len(forecast["predictions"]) == 52 and forecast["predictions"][-1]["horizon"] == 52
    store = client.get("/api/v1/stores/1/forecast?weeks=4").get_json()
    assert store["departments"] and len(store["total"]) == 4
    assert logged(model_app) - before == 1 + 52 + 4 * len(store["departments"])


def test_real_model_errors(client):
    assert_error(
        client.post("/api/v1/predict", json={"store": 999, "dept": 1, "date": _first_week(client)}),
        422,
        "store",
    )
    assert_error(
        client.post("/api/v1/predict", json={"store": 1, "dept": 1, "date": "1999-01-01"}), 422, "date"
    )


def test_real_model_card_api(client):
    body = client.get("/api/v1/model").get_json()
    assert body["model_version"] == "v1" and body["kind"] == "hgb"
    assert client.get("/api/v1/model/features").status_code == 200


def test_real_model_batch_row_errors(client):
    week = _first_week(client)
    rows = [{"store": 1, "dept": 1, "date": week}, {"store": 1, "dept": 1, "date": "1999-01-01"}]
    body = assert_error(client.post("/api/v1/predict/batch", json={"rows": rows}), 422, "rows[1].date")
    assert body["details"][0]["row"] == 1


def test_real_model_batch_csv(client):
    week = _first_week(client)
    text = "Store,Dept,Date,IsHoliday\n" + "".join(f"1,{d},{week},FALSE\n" for d in range(1, 4))
    response = client.post("/api/v1/predict/batch", data=io.BytesIO(text.encode()), content_type="text/csv")
    assert response.status_code == 200 and response.get_json()["count"] == 3


def _first_week(client) -> str:
    return client.post("/api/v1/forecast", json={"store": 1, "dept": 1, "weeks": 1}).get_json()["start"]
