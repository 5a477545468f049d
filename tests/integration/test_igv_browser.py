"""igv.js in headless Chromium reads a BAM and a VCF from the node over htsget.

The page is served from another origin than the node, so CORS on tickets and
data URLs is exercised as a real browser does it. The records igv.js decodes
are compared with pysam on the same files.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pysam
import pytest

from tests.conftest import REPO, free_port

IGV_DIST = REPO / "var" / "browser" / "node_modules" / "igv" / "dist" / "igv.min.js"
REGION = ("chr1", 10000, 12000)  # 0-based half-open

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="igv.min.js"></script></head>
<body><div id="igv"></div><pre id="result">pending</pre>
<script>
(async () => {
  const out = document.getElementById("result");
  try {
    const browser = await igv.createBrowser(document.getElementById("igv"), {
      reference: {id: "GPDEMO1", name: "GPDEMO1", fastaURL: "reference.fa", indexed: false},
      locus: "%(chrom)s:%(first)d-%(end)d",
      tracks: []
    });
    const bam = await browser.loadTrack({type: "alignment", format: "bam", sourceType: "htsget",
                                         url: "%(node)s/reads/DK0001", name: "DK0001"});
    const vcf = await browser.loadTrack({type: "variant", format: "vcf", sourceType: "htsget",
                                         url: "%(node)s/variants/cohort", name: "cohort"});
    const reads = await bam.getFeatures("%(chrom)s", %(start)d, %(end)d, 1);
    const names = new Set();
    const all = reads.alignments ? reads.alignments()
              : (reads.allAlignments ? reads.allAlignments() : []);
    for (const a of all) {
      if (a.readName) names.add(a.readName + "/" + (a.isFirstOfPair ? a.isFirstOfPair() : ""));
    }
    const variants = await vcf.getFeatures("%(chrom)s", %(start)d, %(end)d, 1);
    out.textContent = JSON.stringify({reads: names.size,
      variants: variants.map(v => v.chr + ":" + (v.pos !== undefined ? v.pos : v.start + 1))});
  } catch (e) {
    out.textContent = JSON.stringify({error: String(e && e.stack || e)});
  }
})();
</script></body></html>
"""


@pytest.fixture(scope="module")
def igv_installed():
    if not IGV_DIST.exists() or not shutil.which("chromium"):
        subprocess.run(["bash", str(REPO / "scripts" / "install-browser.sh")], check=True)
    assert IGV_DIST.exists() and shutil.which("chromium")


def static_server(directory: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_igv_reads_bam_and_vcf_over_htsget(igv_installed, seed_dir, tmp_path):
    from server.registry import add_files

    def register(settings, db):
        files = [seed_dir / "DK0001.bam", seed_dir / "cohort.vcf.gz"]
        add_files(db, files, "demo", progress=False)

    igv_reads_the_seed_files(seed_dir, tmp_path, register)


def test_igv_reads_crypt4gh_archived_files_as_plaintext(igv_installed, seed_dir, tmp_path):
    """The same files delivered encrypted through the inbox: igv.js reads their
    plaintext, decrypted by the node in memory as the data plane streams it."""
    from server.c4gh.keys import key_paths, keygen
    from server.inbox.ingest import Ingest, enqueue_local
    from tests.support import c4gh

    def register(settings, db):
        keygen(settings)
        for name, object_id in (("DK0001.bam", "DK0001"), ("cohort.vcf.gz", "cohort")):
            enc = c4gh.encrypt(seed_dir / name, key_paths(settings)[1], tmp_path / f"{name}.c4gh")
            enqueue_local(settings, db, enc, "demo", object_id=object_id, operator="centre")
        assert Ingest(settings, db).work(once=True) == 2

    igv_reads_the_seed_files(seed_dir, tmp_path, register, c4gh_passphrase="igv-passphrase")


def igv_reads_the_seed_files(seed_dir, tmp_path, register, **overrides):
    from server.db import Database
    from server.registry import add_dataset
    from server.settings import Settings
    from tests.conftest import start_server, stop_server

    settings = Settings(
        var_dir=str(tmp_path / "var"),
        signing_key="browser-test-key",
        log_format="text",
        **overrides,
    )
    db = Database(settings.effective_database_url)
    db.upgrade()
    add_dataset(db, "demo", access="public")
    register(settings, db)
    node = start_server(settings)
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(IGV_DIST, site / "igv.min.js")
    shutil.copy(seed_dir / "reference.fa", site / "reference.fa")
    chrom, start, end = REGION
    (site / "index.html").write_text(
        PAGE % {"node": node.url, "chrom": chrom, "start": start, "end": end, "first": start + 1}
    )
    web = static_server(site)
    try:
        out = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'chrome'}",
                "--virtual-time-budget=30000",
                "--dump-dom",
                f"http://127.0.0.1:{web.server_port}/index.html",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        web.shutdown()
        web.server_close()
        stop_server(node)
        db.dispose()
    match = re.search(r'<pre id="result">(.*?)</pre>', out.stdout, re.S)
    assert match, out.stdout[-2000:] + out.stderr[-2000:]
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert "error" not in result, result
    with pysam.AlignmentFile(str(seed_dir / "DK0001.bam")) as bam:
        expected_reads = {
            f"{r.query_name}/{str(r.is_read1).lower() if r.is_paired else ''}"
            for r in bam.fetch(chrom, start, end)
            # igv.js hides unmapped, duplicate and QC-failed reads by default
            if not (r.is_unmapped or r.is_duplicate or r.is_qcfail)
        }
    assert result["reads"] >= 1
    assert result["reads"] == len(expected_reads)
    with pysam.VariantFile(str(seed_dir / "cohort.vcf.gz")) as vcf:
        expected_variants = [f"{r.chrom}:{r.pos}" for r in vcf.fetch(chrom, start, end)]
    assert set(expected_variants) <= set(result["variants"])
