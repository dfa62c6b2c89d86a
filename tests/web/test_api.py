"""The JSON API: every endpoint, every error status, and the prediction log behind it.

Everything runs against the real small model (`client` / `model_app` from tests/conftest.py);
valid stores, departments and weeks come from the served Forecaster (`known`, tests/web/conftest.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import func, select

from app.factory import create_app
from app.forecasting.features import feature_label
from app.storage import PredictionLog
from app.web.schemas import BatchResponse, ForecastResponse, PredictResponse
from tests.helpers.answers import assert_error, assert_ordered
from tests.helpers.app import make_test_app
from tests.helpers.registry import register_production

ANY_ROW = {"store": 1, "dept": 1, "date": "2012-11-02"}  # for apps without a model: never predicted
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


def friday(day: str) -> bool:
    return dt.date.fromisoformat(day).weekday() == 4


# health, ready
def test_health(client):
    assert client.get("/api/v1/health").get_json() == {"status": "ok"}


def test_ready_with_a_model(client):
    response = client.get("/api/v1/ready")
    assert response.status_code == 200
    assert response.get_json()["model_version"] == "v1"


def test_ready_without_a_model_is_503(app):
    response = app.test_client().get("/api/v1/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["model_loaded"] is False and body["database"] is True


def test_ready_without_database_is_503(tmp_path):
    unreachable = tmp_path / "no-such-directory" / "storecast.db"
    app = create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{unreachable}", "MODELS_DIR": str(tmp_path)}
    )
    response = app.test_client().get("/api/v1/ready")
    assert response.status_code == 503 and response.get_json()["database"] is False


# predict
def test_predict_returns_the_prediction_and_logs_it(model_app, client, row, known):
    response = client.post("/api/v1/predict", json={**row, "temperature": 70})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= PREDICTION_KEYS and body["request_id"]
    assert body["week"] == known.week and body["horizon"] == 1 and body["model_version"] == "v1"
    assert (body["store"], body["dept"]) == (known.store, known.dept) and body["cold_start"] is False
    assert_ordered(body)
    assert body["inputs"]["temperature"] == 70 and "temperature" not in body["assumed"]
    assert "fuel_price" in body["assumed"]  # not given: the model says where its value came from
    assert response.headers["X-Request-ID"] == body["request_id"]
    assert logged(model_app, source="api", request_id=body["request_id"]) == 1
    assert int(body["prediction_id"]) > 0  # the prediction log's row id


def test_explained_answers_carry_components_that_add_up(client, row, known):
    plain = client.post("/api/v1/predict", json=row).get_json()
    assert "components" not in plain  # off by default: the hot path pays nothing for it
    body = client.post("/api/v1/predict", json={**row, "explain": True}).get_json()
    assert body["prediction"] == plain["prediction"]
    parts = body["components"]
    assert list(parts) == ["last_year", "trend", "holiday", "covariates", "model"]
    assert round(sum(parts.values()) * 100) == round(body["prediction"] * 100)
    assert body["last_year_week"] < known.week and "last_year_sales" in body
    assert PredictResponse.model_validate(body).model_dump(mode="json", exclude_none=True) == {
        k: v for k, v in body.items() if v is not None
    }  # the declared model keeps every field (the API serialises through it)
    forecast = client.post(
        "/api/v1/forecast", json={**row, "weeks": 52, "explain": True, "covariates": [{"markdown1": 5000}]}
    ).get_json()
    for week in forecast["predictions"]:
        assert round(sum(week["components"].values()) * 100) == round(week["prediction"] * 100)
    shaped = ForecastResponse.model_validate(forecast).model_dump(mode="json")
    assert shaped["predictions"][5]["components"] == forecast["predictions"][5]["components"]
    assert client.post("/api/v1/predict", json={**row, "explain": "yes"}).status_code == 422
    batch = client.post("/api/v1/predict/batch", json={"rows": [{**row, "explain": True}]})
    assert batch.status_code == 422  # per-row explaining is not offered: the batch rows stay as they were


@pytest.mark.parametrize(
    ("path", "model", "extra"),
    [
        ("/api/v1/predict", PredictResponse, {}),
        ("/api/v1/predict", PredictResponse, {"explain": True, "temperature": 70}),
        ("/api/v1/forecast", ForecastResponse, {"weeks": 52}),
        (
            "/api/v1/forecast",
            ForecastResponse,
            {"weeks": 8, "explain": True, "covariates": [{"markdown1": 1}]},
        ),
    ],
)
@pytest.mark.parametrize("cold", [False, True])
def test_predict_and_forecast_answers_are_what_their_models_write(client, known, path, model, extra, cold):
    """Written without a second pass through the response model, the answers still hold its fields, in
    its order, with its values (a cold start's warning included)."""
    store = known.other_store if cold else known.store
    dept = known.missing_dept if cold else known.dept
    response = client.post(path, json={"store": store, "dept": dept, "date": known.week, **extra})
    assert response.status_code == 200, response.get_json()
    sent = json.loads(response.get_data())
    written = json.loads(model.model_validate(sent).model_dump_json(exclude_unset=True))
    assert json.dumps(sent) == json.dumps(written)
    first = sent if model is PredictResponse else sent["predictions"][0]
    assert first["cold_start"] is cold and ("warning" in first) is cold


def test_predict_uses_a_sane_incoming_request_id(client, row):
    body = client.post("/api/v1/predict", json=row, headers={"X-Request-ID": "abc-123"}).get_json()
    assert body["request_id"] == "abc-123"
    body = client.post("/api/v1/predict", json=row, headers={"X-Request-ID": "<script>"}).get_json()
    assert body["request_id"] != "<script>"


def test_predict_without_logging_still_gives_ids(tmp_path, small_artifact, row):
    (tmp_path / "nolog").mkdir()  # model_app (behind `row`) has tmp_path itself
    app = make_test_app(tmp_path / "nolog", PREDICTION_LOGGING=False)
    register_production(app, small_artifact)
    body = app.test_client().post("/api/v1/predict", json=row).get_json()
    assert body["prediction_id"] == f"{body['request_id']}-0"
    assert logged(app) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date": "2012-02-30"}, "date"),
        ({"store": "1; DROP TABLE"}, "store"),
        ({"store": None}, "store"),
        ({"store": ...}, "store"),  # ... drops the key
        ({"fuel_price": -3}, "fuel_price"),
        ({"markdown9": 1}, "markdown9"),
    ],
)
def test_predict_validation_is_422_naming_the_field(model_app, client, row, change, field):
    payload = {k: v for k, v in {**row, **change}.items() if v is not ...}
    body = assert_error(client.post("/api/v1/predict", json=payload), 422, field)
    assert body["error"] == "invalid request"
    assert logged(model_app) == 0


def test_forecast_error_from_the_core_is_422_naming_its_field(client, row, known):
    response = client.post("/api/v1/predict", json={**row, "store": known.unknown_store})
    body = assert_error(response, 422, "store")
    assert f"unknown store {known.unknown_store}" in body["error"]
    for date in (known.after, known.before):
        body = assert_error(client.post("/api/v1/predict", json={**row, "date": date}), 422, "date")
        assert known.week in body["error"] and known.last_week in body["error"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"store": 1,}'])
def test_malformed_json_is_400(client, body):
    response = client.post("/api/v1/predict", data=body, content_type="application/json")
    assert_error(response, 400, "body")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400(client, body):
    assert_error(client.post("/api/v1/predict", data=body, content_type="application/json"), 400, "body")


def test_wrong_content_type_is_415(client):
    assert_error(client.post("/api/v1/predict", data="store=1"), 415, "Content-Type")
    assert_error(client.post("/api/v1/forecast", data="x", content_type="text/plain"), 415)


def test_unknown_route_and_wrong_method_are_json(client):
    body = assert_error(client.get("/api/v1/nope"), 404)
    assert body["details"] == []
    assert_error(client.get("/api/anything/else"), 404)
    response = client.get("/api/v1/predict")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_error(client.delete("/api/v1/health"), 405)


def test_body_over_max_content_length_is_413(tmp_path):
    app = make_test_app(tmp_path, MAX_CONTENT_LENGTH=100)
    response = app.test_client().post("/api/v1/predict/batch", data="x" * 500, content_type="text/csv")
    assert_error(response, 413)


def test_no_model_is_503_everywhere(app):
    client = app.test_client()
    for response in (
        client.post("/api/v1/predict", json=ANY_ROW),
        client.post("/api/v1/predict/batch", json={"rows": [ANY_ROW]}),
        client.post("/api/v1/forecast", json={"store": 1, "dept": 1}),
        client.get("/api/v1/stores/1/forecast"),
        client.get("/api/v1/model"),
        client.get("/api/v1/model/features"),
    ):
        assert_error(response, 503, "model")


# batch
def test_batch_json(model_app, client, row, known):
    rows = [
        row,
        {**row, "dept": known.dept2, "is_holiday": True},
        {**row, "store": known.other_store, "dept": known.missing_dept},
    ]
    response = client.post("/api/v1/predict/batch", json={"rows": rows})
    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 3 and body["model_version"] == "v1"
    predictions = body["predictions"]
    assert [(p["store"], p["dept"]) for p in predictions] == [(r["store"], r["dept"]) for r in rows]
    assert [p["cold_start"] for p in predictions] == [False, False, True]  # no history: cold start
    assert predictions[1]["inputs"]["is_holiday"] is True
    for prediction in predictions:
        assert prediction["week"] == known.week and prediction["model_version"] == "v1"
        assert_ordered(prediction)
    assert len({p["prediction_id"] for p in predictions}) == 3
    assert logged(model_app, source="batch") == 3
    # one call to the core for the whole batch: one request id, one measured latency for every row
    with model_app.extensions["storage"].session() as session:
        logs = session.execute(select(PredictionLog.request_id, PredictionLog.latency_ms)).all()
    assert len(set(logs)) == 1


def test_batch_lists_every_bad_row_by_index_and_field(model_app, client, row):
    rows = [row, {**row, "store": "x"}, row, {**row, "date": "2012-02-30", "cpi": "high"}, "not a row"]
    body = assert_error(client.post("/api/v1/predict/batch", json={"rows": rows}), 422)
    got = [(d["row"], d["field"]) for d in body["details"]]
    assert got == [(1, "rows[1].store"), (3, "rows[3].date"), (3, "rows[3].cpi"), (4, "rows[4]")]
    assert "3 invalid rows" in body["error"]
    assert logged(model_app) == 0


def test_batch_names_rows_the_model_cannot_answer(model_app, client, row, known):
    rows = [
        row,
        {**row, "store": known.unknown_store},
        row,
        {**row, "date": known.after},
        {**row, "date": known.days_before_week(2)},  # a Wednesday: its week ends on the first Friday
    ]
    body = assert_error(client.post("/api/v1/predict/batch", json={"rows": rows}), 422)
    assert [(d["row"], d["field"]) for d in body["details"]] == [(1, "rows[1].store"), (3, "rows[3].date")]
    assert logged(model_app) == 0


def test_batch_shape_errors(client, row):
    assert_error(client.post("/api/v1/predict/batch", json={"rows": "x"}), 422, "rows")
    assert_error(client.post("/api/v1/predict/batch", json={"rows": []}), 422, "rows")
    assert_error(client.post("/api/v1/predict/batch", json={}), 422, "rows")
    assert_error(client.post("/api/v1/predict/batch", json={"rows": [row], "x": 1}), 422, "x")
    assert_error(client.post("/api/v1/predict/batch", data="a", content_type="text/plain"), 415)


def test_batch_over_the_limit_is_413_naming_it(model_app, client, row, known):
    model_app.config["MAX_BATCH_ROWS"] = limit = 40
    body = assert_error(client.post("/api/v1/predict/batch", json={"rows": [row] * (limit + 1)}), 413, "rows")
    assert str(limit) in body["error"]
    csv_body = "Store,Dept,Date\n" + f"{known.store},{known.dept},{known.week}\n" * (limit + 1)
    body = assert_error(client.post("/api/v1/predict/batch", data=csv_body, content_type="text/csv"), 413)
    assert str(limit) in body["error"]
    ok = client.post("/api/v1/predict/batch", json={"rows": [row] * limit})
    assert ok.status_code == 200 and ok.get_json()["count"] == limit


def test_batch_csv_body_in_kaggle_columns(client, known):
    text = (
        "Store,Dept,Date,IsHoliday\n"
        f"{known.store},{known.dept},{known.week},FALSE\n"
        f"{known.other_store},{known.missing_dept},{known.weeks_after(3)},TRUE\n"
    )
    response = client.post("/api/v1/predict/batch", data=text, content_type="text/csv")
    assert response.status_code == 200
    predictions = response.get_json()["predictions"]
    assert [p["store"] for p in predictions] == [known.store, known.other_store]
    assert [p["week"] for p in predictions] == [known.week, known.weeks_after(3)]
    assert [p["horizon"] for p in predictions] == [1, 4]
    assert [p["inputs"]["is_holiday"] for p in predictions] == [False, True]


def test_batch_csv_errors_carry_line_numbers(client, known):
    good, bad = f"{known.store},{known.dept},{known.week}", f"{known.store},{known.dept},2012-02-30"
    text = f"Store,Dept,Date\n{good}\n{bad}\n"
    body = assert_error(client.post("/api/v1/predict/batch", data=text, content_type="text/csv"), 422)
    assert body["details"][0] | {} == {
        "field": "rows[1].date",
        "message": body["details"][0]["message"],
        "row": 1,
        "line": 3,
    }
    body = assert_error(
        client.post("/api/v1/predict/batch", data="Shop,Dept\n1,1\n", content_type="text/csv"), 400
    )
    assert {"Shop", "store", "date"} <= {d["field"] for d in body["details"]}
    longer = f"Store,Dept,Date\n{good},9,9\n{good},,\n{good},7\n"  # empty trailing cells are fine
    body = assert_error(client.post("/api/v1/predict/batch", data=longer, content_type="text/csv"), 400)
    assert [d["message"] for d in body["details"]] == [
        "line 2: expected 3 fields (the header's), saw 5",
        "line 4: expected 3 fields (the header's), saw 4",
    ]


def test_batch_csv_out(client, known):
    text = f"Store,Dept,Date,Weekly_Sales\n{known.store},{known.dept},{known.week},100.5\n"
    response = client.post("/api/v1/predict/batch?format=csv", data=text, content_type="text/csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    header, line = response.get_data(as_text=True).strip().splitlines()
    assert header.startswith("weekly_sales,store,dept,week,horizon,prediction")
    assert line.startswith(f"100.5,{known.store},{known.dept},{known.week},1,")


def test_quantiles_on_predict_batch_and_forecast(client, row, known):
    levels = [0.9, 0.1, 0.5]
    one = client.post("/api/v1/predict", json={**row, "quantiles": levels}).get_json()
    assert list(one["quantiles"]) == ["q0.1", "q0.5", "q0.9"]
    assert one["quantiles"]["q0.1"] == one["lower_80"] and one["quantiles"]["q0.9"] == one["upper_80"]
    assert one["quantiles"]["q0.5"] == one["prediction"]
    assert "quantiles" not in client.post("/api/v1/predict", json=row).get_json()  # only when asked
    batch = client.post("/api/v1/predict/batch", json={"rows": [row, row], "quantiles": [0.95]}).get_json()
    assert all(one["upper_80"] <= p["quantiles"]["q0.95"] <= one["upper_95"] for p in batch["predictions"])
    query = client.post("/api/v1/predict/batch?quantiles=0.1,0.9", json={"rows": [row]}).get_json()
    assert query["predictions"][0]["quantiles"] == {"q0.1": one["lower_80"], "q0.9": one["upper_80"]}
    weeks = client.post(
        "/api/v1/forecast", json={"store": known.store, "dept": known.dept, "weeks": 3, "quantiles": [0.5]}
    ).get_json()["predictions"]
    assert [p["quantiles"]["q0.5"] for p in weeks] == [p["prediction"] for p in weeks]


def test_quantiles_in_the_batch_csv_on_request(client, known):
    text = f"Store,Dept,Date\n{known.store},{known.dept},{known.week}\n"
    url = "/api/v1/predict/batch?format=csv&quantiles=0.9,0.1"
    header, line = client.post(url, data=text, content_type="text/csv").get_data(as_text=True).splitlines()
    columns = header.split(",")
    assert columns[-2:] == ["q0.1", "q0.9"]
    values = dict(zip(columns, next(csv.reader([line])), strict=True))
    assert values["q0.1"] == values["lower_80"] and values["q0.9"] == values["upper_80"]
    plain = client.post("/api/v1/predict/batch?format=csv", data=text, content_type="text/csv")
    assert "q0." not in plain.get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("/api/v1/predict", {"quantiles": [1.0]}),
        ("/api/v1/predict", {"quantiles": [0.005]}),
        ("/api/v1/predict", {"quantiles": 0.9}),
        ("/api/v1/predict", {"quantiles": [True]}),
        ("/api/v1/predict", {"quantiles": ["high"]}),
        ("/api/v1/predict", {"quantiles": []}),
        ("/api/v1/forecast", {"quantiles": [0.5, 1.5]}),
        ("/api/v1/predict/batch", {"quantiles": [0]}),
        ("/api/v1/predict/batch", {"quantiles": {"q": 0.9}}),
        ("/api/v1/predict/batch?quantiles=0.1,2", {}),
        ("/api/v1/predict/batch?quantiles=x", {}),
        ("/api/v1/predict/batch?quantiles=0.1", {"quantiles": [0.9]}),
        ("/api/v1/predict", {"quantiles": [0.5, 0.5]}),  # each level once
        ("/api/v1/forecast", {"quantiles": [0.1, 0.10000001]}),
        ("/api/v1/predict/batch", {"quantiles": [0.9, 0.1, 0.9]}),
        ("/api/v1/predict/batch?quantiles=0.5,0.5", {}),
    ],
)
def test_bad_quantiles_are_422_naming_the_field(model_app, client, row, url, payload):
    body = {"rows": [row], **payload} if "batch" in url else {**row, **payload}
    details = assert_error(client.post(url, json=body), 422)["details"]
    assert any(d["field"].startswith("quantiles") for d in details), details
    assert logged(model_app) == 0


# forecast
def test_forecast_weeks_and_covariates(model_app, client, known):
    thursday = known.days_before_week(1)
    payload = {
        "store": known.store,
        "dept": known.dept,
        "start": thursday,
        "weeks": 4,
        "covariates": [{"temperature": 80}],
    }
    response = client.post("/api/v1/forecast", json=payload)
    assert response.status_code == 200
    body = response.get_json()
    assert body["weeks"] == 4 and body["start"] == known.week  # a Thursday means its week's Friday
    predictions = body["predictions"]
    assert [p["horizon"] for p in predictions] == [1, 2, 3, 4]
    assert [p["week"] for p in predictions] == [known.weeks_after(i) for i in range(4)]
    assert all(friday(p["week"]) for p in predictions)
    for prediction in predictions:
        assert_ordered(prediction)
        assert prediction["model_version"] == "v1"
    assert predictions[0]["inputs"]["temperature"] == 80 and "temperature" not in predictions[0]["assumed"]
    assert "temperature" in predictions[1]["assumed"]  # not given for week 2: the model's own value
    assert logged(model_app, source="forecast") == 4


def test_forecast_defaults_to_the_week_after_the_history(client, known):
    body = client.post("/api/v1/forecast", json={"store": known.store, "dept": known.dept}).get_json()
    assert body["start"] == known.week and body["weeks"] == 8
    assert [p["horizon"] for p in body["predictions"]] == list(range(1, 9))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"store": "<store>", "dept": "<dept>", "weeks": 53}, "weeks"),
        ({"store": "<store>", "dept": "<dept>", "weeks": 0}, "weeks"),
        ({"store": "<store>", "dept": "<dept>", "start": "2012-02-30"}, "start"),
        ({"store": "<store>", "dept": "<dept>", "weeks": 2, "covariates": [{}, {}, {}]}, "covariates"),
        ({"store": "<store>", "dept": "<dept>", "covariates": [{"cpi": "x"}]}, "covariates[0].cpi"),
        ({"store": "<store>", "dept": "<dept>", "start": "<after>"}, "date"),  # ForecastError from the core
        ({"store": "<store>", "dept": "<dept>", "start": "<last_week>", "weeks": 2}, "weeks"),  # runs past it
        ({"store": "<unknown_store>", "dept": "<dept>"}, "store"),
    ],
)
def test_forecast_errors(client, known, payload, field):
    assert_error(client.post("/api/v1/forecast", json=known.fill(payload)), 422, field)


def test_forecast_takes_date_like_predict_and_start_as_its_alias(client, known):
    base = {"store": known.store, "dept": known.dept, "weeks": 2}
    by_date = client.post("/api/v1/forecast", json={**base, "date": known.weeks_after(1)}).get_json()
    by_start = client.post("/api/v1/forecast", json={**base, "start": known.weeks_after(1)}).get_json()
    assert by_date["start"] == by_start["start"] == known.weeks_after(1)
    assert [p["week"] for p in by_date["predictions"]] == [p["week"] for p in by_start["predictions"]]
    assert_error(client.post("/api/v1/forecast", json={**base, "date": "2012-02-30"}), 422, "date")
    both = {**base, "date": known.week, "start": known.week}
    assert "alias" in assert_error(client.post("/api/v1/forecast", json=both), 422)["details"][0]["message"]
    store = client.get(f"/api/v1/stores/{known.store}/forecast?weeks=1&date={known.weeks_after(2)}")
    assert store.status_code == 200 and store.get_json()["start"] == known.weeks_after(2)


def test_one_cold_start_rule_with_a_warning_on_every_endpoint(client, known):
    """A store-department without sales history: an estimate and a warning from /predict, the batch
    (JSON and CSV) and /forecast alike; a series with history carries no warning anywhere."""
    missing = {"store": known.other_store, "dept": known.missing_dept, "date": known.week}
    said = f"store {known.other_store} has no sales history for dept {known.missing_dept}"

    one = client.post("/api/v1/predict", json=missing)
    assert one.status_code == 200
    assert one.get_json()["cold_start"] is True and said in one.get_json()["warning"]

    batch = client.post(
        "/api/v1/predict/batch", json={"rows": [missing, missing, {**missing, **_known(known)}]}
    )
    assert batch.status_code == 200
    body = batch.get_json()
    assert body["warning"].startswith("2 rows name a store-department with no sales history")
    assert [p["cold_start"] for p in body["predictions"]] == [True, True, False]
    assert [said in p.get("warning", "") for p in body["predictions"]] == [True, True, False]
    csv = client.post("/api/v1/predict/batch?format=csv", json={"rows": [missing]})
    warned = csv.headers["X-Storecast-Warning"]
    assert csv.status_code == 200 and warned.startswith("1 row names a store-department")

    weeks = client.post("/api/v1/forecast", json={**missing, "weeks": 3})
    assert weeks.status_code == 200
    body = weeks.get_json()
    assert all(p["cold_start"] and said in p["warning"] for p in body["predictions"])
    assert len(body["predictions"]) == 3 and said in body["warning"]
    asked = client.post("/api/v1/forecast", json={**missing, "weeks": 3, "cold_start": True})
    assert asked.status_code == 200 and said in asked.get_json()["warning"]  # the old flag is still accepted
    assert_error(client.post("/api/v1/forecast", json={**missing, "cold_start": "yes"}), 422, "cold_start")

    for response in (
        client.post("/api/v1/predict", json={**missing, **_known(known)}),
        client.post("/api/v1/forecast", json={**missing, **_known(known), "weeks": 2}),
        client.post("/api/v1/predict/batch", json={"rows": [{**missing, **_known(known)}]}),
    ):
        assert response.status_code == 200 and "warning" not in response.get_data(as_text=True)
    assert (
        "X-Storecast-Warning"
        not in client.post(
            "/api/v1/predict/batch?format=csv", json={"rows": [{**missing, **_known(known)}]}
        ).headers
    )


def test_a_department_no_store_sells_is_a_422_naming_dept_on_every_endpoint(client, forecaster, known):
    unsold = next(d for d in range(1, 1000) if d not in forecaster.all_departments())
    row = {"store": known.store, "dept": unsold, "date": known.week}
    said = f"unknown department {unsold}: no store has sales history in it"
    for response in (
        client.post("/api/v1/predict", json=row),
        client.post("/api/v1/forecast", json={**row, "weeks": 2}),
    ):
        assert_error(response, 422, "dept")
        assert said in response.get_data(as_text=True)
    batch = client.post("/api/v1/predict/batch", json={"rows": [{**row, "dept": known.dept}, row]})
    assert_error(batch, 422, "rows[1].dept")
    assert said in batch.get_data(as_text=True)


def _known(known) -> dict[str, int]:
    return {"store": known.store, "dept": known.dept}


def test_the_openapi_document_says_which_name(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    request = doc["components"]["schemas"]["ForecastRequest"]["properties"]
    assert "date" in request and "start" not in request and "alias" in request["date"]["description"]
    assert "cold_start" in request
    assert "warning" in doc["components"]["schemas"]["ForecastResponse"]["properties"]
    example = doc["paths"]["/forecast"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert "date" in example and "start" not in example


# store forecast
def test_store_forecast_ranks_departments_and_totals(model_app, client, forecaster, known):
    response = client.get(f"/api/v1/stores/{known.store}/forecast?weeks=3&start={known.week}")
    assert response.status_code == 200
    body = response.get_json()
    departments = body["departments"]
    assert body["store"] == known.store and body["weeks"] == 3 and len(body["total"]) == 3
    assert sorted(d["dept"] for d in departments) == forecaster.departments(known.store)
    totals = [d["total"] for d in departments]
    assert totals == sorted(totals, reverse=True)  # largest first
    assert [d["rank"] for d in departments] == list(range(1, len(departments) + 1))
    for dept in departments:
        assert dept["total"] == pytest.approx(sum(p["prediction"] for p in dept["predictions"]), abs=0.05)
        assert [p["week"] for p in dept["predictions"]] == [known.weeks_after(i) for i in range(3)]
        for prediction in dept["predictions"]:
            assert_ordered(prediction)
    for week in body["total"]:
        assert_ordered(week)
    first_week = sum(d["predictions"][0]["prediction"] for d in departments)
    assert body["total"][0]["prediction"] == pytest.approx(first_week, abs=0.01 * len(departments))
    assert logged(model_app, source="forecast") == 3 * len(departments)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/stores/abc/forecast", "store"),
        ("/api/v1/stores/1;DROP/forecast", "store"),
        ("/api/v1/stores/<store>/forecast?weeks=60", "weeks"),
        ("/api/v1/stores/<store>/forecast?start=2012-02-30", "start"),
        ("/api/v1/stores/<store>/forecast?colour=red", "colour"),
        ("/api/v1/stores/<unknown_store>/forecast", "store"),
    ],
)
def test_store_forecast_errors(client, known, url, field):
    url = url.replace("<store>", str(known.store)).replace("<unknown_store>", str(known.unknown_store))
    assert_error(client.get(url), 422, field)


# model
def test_model_and_features(client, forecaster):
    meta = forecaster.metadata
    body = client.get("/api/v1/model").get_json()
    assert body["model_version"] == "v1" and body["kind"] == "hgb"
    assert body["origin"] == forecaster.origin.date().isoformat()
    assert body["params"]["max_iter"] == 60  # tests/helpers/training.py's SMALL_TRAIN_PARAMS
    assert body["backtest"]["baseline_wmae"] == pytest.approx(meta["backtest"]["baseline_wmae"])
    assert body["backtest"]["wmae"] == pytest.approx(meta["backtest"]["wmae"])
    scores, lag1 = body["backtest_scores"], meta["backtest"]["by_lag_bucket"]["1"]
    for key in ("coverage_80", "coverage_95", "interval_score_80", "interval_score_95", "wql_0.1", "wql_0.9"):
        assert scores["by_bucket"]["1"][key] == pytest.approx(lag1[key])
        assert scores["overall"][key] == pytest.approx(meta["backtest"]["scores"][key])
    assert body["training"]["start"] == meta["training_window"]["start"]
    assert body["training"]["end"] == forecaster.origin.date().isoformat()
    top, weight = max(meta["feature_importances"].items(), key=lambda kv: kv[1])
    expected = {"feature": top, "label": feature_label(top), "importance": pytest.approx(weight)}
    assert body["feature_importances"][0] == expected  # the plain name the pages show, beside the code
    importances = [f["importance"] for f in body["feature_importances"]]
    assert importances == sorted(importances, reverse=True)
    features = client.get("/api/v1/model/features").get_json()
    assert features["model_version"] == "v1"
    inputs = {f["name"]: f for f in features["inputs"]}
    assert inputs["temperature"]["minimum"] == -80 and inputs["store"]["required"]
    model = {f["name"]: f for f in features["features"]}
    assert model[top]["importance"] == pytest.approx(weight) and model[top]["description"]
    assert model["lag52"]["description"]


# openapi
def test_openapi_is_generated_from_the_request_schemas(client):
    from app.web.schemas import PredictRequest

    doc = client.get("/api/v1/openapi.json").get_json()
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
    assert ref == "#/components/schemas/PredictOneRequest"  # a batch row, `explain` and `quantiles`
    one = doc["components"]["schemas"]["PredictOneRequest"]["properties"]
    assert set(one) == set(PredictRequest.model_fields) | {"explain", "quantiles"}
    assert one["explain"]["description"] and "0.01..0.99" in one["quantiles"]["description"]
    levels = [o for o in one["quantiles"]["anyOf"] if o.get("type") == "array"][0]["items"]
    assert (levels["minimum"], levels["maximum"]) == (0.01, 0.99)
    for name in ("ForecastRequest", "BatchRequest"):
        assert "quantiles" in doc["components"]["schemas"][name]["properties"]
    batch_query = {p["name"] for p in doc["paths"]["/predict/batch"]["post"]["parameters"]}
    assert {"format", "quantiles"} <= batch_query
    prediction = doc["components"]["schemas"]["PredictionOut"]["properties"]
    assert {"components", "last_year_week", "last_year_sales", "quantiles"} <= set(prediction)
    assert set(doc["components"]["schemas"]["Components"]["properties"]) == {
        "last_year", "trend", "holiday", "covariates", "model"
    }  # fmt: skip
    # every $ref resolves
    text = str(doc)
    for name in doc["components"]["schemas"]:
        assert name in text
    import re

    for target in re.findall(r"#/components/schemas/(\w+)", text):
        assert target in doc["components"]["schemas"]


def test_api_docs_page_is_rendered_locally(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "/api/v1/predict/batch" in html and "PredictRequest" in html and "is_holiday" in html
    assert "swagger" not in html.lower() and "cdn" not in html.lower()


def test_bad_input_never_gives_500(client, row):
    """A sweep of odd inputs over every POST endpoint: always a 4xx JSON, never a 500."""
    odd = [None, [], {}, "", "x", 1e308, -1, True, {"a": 1}, [row], row["date"], 10**30]
    for path in ("/api/v1/predict", "/api/v1/forecast", "/api/v1/predict/batch"):
        for field in ("store", "dept", "date", "start", "weeks", "covariates", "rows", "is_holiday", "cpi"):
            for value in odd:
                base = {"rows": [row]} if path.endswith("batch") else {**row, "start": row["date"]}
                if path.endswith("forecast"):
                    base.pop("date")
                response = client.post(path, json={**base, field: value})
                assert response.status_code < 500, (path, field, value, response.get_data(as_text=True))


# end to end, 52 weeks
def test_real_model_predict_forecast_and_store(client, model_app, known):
    before = logged(model_app)
    body = client.post(
        "/api/v1/predict", json={"store": known.store, "dept": known.dept, "date": known.week}
    ).get_json()
    assert set(body) >= PREDICTION_KEYS and body["model_version"] == "v1"
    assert body["lower_95"] <= body["prediction"] <= body["upper_95"]
    forecast = client.post(
        "/api/v1/forecast", json={"store": known.store, "dept": known.dept, "weeks": 52}
    ).get_json()
    assert len(forecast["predictions"]) == 52 and forecast["predictions"][-1]["horizon"] == 52
    assert forecast["predictions"][-1]["week"] == known.last_week
    store = client.get(f"/api/v1/stores/{known.store}/forecast?weeks=4").get_json()
    assert store["departments"] and len(store["total"]) == 4
    assert logged(model_app) - before == 1 + 52 + 4 * len(store["departments"])


def test_real_model_errors(client, known):
    assert_error(
        client.post(
            "/api/v1/predict", json={"store": known.unknown_store, "dept": known.dept, "date": known.week}
        ),
        422,
        "store",
    )
    assert_error(
        client.post("/api/v1/predict", json={"store": known.store, "dept": known.dept, "date": "1999-01-01"}),
        422,
        "date",
    )


def test_real_model_card_api(client):
    body = client.get("/api/v1/model").get_json()
    assert body["model_version"] == "v1" and body["kind"] == "hgb"
    assert client.get("/api/v1/model/features").status_code == 200


def test_real_model_batch_row_errors(client, known):
    rows = [
        {"store": known.store, "dept": known.dept, "date": known.week},
        {"store": known.store, "dept": known.dept, "date": "1999-01-01"},
    ]
    body = assert_error(client.post("/api/v1/predict/batch", json={"rows": rows}), 422, "rows[1].date")
    assert body["details"][0]["row"] == 1


def test_real_model_batch_csv(client, forecaster, known):
    depts = forecaster.departments(known.store)[:3]
    text = "Store,Dept,Date,IsHoliday\n" + "".join(f"{known.store},{d},{known.week},FALSE\n" for d in depts)
    response = client.post("/api/v1/predict/batch", data=io.BytesIO(text.encode()), content_type="text/csv")
    assert response.status_code == 200 and response.get_json()["count"] == len(depts) == 3


def _chain_rows(known, count: int) -> list[dict]:
    """`count` valid rows over the model's series and the next weeks, in a repeating order."""
    pairs = [(known.store, known.dept), (known.store, known.dept2)]
    pairs += [(known.other_store, dept) for dept in known.other_depts]
    return [
        {
            "store": pairs[i % len(pairs)][0],
            "dept": pairs[i % len(pairs)][1],
            "date": known.weeks_after(i % 8),
        }
        for i in range(count)
    ]


def test_a_large_batch_lists_every_bad_row_in_one_answer(model_app, client, known):
    """More bad rows than a usual error lists, across several validation chunks: each one, in row order,
    by row and field, schema problems and the model's alike; nothing predicted or logged."""
    rows = _chain_rows(known, 12_000)
    for i in range(0, 12_000, 10):
        rows[i]["dept"] = 0
    for i in range(3, 12_000, 40):
        rows[i]["store"] = known.unknown_store
    body = assert_error(client.post("/api/v1/predict/batch", json={"rows": rows}), 422)
    expected = sorted(
        [(i, f"rows[{i}].dept") for i in range(0, 12_000, 10)]
        + [(i, f"rows[{i}].store") for i in range(3, 12_000, 40)]
    )
    assert [(d["row"], d["field"]) for d in body["details"]] == expected
    assert body["error"] == f"{len(expected):,} invalid rows: nothing was predicted"
    assert logged(model_app) == 0


def test_a_batch_of_several_chunks_answers_every_row_in_order(model_app, client, known):
    rows = _chain_rows(known, 12_000)
    answer = client.post("/api/v1/predict/batch", json={"rows": rows})
    assert answer.status_code == 200
    body = BatchResponse.model_validate_json(answer.get_data())  # the documented shape, whole
    assert body.count == len(body.predictions) == 12_000
    assert [(p.store, p.dept, p.week.isoformat()) for p in body.predictions] == [
        (r["store"], r["dept"], r["date"]) for r in rows
    ]
    assert len({p.prediction_id for p in body.predictions}) == 12_000 == logged(model_app, source="batch")

    text = "Id,Store,Dept,Date\n" + "".join(
        f"id-{i},{r['store']},{r['dept']},{r['date']}\n" for i, r in enumerate(rows)
    )
    answer = client.post("/api/v1/predict/batch?format=csv", data=text, content_type="text/csv")
    lines = answer.get_data(as_text=True).splitlines()
    assert answer.status_code == 200 and len(lines) == 12_001 and lines[0].startswith("id,store,dept,week")
    assert all(
        line.startswith(f"id-{i},{r['store']},{r['dept']},{r['date']},")
        for i, (line, r) in enumerate(zip(lines[1:], rows, strict=True))
    )


def _api_get_routes(app) -> list[str]:
    """Every GET route of the app under /api/v1, with sample path values (store 1, dept 1, run 1, v1)."""
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and "GET" in rule.methods:
            urls.append(rule.rule.replace("<int:", "<").replace("<version>", "v1").replace("<store>", "1"))
    return sorted(url.replace("<run_id>", "1").replace("<store>", "1").replace("<dept>", "1") for url in urls)


def test_every_api_answer_names_its_request_and_is_never_cached(client, model_app):
    routes = _api_get_routes(model_app)
    assert "/api/v1/models" in routes and "/api/v1/runs" in routes and "/api/v1/forecast-runs" in routes
    for url in routes:
        response = client.get(url, headers={"X-Request-ID": "probe-1"})
        assert response.headers.get("X-Request-ID") == "probe-1", url
        assert response.headers.get("Cache-Control") == "no-store", url


def test_api_errors_of_no_route_name_their_request_and_are_never_cached(client):
    """A path no route matches and a method a route lacks: still an answer of the API."""
    for response in (client.get("/api/v1/nope"), client.put("/api/v1/predict", json={})):
        assert response.status_code in (404, 405)
        assert response.headers.get("X-Request-ID") and response.headers.get("Cache-Control") == "no-store"
        assert set(response.get_json()) == {"error", "details"}
    assert "X-Request-ID" not in client.get("/nope").headers  # the pages are not the API


def test_api_posts_name_their_request_and_are_never_cached(client):
    for url in ("/api/v1/actuals", "/api/v1/alerts/1/resolve", "/api/v1/models/rollback", "/api/v1/predict"):
        response = client.post(url, json={})
        assert response.headers.get("X-Request-ID") and response.headers.get("Cache-Control") == "no-store", (
            url
        )
