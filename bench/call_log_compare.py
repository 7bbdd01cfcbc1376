"""Two runs of bench/call_log.py side by side (`--json` of each): median per page, the ratio
after / before, and each run's load average. Runs given in order A1 B1 A2 B2 … pair up A with B; each figure is the median over the runs.

    .venv/bin/python bench/call_log.py --rows 1000000 --code /tmp/obd_before --json before1.json
    .venv/bin/python bench/call_log.py --rows 1000000 --json after1.json   # … twice each
    .venv/bin/python bench/call_log_compare.py before1.json after1.json before2.json after2.json
"""

import json
import statistics
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    runs = [json.loads(Path(path).read_text())[0] for path in paths]
    before, after = runs[0::2], runs[1::2]
    for label, group in (("before", before), ("after", after)):
        for run in group:
            low, high = run["load"]
            print(f"{label}: {run['rows']:,} rows, load average {low:.1f} → {high:.1f}")
    print(
        f"\n{'page':<17}{'variant':<8}{'before ms':>10}{'after ms':>10}{'ratio':>7}{'sql b/a':>10}"
    )
    ratios, cpu_ratios = [], []
    for i, r in enumerate(before[0]["results"]):
        b = statistics.median(run["results"][i]["median_ms"] for run in before)
        a = statistics.median(run["results"][i]["median_ms"] for run in after)
        sb = statistics.median(run["results"][i]["slowest_query_ms"] for run in before)
        sa = statistics.median(run["results"][i]["slowest_query_ms"] for run in after)
        cb = statistics.median(run["results"][i]["cpu_ms"] for run in before)
        ca = statistics.median(run["results"][i]["cpu_ms"] for run in after)
        ratios.append(a / b)
        cpu_ratios.append(ca / cb)
        print(
            f"{r['page']:<17}{r['variant']:<8}{b:>10.1f}{a:>10.1f}{a / b:>7.2f}"
            f"{cb:>11.1f}{ca:>7.1f}{ca / cb:>7.2f}"
            f"{sb:>5.0f}/{sa:<4.0f}"
        )
    print(f"\nmedian ratio after / before: wall {statistics.median(ratios):.2f}, ", end="")
    print(f"CPU {statistics.median(cpu_ratios):.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
