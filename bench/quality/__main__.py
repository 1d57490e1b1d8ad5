"""``python -m bench.quality [...]``: bench/quality/protocol.py's CLI; the last line is one JSON object."""

import json
import sys

from bench.quality.protocol import main

result = main()
flat = {k: v for k, v in result.items() if k != "rows"}
rows = result.get("rows", {})
if isinstance(rows, dict):  # the tables; --curve's rows are a list, kept in the results file only
    flat.update({f"{k}_mean": v["mean"] for k, v in rows.items()})
sys.stdout.write(json.dumps(flat) + "\n")
