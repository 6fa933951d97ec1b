"""The benchmark suite in quick mode: every row is reported with a figure (timings are not judged)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from bench.harness import percentile
from bench.overhead import OverheadResult
from bench.report import Report, Row
from tests.auxil.fake_gemini import encode_json, render_png_b64
from tests.auxil.process import ROOT

ROWS = [
    "overhead_sqlite",
    "overhead_sqlite_p99",
    "overhead_pg",
    "overhead_pg_p99",
    *(
        f"api_{api}_{what}_{turn}"
        for api in ("generate_content", "interactions")
        for turn in (1, 5, 10)
        for what in ("bytes", "ms")
    ),
    "api_bytes_ratio",
    "concurrency_ratio",
    "loop_stall",
    "concurrency_ratio_small",
    *(f"{what}_turn_{turn}" for turn in (2, 5, 10, 20) for what in ("request_bytes", "input_tokens")),
    "bytes_growth",
    "bytes_vs_unbounded",
    "tokens_growth",
    "tokens_vs_unbounded",
    "storage_ratio",
    "order_sqlite",
    "order_pg",
    "capacity_sqlite",
    "capacity_sqlite_cpu",
    "capacity_pg_1",
    "capacity_pg_1_cpu",
    "memory_rss",
    "memory_peak",
    "startup",
]
TARGETED = {
    "api_bytes_ratio": 0.05,
    "overhead_sqlite": 1.3,
    "overhead_pg": 1.4,
    "order_sqlite": 0.0,
    "order_pg": 0.0,
    "concurrency_ratio": 1.25,
    "loop_stall": 50.0,
    "bytes_growth": 1.2,
    "bytes_vs_unbounded": 0.2,
    "tokens_growth": 1.2,
    "tokens_vs_unbounded": 0.2,
    "storage_ratio": 1.1,
    "memory_rss": 150.0,
    "startup": 2.0,
}


@pytest.mark.timeout(180)
async def test_quick_run_reports_every_row_with_a_figure(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--out",
        str(tmp_path),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 170)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert b"Traceback" not in stderr

    data = json.loads((tmp_path / "quick.json").read_text())
    rows = {row["key"]: row for row in data["rows"]}
    assert list(rows) == ROWS
    for key, row in rows.items():
        assert isinstance(row["figure"], int | float) and math.isfinite(row["figure"]), key
        assert row["figure"] >= 0 and row["shown"].strip(), key
        assert row["target"] == TARGETED.get(key), key
        assert row["verdict"] in (("PASS", "FAIL") if key in TARGETED else ("info",)), key
    # Correctness is judged even in quick mode: every message of every thread generated once,
    # in posting order, in one process on SQLite and over three processes on PostgreSQL.
    for key in ("order_sqlite", "order_pg"):
        assert rows[key]["figure"] == 0 and rows[key]["verdict"] == "PASS", rows[key]
        assert rows[key]["shown"] == "0 / 0 (of 50)"
    # Overhead is a ratio to a bare SDK call of the same request (the median of paired ratios),
    # shown with both series' medians and their ratio.
    for key in ("overhead_sqlite", "overhead_pg"):
        shown = re.fullmatch(
            r"(\d+\.\d\d)× \(medians (\d+\.\d) / (\d+\.\d) ms, (\d+\.\d\d)×\)", rows[key]["shown"]
        )
        assert shown, rows[key]
        assert float(shown[1]) == pytest.approx(rows[key]["figure"], abs=0.005)
        ratio, bot, bare = float(shown[4]), float(shown[2]), float(shown[3])
        # The medians are shown to 0.1 ms (quick mode's are a few ms): allow for that rounding.
        assert abs(ratio - bot / bare) <= ratio * (0.05 / bot + 0.05 / bare) + 0.005, rows[key]
    for key in ("capacity_sqlite", "capacity_pg_1"):
        assert rows[key]["figure"] > 0 and "ideal" in rows[key]["shown"]
    # Cost rows come from what the fake received: the unbounded thread grows, the budget does not.
    assert rows["bytes_vs_unbounded"]["figure"] < 1 and rows["tokens_vs_unbounded"]["figure"] < 1
    assert data["machine"]["cores"] == str(os.cpu_count())

    table = stdout.decode()
    markdown = (tmp_path / "quick.md").read_text()
    assert "| # | measure | figure | target | result |" in markdown
    for row in rows.values():
        assert row["measure"] in table and row["shown"] in table
        assert f"| {row['measure']} | {row['shown']} |" in markdown
    with Image.open(tmp_path / "quick.png") as chart:
        assert chart.format == "PNG" and chart.width == 1200 and chart.height > 400


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_rows_judge_figures_against_targets() -> None:
    report = Report(mode="quick", command="python -m bench --quick")
    report.add(Row("a", "1", "under", 29.9, "29.9 ms", 30.0, "≤ 30 ms"))
    report.add(Row("b", "1", "over", 30.1, "30.1 ms", 30.0, "≤ 30 ms"))
    report.add(Row("c", "3", "context", 5.0, "5"))
    assert [r.verdict for r in report.rows] == ["PASS", "FAIL", "info"]
    assert [r.key for r in report.failures] == ["b"]
    lines = report.table_lines()
    assert lines[0].split() == ["#", "measure", "figure", "target", "result"]
    assert lines[3].rstrip().endswith("FAIL")


def test_fake_splices_large_images_into_exactly_the_json_it_would_dump() -> None:
    image = render_png_b64((1, 2, 3), (64, 64), True)
    assert len(image) > 4096  # large enough to take the splice path
    payload = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": 'quote " and é', "thoughtSignature": "+/=="},
                        {"inlineData": {"mimeType": "image/png", "data": image}},
                        {"inlineData": {"mimeType": "image/png", "data": image[:10]}},
                    ]
                }
            }
        ],
        "data": image,  # not inline data: dumped normally
    }
    assert encode_json(payload) == json.dumps(payload).encode()


def test_the_overhead_ratio_pairs_each_turn_with_the_call_after_it() -> None:
    """Three slow moments and two fast ones: each series' median catches a different moment
    (44 ms against 25 ms: 1.76), while every turn costs about 1.2 times the call beside it."""
    result = OverheadResult(
        samples_ms=(44.0, 44.0, 44.0, 30.0, 30.0, 30.0),
        bare_samples_ms=(36.0, 36.0, 25.0, 25.0, 25.0, 0.0),  # a call the fake outlasted: left out
        median_ms=44.0,
        p99_ms=44.0,
        bare_median_ms=25.0,
        model_median_ms=100.0,
        request_bytes=1,
    )
    assert result.ratio == pytest.approx(44 / 36)  # of 1.2, 1.2, 1.22, 1.22 and one mismatched 1.76
    assert result.ratio_of_medians == pytest.approx(1.76)
