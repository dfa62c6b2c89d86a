"""app.limits: the bounds every input meets before it is parsed (no app needed)."""

from __future__ import annotations

import pytest

from app.limits import (
    MAX_CSV_COLUMNS,
    MAX_DETAILS,
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    InputRejected,
    cap_details,
    csv_header,
    parse_json,
)


def test_a_header_is_read_from_its_first_line_only():
    assert csv_header(b"\xef\xbb\xbfStore,Dept,Date\r\n1,2,3\n") == ["Store", "Dept", "Date"]
    assert csv_header("Store,Dept\n" + "x" * 10_000_000) == ["Store", "Dept"]


def test_a_header_longer_than_the_cap_is_refused_without_reading_it():
    with pytest.raises(InputRejected) as refused:
        csv_header(b"Store,Dept,Date" + b",x" * 4_900_000 + b"\n")
    assert refused.value.status == 400
    assert refused.value.details == [
        {"field": "header", "message": f"the header line is longer than {MAX_HEADER_BYTES:,} bytes"}
    ]


def test_too_many_columns_and_duplicates_are_refused_by_name():
    with pytest.raises(InputRejected) as wide:
        csv_header(",".join(f"c{i}" for i in range(MAX_CSV_COLUMNS + 1)))
    assert "at most 64" in wide.value.details[0]["message"]
    with pytest.raises(InputRejected) as twice:
        csv_header("Store,Dept,store ,Date", normalise=lambda name: name.strip().lower())
    assert twice.value.details == [{"field": "store", "message": "duplicate column (2 times)"}]


def test_details_are_capped_with_a_count_of_the_rest():
    capped = cap_details({"field": f"c{i}", "message": "unknown column"} for i in range(1000))
    assert len(capped) == MAX_DETAILS + 1
    assert capped[-1] == {"field": "details", "message": "and 950 more problems not listed", "count": 950}
    assert cap_details(capped, 10)[-1]["count"] == 990  # capping again keeps the count


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"store": ' + b"1" * 5000 + b"}", "a number is too large"),
        (b'{"store": NaN}', "unexpected character"),
    ],
)
def test_json_bodies_are_bounded(body, reason):
    with pytest.raises(InputRejected) as refused:
        parse_json(body)
    assert refused.value.status == 400
    message = refused.value.details[0]["message"]
    assert message.startswith(reason)
    assert "sys." not in message and "Recursion" not in message


def test_ordinary_json_parses():
    assert parse_json(b'{"rows": [{"store": 1, "covariates": [{"cpi": 2.5}]}]}') == {
        "rows": [{"store": 1, "covariates": [{"cpi": 2.5}]}]
    }
