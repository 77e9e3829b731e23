"""
The toy account store both example apps share: users, password check, MFA, API keys.

Passwords are hashed (PBKDF2) even here, because examples get copied. Nothing in this
module logs: the apps decide what becomes a security event.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field

_SALT = b"otel-audit-example"


def _hash(password: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), _SALT, 1_000)


@dataclass
class User:
    id: str
    username: str
    password_hash: bytes
    roles: set[str] = field(default_factory=set)
    mfa_enrolled: bool = False
    api_keys: dict[str, str] = field(default_factory=dict)  # key id -> key hash


# Demo credentials: session.py logs in with these and the tests check that none of them
# reaches the telemetry.
DEMO_PASSWORDS = {"alice": "alice-Correct-Horse-7", "root": "root-Battery-Staple-9"}


class Accounts:
    """Thread-safe in-memory users; both servers run handlers on several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = {
            "alice": User("u-1001", "alice", _hash(DEMO_PASSWORDS["alice"]), {"analyst"}),
            "root": User("u-1", "root", _hash(DEMO_PASSWORDS["root"]), {"admin"}),
            "bob": User("u-1002", "bob", _hash(secrets.token_urlsafe()), {"analyst"}),
        }

    def get(self, username: str) -> User | None:
        with self._lock:
            return self._users.get(username)

    def by_id(self, user_id: str) -> User | None:
        with self._lock:
            return next((u for u in self._users.values() if u.id == user_id), None)

    def check_password(self, username: str, password: str) -> User | None:
        user = self.get(username)
        candidate = _hash(password)
        if user is None or not hmac.compare_digest(user.password_hash, candidate):
            return None
        return user

    def set_password(self, user: User, password: str) -> None:
        with self._lock:
            user.password_hash = _hash(password)

    def grant(self, username: str, role: str) -> User | None:
        with self._lock:
            user = self._users.get(username)
            if user is not None:
                user.roles.add(role)
            return user

    def new_api_key(self, user: User) -> tuple[str, str]:
        key_id = secrets.token_hex(4)
        key = "oak_" + secrets.token_urlsafe(24)
        with self._lock:
            user.api_keys[key_id] = hashlib.sha256(key.encode()).hexdigest()
        return key_id, key


def valid_totp(code: str) -> bool:
    """A stand-in for a TOTP check: six digits whose sum is even."""
    return len(code) == 6 and code.isdigit() and sum(map(int, code)) % 2 == 0  # noqa: PLR2004
