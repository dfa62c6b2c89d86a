"""benchmarks/results.py: RESULTS.md says where every figure was measured, and what was never measured."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import results
from benchmarks._results import write_json


def test_a_written_result_carries_commit_date_and_load(tmp_path: Path) -> None:
    out = tmp_path / "bench_worker_start.json"
    figures = {"variants": {"core only": {"median_s": 24.6, "web_packages": []}}}
    write_json(out, "bench_worker_start", figures, (0.5, 0.4, 0.3))
    run = json.loads(out.read_text())["run"]
    assert run["benchmark"] == "bench_worker_start" and run["commit"] and run["date"].endswith("Z")
    assert run["load_average"]["start"] == [0.5, 0.4, 0.3] and len(run["load_average"]["end"]) == 3


def test_results_page_renders_each_file_and_names_the_unmeasured(tmp_path: Path) -> None:
    write_json(
        tmp_path / "w.json",
        "bench_worker_start",
        {"variants": {"core only": {"median_s": 24.6, "web_packages": []}}},
        (0.5, 0.4, 0.3),
    )
    carried = {
        "table": {"header": ["origin", "ratio"], "rows": [["2012-01-27", "0.790"]]},
        "run": {"benchmark": "bench_origins", "commit": "ab6a9bf", "date": "2026-11-30",
                "load_average": {"start": [0.95], "end": [1.72]}, "carried_over": "the README"},
    }  # fmt: skip
    (tmp_path / "o.json").write_text(json.dumps(carried))
    (tmp_path / "no-run.json").write_text("{}")
    page = results.render(tmp_path)
    assert "| core only | 24.6 | none |" in page
    assert "| 2012-01-27 | 0.790 |" in page and "Carried over from the README" in page
    assert "Commit `ab6a9bf`, 2026-11-30, load average (1 min) 0.95 at start, 1.72 at end" in page
    measured = {"bench_worker_start", "bench_origins"}
    for bench in results.BENCHMARKS:
        section = page.split(f"## {bench.title}\n", 1)[1].split("\n## ", 1)[0]
        assert ("Not yet measured." in section) == (bench.name not in measured), bench.name


def test_the_fault_battery_table_has_a_row_per_fault_and_the_clean_replay(tmp_path: Path) -> None:
    fault = {"kind": "store_level", "size": -0.5, "start": "2012-03-02", "stores": [20], "dept": None,
             "column": None, "mode": None, "weeks_to_warning": 1, "weeks_to_info": None}  # fmt: skip
    clean = {"weeks": 39, "by_level": {"info": 30, "warning": 1, "critical": 0}}
    write_json(tmp_path / "f.json", "bench_faults", {"faults": [fault], "clean": clean}, (1.0, 1.0, 1.0))
    page = results.render(tmp_path)
    assert "| store_level store 20 | -0.5 | 2012-03-02 | 1 | never | yes |" in page
    assert "| clean replay, 39 weeks: alerts opened | - | - | 30 info, 1 warning, 0 critical |" in page
