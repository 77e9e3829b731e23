"""otel_audit.testing: users capture what an action emitted, through the real processor."""

from __future__ import annotations

import logging

import otel_audit
from otel_audit.testing import capture_security_events


def login(user: str, password: str) -> bool:
    """A stand-in for application code under test."""
    ok = password == "correct-horse"
    otel_audit.security_event(
        "authentication.success" if ok else "authentication.failure",
        actor=user,
        reason=None if ok else "bad_password",
        message=f"login for {user} with password={password}",
    )
    logging.getLogger("app").warning("login page rendered")
    return ok


class TestCaptureSecurityEvents:
    def test_captures_classified_and_redacted_events(self):
        """The captured event is classified, and the password is already redacted."""
        with capture_security_events() as events:
            login("alice", "hunter2-wrong")
        (event,) = events
        assert event.name == "authentication.failure"
        assert event.outcome == "failure"
        assert event.category == "authentication"
        assert event.attributes["user.id"] == "alice"
        assert events.named("authentication.failure") == [event]
        assert not events.contains_text("hunter2-wrong")
        assert events.contains_text("alice")

    def test_ordinary_records_on_request(self):
        """include_ordinary=True also captures records that are not security events."""
        with capture_security_events(include_ordinary=True) as events:
            login("bob", "correct-horse")
        assert [e.name for e in events] == ["authentication.success", None]

    def test_leaves_no_pipeline_behind(self):
        """After the block no otel-audit pipeline is configured."""
        with capture_security_events():
            pass
        assert otel_audit.get_audit_processor() is None
