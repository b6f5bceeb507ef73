"""Credentials and URL tokens never appear in logs, manifests, rejects, index or messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audiomill import storage
from audiomill.testing.s3 import create_bucket, moto_s3_server

pytestmark = pytest.mark.slow
SECRET_KEY = "SeCrEtKeY0123456789abcdefSECRET"
URL_TOKEN = "TOKEN-sig-5ca1ab1e"


def test_secrets_never_reach_outputs_or_logs(demo_corpus, tmp_path):
    with moto_s3_server():
        bucket = create_bucket("private")
        speech = [f for f in demo_corpus.files if f.kind == "speech" and f.text][:2]
        for entry in speech:
            storage.write_bytes(storage.join(bucket, "in", Path(entry.path).name),
                                (Path(demo_corpus.root) / entry.path).read_bytes())
        manifest = tmp_path / "inputs.jsonl"
        rows = [{"path": storage.join(bucket, "in", Path(e.path).name), "license": "CC0"} for e in speech]
        rows.append({"path": f"{bucket}/in/missing.wav?X-Amz-Signature={URL_TOKEN}", "license": "CC0"})
        rows.append({"path": f"s3://user:{URL_TOKEN}@private/in/other.wav", "license": "CC0"})
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
        env = dict(os.environ, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        out = tmp_path / "out"
        result = subprocess.run(
            [sys.executable, "-m", "audiomill", "-v", "clean", str(manifest), "--out", str(out),
             "--runner", "local", "--json", "--set", "ingest.manifest_absolute_paths=true"],
            capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        bad = subprocess.run([sys.executable, "-m", "audiomill", "clean", f"s3://private/nope?token={URL_TOKEN}",
                              "--out", str(tmp_path / "x")], capture_output=True, text=True, env=env)
        assert bad.returncode == 2
    texts = {"stdout": result.stdout, "stderr": result.stderr, "error": bad.stdout + bad.stderr}
    for path in out.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("latin-1")
    assert json.loads(result.stdout)["counts"]["rejected_sources"] == 2
    leaks = [name for name, text in texts.items() if SECRET_KEY in text or URL_TOKEN in text]
    assert not leaks
