#!/usr/bin/env python
"""WES submit benchmark: what loading and checking the whole CWL graph costs.

Submits, through the app in this process (SQLite, no network), the same
request with the graph check (server.wes.graph.load, cwltool's loader behind
the node's fetcher) and with the check replaced by a pass-through, interleaved,
and prints medians of --repeat submissions and the difference side by side
(never asserted anywhere). Workflows: the trivial two-step CWL workflow
attached, and the shipped variant-calling workflow.

Usage: .venv/bin/python bench/wes_submit.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.unit.wes.conftest import TWO_STEP  # noqa: E402

BASE = "/ga4gh/wes/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from server.settings import Settings
    from server.web.app import create_app
    from server.wes import graph

    var = Path(tempfile.mkdtemp(prefix="wes-submit-bench-"))
    settings = Settings(
        var_dir=str(var),
        signing_key="bench",
        log_level="WARNING",
        wes_input_roots=(str(REPO / "seed_data"),),
    )
    real_load = graph.load

    def passthrough(settings, workflow, workdir, inputs_dir, **kw):
        return graph.Graph(workflow, set(), set())

    cases = {
        "two-step (attached)": (
            {"workflow_url": "two.cwl", "workflow_params": json.dumps({"msg": "hi"})},
            TWO_STEP,
        ),
        "variant-calling (shipped)": (
            {
                "workflow_url": "variant-calling",
                "workflow_params": json.dumps(
                    {
                        "reference": {
                            "class": "File",
                            "path": str(REPO / "seed_data/reference.fa"),
                        },
                        "alignments": {"class": "File", "path": str(REPO / "seed_data/DK0001.bam")},
                        "region": "chr1:1-20000",
                    }
                ),
            },
            None,
        ),
    }
    with create_app(settings).test_client() as client:

        def submit(fields: dict, text: str | None) -> float:
            data = {"workflow_type": "CWL", "workflow_type_version": "v1.2", **fields}
            files = (
                [("workflow_attachment", ("two.cwl", io.BytesIO(text.encode())))]
                if text
                else [("workflow_attachment", ("notes.txt", io.BytesIO(b"-")))]
            )
            start = time.perf_counter()
            resp = client.post(f"{BASE}/runs", data=data, files=files)
            took = time.perf_counter() - start
            assert resp.status_code == 200, resp.text
            return took

        for fields, text in cases.values():  # warm both paths (imports, schemas)
            submit(fields, text)
        print(
            f"| submit, median of {args.repeat} | with graph check (ms) | without (ms) "
            "| difference (ms) | ratio |"
        )
        print("|---|---:|---:|---:|---:|")
        for name, (fields, text) in cases.items():
            with_check, without = [], []
            for _ in range(args.repeat):
                graph.load = real_load
                with_check.append(submit(fields, text))
                graph.load = passthrough
                without.append(submit(fields, text))
            graph.load = real_load
            a, b = statistics.median(with_check) * 1000, statistics.median(without) * 1000
            print(f"| {name} | {a:.0f} | {b:.0f} | {a - b:+.0f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
