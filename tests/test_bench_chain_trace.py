"""``bench/chain_trace.py``: a sync's time goes to the innermost wait or call that holds it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from chain_trace import _exclusive, report  # noqa: E402


def test_each_instant_counts_for_the_innermost_span() -> None:
    spans = [(0.0, 10.0, "sync"), (1.0, 6.0, "lb.wait"), (2.0, 3.0, "call.x"), (7.0, 8.0, "call.y")]
    got = _exclusive(spans)
    assert got == {"sync": 4.0, "lb.wait": 4.0, "call.x": 1.0, "call.y": 1.0}


def test_the_report_splits_each_sync_of_a_trace_file(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    events = [
        (1, 0.0, 1.0, "sync", "ns/a"),
        (1, 0.2, 0.7, "lb.wait", "ns/a"),
        (2, 0.5, 0.8, "sync", "ns/b"),
        (2, 0.6, 0.7, "call.publicIPAddresses.get", "ns/b"),
        (1, 1.5, 1.6, "call.outside", "ns/a"),  # after its sync: not in it
    ]
    trace.write_text("".join(json.dumps(e) + "\n" for e in events))
    lines: list[str] = []
    report(str(trace), lines.append)
    assert lines[0].startswith("syncs: 2;")
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["total"][-1] == "1.30"  # 1.0 + 0.3 seconds of sync
    assert rows["lb.wait"][-1] == "0.50"
    assert rows["call.publicIPAddresses.get"][-1] == "0.10"
    assert "call.outside" not in rows
