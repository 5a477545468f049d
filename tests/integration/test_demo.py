"""`genomeport demo` on a fresh var/: it loads seed_data, serves, and every
example it prints answers correctly."""

import json
import subprocess
import sys
import time

from tests.conftest import REPO, free_port
from tests.support.processes import clean_env, stop, wait_ready


def test_demo_examples_answer(tmp_path, pg_available):
    port = free_port()
    env = {
        **clean_env(),
        "GENOMEPORT_VAR_DIR": str(tmp_path / "var"),
        "GENOMEPORT_LOG_FORMAT": "text",
    }
    demo = [sys.executable, "-m", "server.cli", "demo"]
    # its output is read line by line: it prints the examples to run
    pipe = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = subprocess.Popen(
        demo + ["--port", str(port)], cwd=REPO, env=env, **pipe, start_new_session=True
    )
    lines = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Serving on"):
                break
        assert any(line.startswith("Serving on") for line in lines), "\n".join(lines)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/health/ready", proc, timeout=max(1, deadline - time.monotonic()))
        examples = [line[4:] for line in lines if line.startswith("  $ ")]
        assert len(examples) >= 2
        for example in examples:
            out = subprocess.run(
                ["bash", "-o", "pipefail", "-c", example],
                capture_output=True,
                text=True,
                timeout=60,
                env={**env, "HTS_CACHE": "0"},
            )
            assert out.returncode == 0, f"{example}\n{out.stdout}\n{out.stderr}"
            assert out.stdout.strip(), f"{example} printed nothing"
            if example.startswith("curl"):
                body = json.loads(out.stdout)
                text = json.dumps(body)
                assert '"status_code": 4' not in text and '"htsget": {"error"' not in text, example
            if example.startswith("samtools view -c"):
                assert int(out.stdout.strip()) > 0
        # running it again is idempotent
        again = subprocess.run(
            demo + ["--no-serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        stop(proc, timeout=30)
