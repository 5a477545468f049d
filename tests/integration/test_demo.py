"""`genomeport demo` on a fresh var/: it loads seed_data, serves, and every
example it prints answers correctly."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import REPO, free_port


def test_demo_examples_answer(tmp_path, pg_available):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}
    env["GENOMEPORT_VAR_DIR"] = str(tmp_path / "var")
    env["GENOMEPORT_LOG_FORMAT"] = "text"
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
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
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
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
            [sys.executable, "-m", "server.cli", "demo", "--no-serve"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
