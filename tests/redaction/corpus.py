"""
A seeded generator of realistic, labelled log records (no real data).

Each :class:`Sample` carries the record (body + attributes) and two labels: ``secrets``,
strings that must not survive redaction, and ``kept``, strings investigators need that
must survive intact. Used by the tests and by ``benchmarks/bench_redaction.py`` to report
recall and kept-string precision.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_ALNUM = string.ascii_letters + string.digits


@dataclass
class Sample:
    """One labelled record."""

    body: Any
    attributes: dict[str, Any]
    secrets: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    kind: str = "benign"


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def hex(self, n: int) -> str:
        return self.s("0123456789abcdef", n)

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def ip(self) -> str:
        return f"10.{self.r.randint(0, 255)}.{self.r.randint(0, 255)}.{self.r.randint(1, 254)}"

    def user(self) -> str:
        return self.r.choice(["alice", "bob", "carol", "dave", "erin", "frank", "grace"])

    def ts(self) -> str:
        return (
            f"2024-0{self.r.randint(1, 9)}-1{self.r.randint(0, 9)}T"
            f"{self.r.randint(10, 23)}:{self.r.randint(10, 59)}:{self.r.randint(10, 59)}Z"
        )

    def version(self) -> str:
        return f"{self.r.randint(1, 9)}.{self.r.randint(0, 40)}.{self.r.randint(0, 20)}"

    # --- secrets ---------------------------------------------------------------------------
    def github(self) -> str:
        return "ghp_" + self.s(_ALNUM, 36)

    def aws(self) -> str:
        return "AKIA" + self.s(string.ascii_uppercase + "234567", 16)

    def stripe(self) -> str:
        return "sk_live_" + self.s(_ALNUM, 24)

    def slack(self) -> str:
        return f"xoxb-{self.s(string.digits, 11)}-{self.s(string.digits, 12)}-{self.s(_ALNUM, 24)}"

    def jwt(self) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")

        header = b64(b'{"alg":"HS256","typ":"JWT"}')
        payload = b64(json.dumps({"sub": self.hex(8), "exp": 1700000000}).encode())
        return f"{header}.{payload}.{self.s(_ALNUM + '-_', 43)}"

    def password(self) -> str:
        return self.s(_ALNUM, 6) + self.r.choice("!#%&*") + self.s(_ALNUM, 5)

    def card(self) -> str:
        digits = [4] + [self.r.randint(0, 9) for _ in range(14)]
        total = 0
        for i, d in enumerate(reversed(digits)):
            v = d * 2 if i % 2 == 0 else d
            total += v - 9 if v > 9 else v
        digits.append((10 - total % 10) % 10)
        return "".join(map(str, digits))

    def iban(self) -> str:
        bban = self.s(string.digits, 18)
        number = int(bban + "131400")  # "DE" -> 13 14, check digits 00
        check = 98 - number % 97
        return f"DE{check:02d}{bban}"

    def email(self) -> str:
        return f"{self.user()}.{self.s(string.ascii_lowercase, 5)}@example.org"

    def ssn(self) -> str:
        return f"{self.r.randint(100, 665)}-{self.r.randint(10, 99)}-{self.r.randint(1000, 9999)}"


def _benign(g: _Gen) -> Sample:
    trace, span, req = g.hex(32), g.hex(16), g.uuid()
    sha, ver, ip, ts = g.hex(40), g.version(), g.ip(), g.ts()
    templates: list[Callable[[], Sample]] = [
        lambda: Sample(
            f"GET /api/v1/orders/{g.r.randint(1, 99999)} 200 in {g.r.randint(1, 900)}ms",
            {"http.route": "/api/v1/orders/{id}", "trace_ref": trace, "request_id": req},
            kept=[trace, req],
        ),
        lambda: Sample(
            f"deployed {sha[:12]} ({sha}) version {ver} at {ts}",
            {"commit": sha, "service.version": ver},
            kept=[sha, ver, ts],
        ),
        lambda: Sample(
            f"user {g.user()} logged in from {ip}; "
            f"token_expires_at={1715000000 + g.r.randint(0, 9999)}",
            {"client.address": ip, "password_changed": False, "auth_method": "password"},
            kept=[ip],
        ),
        lambda: Sample(
            f"cache miss for key user:{g.r.randint(1, 999)} span {span}",
            {"span_ref": span, "cache": "redis", "session_count": g.r.randint(1, 9)},
            kept=[span],
        ),
        lambda: Sample(
            f"fetched https://cdn.example.com/assets/app-{ver}.js sha256:{g.hex(64)}",
            {"url.full": f"https://cdn.example.com/assets/app-{ver}.js?v={ver}"},
            kept=[f"https://cdn.example.com/assets/app-{ver}.js"],
        ),
        lambda: Sample(
            f"job {req} finished: processed {g.r.randint(1, 10**6)} rows, took {g.r.random():.3f}s",
            {"job.id": req, "rows": g.r.randint(1, 10**6), "event.id": g.uuid()},
            kept=[req],
        ),
        lambda: Sample(
            f"password reset requested by user {g.r.randint(1, 9999)}; secret_name=db-primary",
            {"secret_name": "db-primary", "api_key_id": f"key-{g.r.randint(1, 99)}"},
            kept=["db-primary"],
        ),
    ]
    return g.r.choice(templates)()


def _secret(g: _Gen) -> Sample:
    u = g.user()
    pw, gh, aws, card, email = g.password(), g.github(), g.aws(), g.card(), g.email()
    stripe, slack, jwt, iban, ssn = g.stripe(), g.slack(), g.jwt(), g.iban(), g.ssn()
    trace = g.hex(32)
    templates: list[Callable[[], Sample]] = [
        lambda: Sample(
            f"login failed for {u} password={pw}", {"trace_ref": trace}, [pw], [trace], "pair"
        ),
        lambda: Sample(
            "outbound call",
            {"http.request.header.authorization": f"Bearer {jwt}"},
            [jwt],
            kind="header",
        ),
        lambda: Sample(f"cloning with token {gh}", {}, [gh], kind="github"),
        lambda: Sample(
            {"event": "config", "aws": {"access_key_id": aws, "region": "eu-west-1"}},
            {},
            [aws],
            ["eu-west-1"],
            "aws",
        ),
        lambda: Sample(f"charged card {card} for order 42", {}, [card], kind="card"),
        lambda: Sample(f"refund to IBAN {iban}", {}, [iban], kind="iban"),
        lambda: Sample(f"applicant ssn {ssn} verified", {}, [ssn], kind="ssn"),
        lambda: Sample(
            f"welcome mail sent to {email}", {"user.id": "u-42"}, [email], ["u-42"], "email"
        ),
        lambda: Sample(
            "db connect",
            {"db.connection_string": f"postgresql://app:{pw}@db.internal:5432/app"},
            [pw],
            kind="dsn",
        ),
        lambda: Sample(
            f"connecting to postgresql://app:{pw}@db.internal:5432/app",
            {},
            [pw],
            ["db.internal:5432/app"],
            "url",
        ),
        lambda: Sample(
            "payment provider call",
            {"payload": json.dumps({"api_key": stripe, "amount": 1200})},
            [stripe],
            kind="json",
        ),
        lambda: Sample(f"slack notify using {slack}", {}, [slack], kind="slack"),
        lambda: Sample(
            f"INSERT INTO users (name, email, password) VALUES ('{u}', '{email}', '{pw}')",  # noqa: S608
            {},
            [pw, email],
            kind="sql",
        ),
        lambda: Sample(
            "unhandled error",
            {
                "exception.type": "ConnectionError",
                "exception.message": f"auth failed for token {gh}",
                "exception.stacktrace": (
                    'Traceback (most recent call last):\n  File "app.py", line 9, in run\n'
                    f'    client.login(password="{pw}")\nConnectionError: auth failed'
                ),
            },
            [gh, pw],
            ["ConnectionError"],
            "exception",
        ),
        lambda: Sample(
            f"GET /callback?code=ok&access_token={g.s(_ALNUM, 32)}&state=x",
            {},
            [],
            kind="query",
        ),
    ]
    sample = g.r.choice(templates)()
    if sample.kind == "query":
        token = str(sample.body).split("access_token=")[1].split("&")[0]
        sample.secrets = [token]
    return sample


def generate(n: int, *, seed: int = 1234, secret_ratio: float = 0.3) -> Iterator[Sample]:
    """
    ``n`` samples, about ``secret_ratio`` of them carrying planted secrets.

    Args:
        n: how many samples.
        seed: the same seed gives the same corpus.
        secret_ratio: share of samples with secrets.
    """
    g = _Gen(seed)
    for _ in range(n):
        yield _secret(g) if g.r.random() < secret_ratio else _benign(g)


def score(samples: list[Sample], outputs: list[str]) -> dict[str, float]:
    """
    Recall over planted secrets and kept-string precision over labelled kept strings.

    ``outputs[i]`` is the serialised redacted record of ``samples[i]``. Recall is the
    share of planted secrets absent from the output; precision is the share of redactions
    that hit a secret rather than a kept string (kept strings destroyed count as false
    positives).
    """
    planted = removed = kept_total = kept_lost = 0
    for sample, out in zip(samples, outputs, strict=True):
        for secret in sample.secrets:
            planted += 1
            removed += secret not in out
        for kept in sample.kept:
            kept_total += 1
            kept_lost += kept not in out
    recall = removed / planted if planted else 1.0
    precision = removed / (removed + kept_lost) if removed + kept_lost else 1.0
    return {
        "planted": planted,
        "removed": removed,
        "recall": recall,
        "kept": kept_total,
        "kept_lost": kept_lost,
        "precision": precision,
    }
