"""
A scripted HTTP session against one of the example apps, as seen through a reverse proxy.

Every request carries ``X-Forwarded-For`` as a proxy on 127.0.0.1 would add it, so with
``OTEL_PYTHON_AUDIT_TRUSTED_PROXIES=127.0.0.1/32`` the events name the "real" client
addresses below. The story: a normal user logs in, changes her password, enrols MFA,
creates an API key, exports a little data and logs out; an attacker bursts wrong
passwords at one account; the normal user tries an admin call (403); the admin grants
the admin role and exports a lot of data (both detections fire).

Usage::

    python examples/session.py http://127.0.0.1:8000

``run_session(base_url)`` returns what was sent, including every secret used, so tests
can assert that none of them reached the telemetry.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _accounts import DEMO_PASSWORDS

ALICE_ADDRESS = "198.51.100.23"
ATTACKER_ADDRESS = "203.0.113.66"
ADMIN_ADDRESS = "192.0.2.10"
NEW_PASSWORD = "alice-New-Secret-42"  # demo value the tests look for
BRUTE_FORCE_ATTEMPTS = 8
BIG_EXPORT_ROWS = 25_000


@dataclass
class SessionResult:
    """What the session did: status codes per step and every secret it sent or received."""

    statuses: list[tuple[str, int]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def status(self, step: str) -> list[int]:
        """Status codes of all requests of one step."""
        return [code for name, code in self.statuses if name == step]


class _Client:
    """One user agent behind the proxy: cookies (Flask) or a bearer token (FastAPI)."""

    def __init__(self, base_url: str, address: str, result: SessionResult) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"X-Forwarded-For": address, "User-Agent": f"otel-audit-session/{address}"},
            timeout=10.0,
        )
        self._result = result

    def call(self, step: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        self._result.statuses.append((step, response.status_code))
        return response

    def login(self, step: str, username: str, password: str) -> httpx.Response:
        self._result.secrets.add(password)
        response = self.call(
            step, "POST", "/login", json={"username": username, "password": password}
        )
        if response.status_code == 200:  # noqa: PLR2004
            token = response.json().get("token")
            if token:
                self._result.secrets.add(token)
                self._http.headers["Authorization"] = f"Bearer {token}"
            for cookie in self._http.cookies.jar:
                if cookie.value:
                    self._result.secrets.add(cookie.value)
        return response

    def close(self) -> None:
        self._http.close()


def run_session(base_url: str) -> SessionResult:
    """Drive the whole story against ``base_url``; raise if the app misbehaves."""
    result = SessionResult()
    alice = _Client(base_url, ALICE_ADDRESS, result)
    attacker = _Client(base_url, ATTACKER_ADDRESS, result)
    admin = _Client(base_url, ADMIN_ADDRESS, result)
    try:
        alice.login("alice.login", "alice", DEMO_PASSWORDS["alice"])
        result.secrets.add(NEW_PASSWORD)
        alice.call(
            "alice.password",
            "POST",
            "/account/password",
            json={"old_password": DEMO_PASSWORDS["alice"], "new_password": NEW_PASSWORD},
        )
        alice.call("alice.mfa", "POST", "/account/mfa", json={"code": "123457"})
        key = alice.call("alice.api_key", "POST", "/api/keys").json()
        result.secrets.add(key["key"])
        alice.call("alice.export", "GET", "/export", params={"rows": 50})
        alice.call("alice.admin", "GET", "/admin/users")  # 403: alice is no admin
        alice.call("alice.logout", "POST", "/logout")

        for attempt in range(BRUTE_FORCE_ATTEMPTS):
            attacker.login("attacker.login", "bob", f"guess-Hunter2-{attempt:02d}")

        admin.login("admin.login", "root", DEMO_PASSWORDS["root"])
        admin.call("admin.grant", "POST", "/admin/roles", json={"user": "alice", "role": "admin"})
        admin.call("admin.export", "GET", "/export", params={"rows": BIG_EXPORT_ROWS})
        admin.call("admin.logout", "POST", "/logout")
    finally:
        for client in (alice, attacker, admin):
            client.close()
    _check(result)
    return result


def _check(result: SessionResult) -> None:
    expected = {
        "alice.login": [200],
        "alice.password": [200],
        "alice.mfa": [200],
        "alice.api_key": [200],
        "alice.export": [200],
        "alice.admin": [403],
        "attacker.login": [401] * BRUTE_FORCE_ATTEMPTS,
        "admin.login": [200],
        "admin.grant": [200],
        "admin.export": [200],
    }
    for step, codes in expected.items():
        if result.status(step) != codes:
            msg = f"step {step}: expected HTTP {codes}, got {result.status(step)}"
            raise RuntimeError(msg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    result = run_session(args.base_url)
    width = max(len(step) for step, _ in result.statuses)
    for step, code in result.statuses:
        print(f"{step:<{width}}  {code}")
    print(f"{len(result.statuses)} requests sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
