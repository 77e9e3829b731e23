"""The ``redact`` command: JSON lines in, redacted JSON lines out, bad lines reported."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from otel_audit.redaction import _cli

SECRET = "ghp_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8"
LINES = [
    json.dumps({"id": 1, "body": f"token {SECRET}", "attributes": {"password": "x"}, "x": 7}),
    "{not json",
    json.dumps({"id": 3, "body": {"card": "4111 1111 1111 1111"}, "attributes": {}}),
    json.dumps({"id": 4, "body": "clean line", "attributes": {"http.route": "/a"}}),
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_PYTHON_AUDIT_")}
    env["PYTHONPATH"] = str(Path(__file__).parents[2] / "src")
    return env


class TestRedactCommand:
    def test_subprocess_round_trip(self, tmp_path):
        """Lines come out redacted, unknown keys pass, a bad line is named, exit is non-zero."""
        source = tmp_path / "in.jsonl"
        source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "otel_audit.redaction._cli", "--input", str(source)],
            capture_output=True,
            text=True,
            env=_env(),
            check=False,
            timeout=60,
        )
        assert result.returncode == 1
        assert "line 2:" in result.stderr
        assert SECRET not in result.stdout
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert [o["id"] for o in out] == [1, 3, 4]
        assert out[0]["x"] == 7
        assert out[0]["body"] == "token [REDACTED:github_token]"
        assert out[0]["attributes"]["password"] == "[REDACTED:key.password]"
        assert out[0]["attributes"]["audit.redaction"] == ["github_token:1", "key.password:1"]
        assert out[1]["body"] == {"card": "[REDACTED:credit_card:****1111]"}
        assert out[2] == json.loads(LINES[3])

    def test_registered_func_with_files(self, tmp_path, monkeypatch):
        """The register()'d func reads --input and writes --output; clean input exits 0."""
        for key in [k for k in os.environ if k.startswith("OTEL_PYTHON_AUDIT_")]:
            monkeypatch.delenv(key)
        source, sink = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        source.write_text(LINES[0] + "\n" + LINES[3] + "\n", encoding="utf-8")
        parser = argparse.ArgumentParser()
        _cli.register(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["redact", "--input", str(source), "--output", str(sink)])
        assert args.func(args) == 0
        text = sink.read_text(encoding="utf-8")
        assert SECRET not in text
        assert len(text.splitlines()) == 2

    def test_settings_apply(self, tmp_path):
        """The OTEL_PYTHON_AUDIT_* settings reach the engine (HMAC key -> pseudonyms)."""
        env = _env() | {"OTEL_PYTHON_AUDIT_HMAC_KEY": "0123456789abcdef0123"}
        line = json.dumps({"id": 1, "body": "mail bob@example.com", "attributes": {}})
        result = subprocess.run(
            [sys.executable, "-m", "otel_audit.redaction._cli"],
            input=line + "\n",
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["body"].startswith("mail hmac:k1:")
