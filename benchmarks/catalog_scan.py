"""Scan and list 1,000 generated bundles: in-process scan time and whole-process `list --json`.

    python benchmarks/catalog_scan.py [--bundles 1000] [--runs 7]

Targets on a 2-core machine: scan < 300 ms, CLI (start + scan + print) < 400 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skillcell.catalog import scan

MANIFEST = """\
name: bench/tool-{i}
version: 1.0.{i}
description: Generated tool number {i}.
from: python:3.11-slim
timeout: 10s
annotations: {{readOnlyHint: true, openWorldHint: false}}
scripts:
  run:
    command: python3 main.py {{{{text}}}} --n {{{{n}}}}
    inputSchema:
      type: object
      properties:
        text: {{type: string, description: Some text}}
        n: {{type: integer, default: 3}}
      required: [text]
"""


def generate(root: Path, count: int) -> None:
    for i in range(count):
        bundle = root / f"tool-{i}"
        bundle.mkdir(parents=True)
        (bundle / "skill.package.yml").write_text(MANIFEST.format(i=i))
        (bundle / "main.py").write_text("print('hi')\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, ns.bundles)
        index = root / "index.pickle"
        scans, cold_scans = [], []
        for _ in range(ns.runs):
            index.unlink(missing_ok=True)
            start = time.perf_counter()
            catalog = scan([root], index=index)
            cold_scans.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            catalog = scan([root], index=index)
            scans.append((time.perf_counter() - start) * 1000)
        assert len(catalog.tools) == ns.bundles, catalog.problems[:3]
        cli = []
        baseline = []
        for _ in range(ns.runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            baseline.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "skillcell", "list", "--json", "--skills", str(root)],
                check=True, capture_output=True, cwd=tmp,
                env={**os.environ, "SKILLCELL_CACHE_DIR": str(root / "cache")},
            )  # fmt: skip
            cli.append((time.perf_counter() - start) * 1000)
        assert done.stdout.count(b'"name"') == ns.bundles
    rows = [
        ("scan, cold (no index)", statistics.median(cold_scans), None),
        ("scan, unchanged bundles (index)", statistics.median(scans), 300),
        ("list --json, whole process (index)", statistics.median(cli), 400),
        ("bare python startup (reference)", statistics.median(baseline), None),
    ]
    print(f"{ns.bundles} bundles, median of {ns.runs} runs")
    print(f"{'measure':<34}{'median ms':>10}{'target ms':>10}  verdict")
    for name, value, target in rows:
        verdict = "" if target is None else ("ok" if value < target else "OVER")
        print(f"{name:<34}{value:>10.1f}{target or '':>10}  {verdict}")


if __name__ == "__main__":
    main()
