"""Table-driven positives and hard negatives for every tier-1 content detector."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit.redaction import Action, RedactionEngine, _catalogue
from otel_audit.redaction import _validators as v
from otel_audit.redaction._catalogue import CATALOGUE, card_numbers
from otel_audit.redaction._detectors import Detector, DetectorRegistry

# Fake secrets assembled at run time so no scanner mistakes this file for a leak.
GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS = "AKIA" + "Q3EGZ5KX7TPLM2WB"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
SLACK = "xoxb-" + "1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
GITLAB = "glpat-" + "xY9zA8bC7dE6fG5hI4jK"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
OPENAI = "sk-proj-" + "Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0UvWxYz12345678"
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
TWILIO = "SK" + "0123456789abcdef0123456789abcdef"
SENDGRID = "SG." + "abcdefghijklmnopqrstuv" + "." + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
AZURE = "AccountKey=" + "a" * 20 + "B3c4" * 16 + "==" + "Zz"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq9vZ1xUu3Ue0Yx\n"
    "q2Zf8s9k1LmNoPqRsTuVwXyZ0123456789abcdefABCDEF\n-----END RSA PRIVATE KEY-----"
)
BASIC = "Basic dXNlcjpodW50ZXIy"  # user:hunter2

POSITIVES = [
    ("github_token", f"cloning with {GH} now", GH),
    ("aws_access_key", f"aws access key id {AWS} in use", AWS),
    (
        "aws_secret_key",
        "aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("stripe_key", f"charge via {STRIPE}", STRIPE),
    ("slack_token", f"slack {SLACK}", SLACK),
    ("gitlab_token", f"token {GITLAB} used", GITLAB),
    ("google_api_key", f"maps call key {GOOGLE}", GOOGLE),
    ("openai_key", f"llm client {OPENAI}", OPENAI),
    ("npm_token", f"npm publish {NPM}", NPM),
    ("twilio_key", f"twilio {TWILIO}", TWILIO),
    ("sendgrid_key", f"mail {SENDGRID}", SENDGRID),
    ("azure_storage_key", f"DefaultEndpointsProtocol=https;AccountName=x;{AZURE};", AZURE[11:]),
    ("jwt", f"got {JWT} from idp", JWT),
    ("private_key", f"loaded key {PEM} ok", "MIIEowIBAAKCAQEA7bq9vZ1xUu3Ue0Yx"),
    ("basic_auth", f"header {BASIC}", "dXNlcjpodW50ZXIy"),
    ("bearer_token", "sent Bearer abc.DEF-123_456~xyz", "abc.DEF-123_456~xyz"),
    ("authorization_header", "Authorization: Token 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
    ("url_credentials", "connect postgres://admin:s3cr3t-pw@db.internal:5432/app", "s3cr3t-pw"),
    ("url_credentials", "redis://:hunter22@cache:6379/0", "hunter22"),
    ("credential_pair", "login failed password=hunter2 user=bob", "hunter2"),
    ("credential_pair", 'payload {"user": "bob", "passwd": "hunter2"', "hunter2"),
    ("credential_pair", "Server=db;User Id=sa;Password=Tr0ub4dor&3;", "Tr0ub4dor"),
    ("credential_pair", "GET /cb?access_token=ya1b2c3d4e5&state=x", "ya1b2c3d4e5"),
    ("credential_pair", "client_secret: 'Zm9vYmFyYmF6cXV4'", "Zm9vYmFyYmF6cXV4"),
    ("credential_pair", "pin=4821 confirmed", "4821"),
    (
        "url_query_secret",
        "https://s3/x?X-Amz-Signature=abcdef0123456789&X-Amz-Date=1",
        "abcdef0123456789",
    ),
    ("sql_password", "ALTER USER app WITH PASSWORD 'n0t-s0-s3cret'", "n0t-s0-s3cret"),
    (
        "sql_sensitive_column",
        "INSERT INTO users (name, password) VALUES ('bob', 'hunter2')",
        "hunter2",
    ),
    ("high_entropy_secret", "the shared secret is 9fK2xLmQ8vR3tZ7wPq today", "9fK2xLmQ8vR3tZ7wPq"),
    ("credit_card", "charged card 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
    ("credit_card", "amex 378282246310005 ok", "378282246310005"),
    ("iban", "refund to DE89 3704 0044 0532 0130 00 done", "DE89 3704 0044 0532 0130 00"),
    ("us_ssn", "applicant ssn on file 078-05-1120", "078-05-1120"),
    ("email", "reset link sent to alice.smith+x@example.co.uk", "alice.smith+x@example.co.uk"),
    ("phone", "customer phone: +44 20 7946 0958", "7946 0958"),
    (
        "slack_webhook",
        "post https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "XXXXXXXXXXXXXXXXXXXXXXXX",
    ),
]

NEGATIVES = [
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "deployed commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "image sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "upgraded to version 2.31.0-rc.1 (build 20240501.3)",
    "at 2024-05-01T12:34:56.789Z took 1715000000123 ns",
    "connected to 10.12.0.7:5432 and 192.168.1.20",
    "GET https://api.example.com/v1/orders/42?page=2&sort=desc",
    "password_changed=true token_expires_at=1715000000 secret_name=db",
    'Bearer realm="api", error="invalid_token"',
    "Basic authentication is disabled",
    "order 4111111111111112 (not luhn) and invoice 1234567890123",
    "user 42 disk-usage 87% task-queue sk-short",
    "card ending 1111 expires 12/27",
    "IBAN field missing: DE00 0000 0000 0000 0000 00",
    "call queue depth 17, 3 workers",
    "invalid token: expired",
    "missing required secret: DATABASE_URL",
    "password: ${DB_PASSWORD}",
    "@decorator usage and user@localhost",
    "pkg@1.2.3 installed",
    "session started for user 42",
    "shipping mapping spinner",
    "ssn 123-45-67890 is not a ssn, neither is 000-12-3456",
]


@pytest.fixture(name="engine", scope="module")
def _engine() -> RedactionEngine:
    return RedactionEngine(hmac_key=b"k" * 32, hmac_key_id="t1")


class TestPositives:
    @pytest.mark.parametrize(("rule", "text", "secret"), POSITIVES, ids=[p[0] for p in POSITIVES])
    def test_secret_is_removed(self, engine, rule, text, secret):
        """Each detector removes what it is for; the placeholder names a rule, not the secret."""
        out = engine.redact_value(text)
        assert isinstance(out, str)
        assert secret not in out
        assert "[REDACTED:" in out or "hmac:t1:" in out

    @pytest.mark.parametrize(("rule", "text", "secret"), POSITIVES, ids=[p[0] for p in POSITIVES])
    def test_rule_is_named(self, rule, text, secret):
        """The summary names the detector's rule id."""
        engine = RedactionEngine()
        _, _, counts = engine.redact_parts(text, {})
        assert rule in counts, counts


class TestNegatives:
    @pytest.mark.parametrize("text", NEGATIVES)
    def test_look_alike_survives(self, engine, text):
        """Values that merely look like secrets are left untouched."""
        assert engine.redact_value(text) == text

    @pytest.mark.parametrize("text", NEGATIVES)
    def test_look_alike_survives_without_re2(self, text):
        """The pure-re fallback agrees on the hard negatives."""
        engine = RedactionEngine(prefer_re2=False)
        assert engine.backend == "re"
        assert engine.redact_value(text) == text


class TestActions:
    def test_card_keeps_last_four_only(self, engine):
        """The card mask keeps the last four digits and nothing else."""
        assert engine.redact_value("card 4111-1111-1111-1234 ok".replace("1234", "1111")) == (
            "card [REDACTED:credit_card:****1111] ok"
        )

    def test_email_pseudonym_is_stable_and_keyed(self, engine):
        """The same email gives the same pseudonym; another key gives another one."""
        a = engine.redact_value("to bob@example.com")
        b = engine.redact_value("from BOB@example.com")
        other = RedactionEngine(hmac_key=b"z" * 32, hmac_key_id="t2").redact_value(
            "to bob@example.com"
        )
        assert str(a).split()[-1] == str(b).split()[-1]
        assert str(a).startswith("to hmac:t1:")
        assert str(other).startswith("to hmac:t2:")

    def test_missing_key_degrades_to_placeholder(self):
        """Without an HMAC key a pseudonym becomes a placeholder, never an unkeyed hash."""
        engine = RedactionEngine()
        assert engine.redact_value("to bob@example.com") == "to [REDACTED:email]"

    def test_remove_action(self):
        """A rule configured to remove cuts the span out."""
        engine = RedactionEngine(actions={"aws_access_key": Action.REMOVE})
        assert engine.redact_value(f"key {AWS}.") == "key ."

    def test_idempotent(self, engine):
        """Redacting twice changes nothing more."""
        once = engine.redact_value(f"password={GH} to bob@example.com card 4111111111111111")
        assert engine.redact_value(once) == once

    def test_ip_masking_is_a_policy_switch(self):
        """IPs survive by default and are pseudonymised with mask_client_ip."""
        text = "login from 203.0.113.9"
        assert RedactionEngine().redact_value(text) == text
        masked = RedactionEngine(mask_client_ip=True, hmac_key=b"k" * 32).redact_value(text)
        assert "203.0.113.9" not in str(masked)


class TestValidators:
    @pytest.mark.parametrize(
        ("candidate", "expected"),
        [
            ("4111111111111111", True),  # Visa test number
            ("4111 1111 1111 1111", True),
            ("4111-1111-1111-1111", True),
            ("2223000048400011", True),  # Mastercard 2-series test number
            ("378282246310005", True),  # Amex, 15 digits
            ("6011111111111117", True),  # Discover
            ("4111-1111 1111-1111", False),  # two kinds of separator
            ("4111111111111112", False),  # Luhn fails
            ("0000000000000000", False),  # passes Luhn, one repeated digit
            ("9111111111111111", False),  # no brand starts with 9
            ("37828224631000", False),  # Amex prefix, wrong length
            ("6936757501404", False),  # digit groups of a UUID
            ("4111111111111111\u0663", False),  # non-ASCII digit
        ],
    )
    def test_card_number(self, candidate, expected):
        """Brand prefix and length, one separator kind, Luhn; nothing else passes."""
        assert v.card_number(candidate) is expected


# Texts where the re2 triggers once disagreed with their finders or with the keyword
# prefilter of the pure-re fallback (a trigger narrower than its finder loses secrets).
PARITY = [
    ("password:\n  9fK2xLmQ8vR3tZ7wPq", "9fK2xLmQ8vR3tZ7wPq"),
    ("the master key is 9fK2xLmQ8vR3tZ7wPq", "9fK2xLmQ8vR3tZ7wPq"),
    ("signing_key\n= 9fK2xLmQ8vR3tZ7wPq", "9fK2xLmQ8vR3tZ7wPq"),
    ("order A4111111111111111 paid", "4111111111111111"),
    ('{"password" \t: "hunter2x"}', "hunter2x"),
    ('log: password \\":\\"hunter2x\\"', "hunter2x"),
    ("refund GB82 WEST 1234 5698 7654 32 sent", "GB82 WEST 1234 5698 7654 32"),
]


class TestFallbackParity:
    @pytest.mark.parametrize(("rule", "text", "secret"), POSITIVES, ids=[p[0] for p in POSITIVES])
    def test_pure_re_finds_the_same(self, rule, text, secret):
        """Without google-re2 the trie prefilter triggers the same detectors."""
        engine = RedactionEngine(prefer_re2=False, hmac_key=b"k" * 32)
        out = engine.redact_value(text)
        assert secret not in str(out)

    @pytest.mark.parametrize(("text", "secret"), PARITY)
    def test_both_backends_remove_it(self, text, secret):
        """re2 triggers and re keywords wake the detector alike, and it removes the value."""
        outputs = {
            RedactionEngine(prefer_re2=prefer).redact_value(text) for prefer in (True, False)
        }
        assert len(outputs) == 1, outputs
        assert secret not in str(outputs.pop())


class TestNegativesThatWakeADetector:
    @pytest.mark.parametrize(
        ("text", "rule"),
        [
            ("cache miss for key user:61 span 64032766185fed92", None),
            ("span de89370400440532013000aa ok", None),  # hex digest, IBAN-shaped start
            ("request 39142365-6402-4f23-a5df-4c3bbc128a9c", None),  # 13 digits across groups
            ("payment ref 4111111111111112 declined", "credit_card"),  # not Luhn
            ("the api key id is key-0000000000000042", "high_entropy_secret"),  # not random
        ],
    )
    def test_left_alone(self, text, rule):
        """Look-alikes are left alone, including ones whose detector runs and rejects them."""
        engine = RedactionEngine()
        if rule is not None:
            assert rule in engine._registry.triggered_rules(text)
        assert engine.redact_value(text) == text


_JOINABLE = [d for d in CATALOGUE if d.joinable]
# Digits, separators, hex letters and IBAN country letters in both cases, so that cards,
# IBANs, SSNs, UUIDs and digests (and their fragments) come up, beside newlines.
_PART_ALPHABET = "0123456789" * 4 + " -.:/=abcdefDEFGBRX\n"
_SEEDS = [
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "078-05-1120",
    "0b709858-8392-4540-a5d3-a5c42863f96b",
    "job 25828032-4739-4793-8ae2-3f1b2c9d0e7a took 4111111111111111",
]
_parts = st.lists(
    st.one_of(
        st.text(alphabet=_PART_ALPHABET, max_size=60),
        st.sampled_from(_SEEDS),
        st.builds(
            lambda a, b, c: a + b + c,
            st.text(alphabet=_PART_ALPHABET, max_size=8),
            st.sampled_from(_SEEDS),
            st.text(alphabet=_PART_ALPHABET, max_size=8),
        ),
    ),
    min_size=1,
    max_size=4,
)


class TestJoinableDetectors:
    """
    A joinable rule finds in newline-joined strings exactly what it finds in each one.

    The clean-record fast path relies on it: when only joinable rules wake, it runs them
    once over the joined strings and skips the walk if they find nothing.
    """

    def test_the_rules_that_claim_it(self) -> None:
        assert {d.rule_id for d in _JOINABLE} == {"credit_card", "iban", "us_ssn"}

    @pytest.mark.parametrize("prefer_re2", [True, False], ids=["re2", "re"])
    @pytest.mark.parametrize("detector", _JOINABLE, ids=lambda d: d.rule_id)
    @settings(max_examples=300, deadline=None)
    @given(parts=_parts)
    def test_joined_equals_the_parts(
        self, detector: Detector, prefer_re2: bool, parts: list[str]
    ) -> None:
        registry = DetectorRegistry([detector], prefer_re2=prefer_re2)
        expected: set[tuple[int, int]] = set()
        offset = 0
        for part in parts:
            expected.update((s.start + offset, s.end + offset) for s in registry.find(part))
            offset += len(part) + 1
        joined = "\n".join(parts)
        found = registry.find_if_joinable(joined)
        assert found is not None
        assert {(s.start, s.end) for s in found} == expected

    @pytest.mark.parametrize("detector", _JOINABLE, ids=lambda d: d.rule_id)
    @settings(max_examples=300, deadline=None)
    @given(text=st.text(alphabet=_PART_ALPHABET, max_size=80))
    def test_no_match_holds_a_newline(self, detector: Detector, text: str) -> None:
        registry = DetectorRegistry([detector], prefer_re2=False)
        assert all("\n" not in text[s.start : s.end] for s in registry.find(text))

    def test_a_rule_that_is_not_joinable_sends_the_record_to_the_walk(self) -> None:
        registry = DetectorRegistry(CATALOGUE)
        assert registry.find_if_joinable("nothing to see") == []
        assert registry.find_if_joinable("job 0b709858-8392-4540-a5d3-a5c42863f96b") == []
        assert registry.find_if_joinable("token=abc") is None  # credential pairs: walk


class TestCardRuleScales:
    """One long token with thousands of digit runs is expanded once, not once per run."""

    def test_a_token_is_judged_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[int] = []
        original = _catalogue._IdTokens._find

        def counting(self: object, position: int) -> None:
            calls.append(position)
            original(self, position)  # type: ignore[arg-type]

        monkeypatch.setattr(_catalogue._IdTokens, "_find", counting)
        text = ("1234567890123a" * 5000)[:65536]  # one token, ~4,700 runs of 13 digits
        assert list(_catalogue.card_numbers(text)) == []
        assert len(calls) == 1

    def test_cards_beside_ids_are_still_found(self) -> None:
        job = "0b709858-8392-4540-a5d3-a5c42863f96b"
        text = f"{job} 4111 1111 1111 1111 {job} 5500-0000-0000-0004 {job}"
        found = [text[s:e] for s, e in card_numbers(text)]
        assert found == ["4111 1111 1111 1111", "5500-0000-0000-0004"]
