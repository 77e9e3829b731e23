"""
The tier-1 content catalogue: provider secret formats, credentials in text, validated PII.

Provider formats follow gitleaks' ``config/gitleaks.toml`` (MIT; rule ids given beside
each entry) and Yelp detect-secrets' plugins (Apache-2.0), restated here rather than
copied, with keywords chosen so that the shared prefilter rarely fires on clean text.
Rule ids are snake_case and appear in placeholders (``[REDACTED:aws_access_key]``) and in
the per-record summary.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator
from typing import Final

from otel_audit.redaction import _validators as v
from otel_audit.redaction._actions import Action
from otel_audit.redaction._detectors import STRICT, Detector, Validator
from otel_audit.redaction._keys import KeyClassifier

# A token ends at a character that cannot be part of it (gitleaks' "(?:[\x60'\"\s;]|$)").
_END = r"(?![A-Za-z0-9_\-])"
_B64URL = r"[A-Za-z0-9_\-]"


# --- credentials in free text: key/value pairs, headers, URLs, SQL ------------------------

# A sensitive key ends with one of these words (``client_secret`` ends with ``secret``).
_PAIR_WORDS: Final = (
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "secret",
    "credential",
    "credentials",
    "creds",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "api.key",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private_key",
    "private-key",
    "secretkey",
    "secret_key",
    "secret-key",
    "accountkey",
    "signingkey",
    "signing_key",
    "encryptionkey",
    "encryption_key",
    "sessionid",
    "session_id",
    "session-id",
    "session",
    "sessid",
    "cookie",
    "authorization",
)
# Short words count only as a whole word or after a separator (``spin:`` is not ``pin``).
_PAIR_SHORT: Final = ("pwd", "jwt", "pin", "otp", "cvv", "cvv2", "cvc", "cvc2", "ssn", "sid")
_ALL_PAIR_WORDS: Final = _PAIR_WORDS + _PAIR_SHORT
_SEPARATOR: Final = re.compile(r"[:=]")
_PAIR_VALUE: Final = re.compile(
    r"""[=>]?[ \t]{0,3}(?:(?P<tpl>\$\{[^}\s]{1,256}\})|"""
    r"""\\"(?P<eq>(?:[^"\\\n]|\\[^"\n]){0,1024})\\"|"""
    r""""(?P<dq>(?:[^"\\\n]|\\.){0,1024})"|"""
    r"""'(?P<sq>(?:[^'\\\n]|\\.){0,1024})'|"""
    r"""(?P<uv>[^\s"',;&)\]}<>\\]{1,1024}))"""
)
_KEY_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_SKIP_BACK: Final = frozenset(" \t\"'\\]")
# Words whose value is a secret whatever it looks like; the rest need some randomness.
_ALWAYS_SECRET: Final = (
    "passw",
    "passphrase",
    "passcode",
    "pwd",
    "pin",
    "otp",
    "cvv",
    "cvc",
    "ssn",
    "secret",
    "credential",
    "creds",
)


def _pair_value_ok(word: str, value: str) -> bool:
    if v.non_value(value):
        return False
    if word.startswith(_ALWAYS_SECRET) or word.endswith(("secret", "credential", "credentials")):
        return not (v.env_name(value) and not word.startswith("pass"))
    if v.env_name(value):
        return False
    # token/session/cookie/key: a short plain word is prose ("token: expired"), not a value.
    return len(value) >= 6 and (  # noqa: PLR2004 - shortest plausible token
        any(not c.isalpha() for c in value) or len(value) >= 16  # noqa: PLR2004
    )


def _key_before(lowered: str, separator: int) -> str | None:
    """The sensitive word that the key ending just before ``separator`` ends with."""
    end = separator
    while end > 0 and separator - end < 4 and lowered[end - 1] in _SKIP_BACK:  # noqa: PLR2004
        end -= 1
    start = end
    while start > 0 and end - start < 64 and lowered[start - 1] in _KEY_CHARS:  # noqa: PLR2004
        start -= 1
    key = lowered[start:end]
    if not key.endswith(_ALL_PAIR_WORDS):
        return None
    for word in _PAIR_SHORT:
        if key.endswith(word) and not key.endswith(_PAIR_WORDS):
            before = len(key) - len(word)
            if before and key[before - 1] not in "_.-":
                return None
    return key


def credential_pairs(text: str) -> Iterator[tuple[int, int]]:
    """
    ``password=…``, ``"api_key": "…"``, ``secret: …``, ``?access_token=…`` in free text.

    Found separator-first: lines hold few ``=``/``:``, and for each one the key just
    before it is checked with one ``str.endswith`` over the word list. (A regex with a
    ``[a-z.-]{0,40}?`` key prefix cost sre about 20 µs a line.) A key followed by more
    identifier characters (``password_changed=``, ``token_expires_at:``) is metadata and
    does not end with a sensitive word.
    """
    lowered = text.lower()
    if len(lowered) != len(text):  # a few non-ASCII letters change length when lowered
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    for separator in _SEPARATOR.finditer(text):
        key = _key_before(lowered, separator.start())
        if key is None:
            continue
        value = _PAIR_VALUE.match(text, separator.end())
        if value is None:
            continue
        for group in ("eq", "dq", "sq", "uv"):
            start = value.start(group)
            if start >= 0:
                end = value.end(group)
                if _pair_value_ok(key, text[start:end]):
                    yield start, end
                break


_SECRET_WORDS: Final = ("passw", "passphrase", "secret", "token", "credential", "key")
# "key" alone is too common ("cache key"): it counts right after one of these qualifiers.
_KEY_QUALIFIERS: Final = ("api", "access", "private", "secret", "signing", "encryption", "master")
_KEY_SEPARATORS: Final = ("", " ", "_", "-", ".")
_QUALIFIED_KEYS: Final = tuple(f"{q}{sep}key" for q in _KEY_QUALIFIERS for sep in _KEY_SEPARATORS)
_CANDIDATE: Final = re.compile(r"(?<![A-Za-z0-9+/_.\-])[A-Za-z0-9+/_.\-]{16,256}={0,2}")
_WINDOW: Final = 40


def entropy_near_keyword(text: str) -> Iterator[tuple[int, int]]:
    """
    Random-looking tokens within 40 characters after a secret word ("the key is 9fK…").

    Entropy is only consulted near a keyword, and identifiers (hex digests, trace ids,
    UUIDs, versions) are excluded by shape, so ids elsewhere in a line are never touched.
    """
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    ends: set[int] = set()
    for word in _SECRET_WORDS:
        found = lowered.find(word)
        while found >= 0:
            end = found + len(word)
            qualified = word != "key" or lowered.endswith(_QUALIFIED_KEYS, 0, end)
            while end < len(lowered) and lowered[end].isalpha():
                end += 1  # password, passwords, tokens
            # An identifier that merely starts with the word (token_expires_at) is metadata.
            followed = end < len(lowered) and (lowered[end] == "_" or lowered[end].isdigit())
            if not followed and qualified:
                ends.add(end)
            found = lowered.find(word, found + 1)
    for end in sorted(ends):
        window_end = min(len(text), end + _WINDOW)
        for candidate in _CANDIDATE.finditer(text, end, window_end):
            token = candidate.group(0).strip(".-_=")
            if v.high_entropy_secret(token):
                yield candidate.start(), candidate.end()


def high_entropy_anywhere(text: str) -> Iterator[tuple[int, int]]:
    """Strict level: long random tokens anywhere (still never ids or digests)."""
    for candidate in _CANDIDATE.finditer(text):
        token = candidate.group(0)
        if len(token) >= 24 and v.high_entropy_secret(token, min_entropy=4.0):  # noqa: PLR2004
            yield candidate.start(), candidate.end()


# Runs of at least 13 digits (the shortest card) with single space or dash separators.
_DIGIT_RUN: Final = re.compile(r"(?<![\d.])\d(?:[ \-]?\d){12,}(?!\d|\.\d)")
# A token of 32 or more hex digits and dashes (UUIDs, digests, trace ids): digits inside
# it that happen to pass Luhn ("…b8b4-4824-8673-3237dea1…") are part of an identifier,
# which must survive. Shorter tokens ("A4111111111111111", an order number) are checked.
_ID_CHARS: Final = frozenset("0123456789abcdefABCDEF-")
_TOKEN_CHARS: Final = frozenset(string.ascii_letters + string.digits + "-")
_ID_MIN: Final = 32


class _IdTokens:
    """
    Whether a span of one text lies in a hex identifier token (see ``_ID_CHARS``).

    Each token is found and judged once, however many digit runs and windows it holds:
    a 64 KiB value of digits and letters is one token with thousands of runs, and
    expanding the token again for each of them made the card rule quadratic.
    """

    __slots__ = ("_left", "_right", "_text", "_verdict")

    def __init__(self, text: str) -> None:
        self._text = text
        self._left = self._right = -1
        self._verdict = False

    def holds(self, start: int, end: int) -> bool:
        """True when text[start:end] lies inside one identifier token."""
        if not self._left <= start < self._right:
            self._find(start)
        return self._verdict and end <= self._right

    def _find(self, position: int) -> None:
        text = self._text
        left = right = position
        if text[position] in _TOKEN_CHARS:
            while left > 0 and text[left - 1] in _TOKEN_CHARS:
                left -= 1
            while right < len(text) and text[right] in _TOKEN_CHARS:
                right += 1
        token = text[left:right]
        self._left, self._right = left, right
        self._verdict = (
            len(token) >= _ID_MIN
            and _ID_CHARS.issuperset(token)
            and not token.replace("-", "").isdigit()  # all digits: cards glued with dashes
        )


_DIGITS: Final = re.compile(r"\d+")
_CARD_MIN, _CARD_MAX = 13, 19


def card_numbers(text: str) -> Iterator[tuple[int, int]]:
    """
    Card numbers, also when other digits sit next to them ("0 4111 1111 1111 1111").

    A greedy regex would take the neighbouring digits into the candidate, fail Luhn and
    let the card through; instead every contiguous window of digit groups is tried.
    """
    ids = _IdTokens(text)
    for run in _DIGIT_RUN.finditer(text):
        if ids.holds(run.start(), run.end()):
            continue  # every candidate in it lies in the same id token (UUIDs, digests)
        groups = [m.span() for m in _DIGITS.finditer(text, run.start(), run.end())]
        index = 0
        while index < len(groups):
            found = False
            digits = 0
            for last in range(index, len(groups)):
                digits += groups[last][1] - groups[last][0]
                if digits > _CARD_MAX:
                    break
                start, end = groups[index][0], groups[last][1]
                if (
                    digits >= _CARD_MIN
                    and v.card_number(text[start:end])
                    and not ids.holds(start, end)
                ):
                    yield start, end
                    index, found = last + 1, True
                    break
            if not found:
                index += 1


_INSERT: Final = re.compile(
    r"(?is)\binsert\s+into\s+[\w.\"`\[\]]+\s*\(([^()]{1,2000})\)\s*values\s*\("
)
_SQL_VALUE: Final = re.compile(r"\s*('(?:[^']|'')*'|[^,()']+)\s*(,|\))")
_SQL_COLUMNS: Final = KeyClassifier(strict=False, mask_client_ip=False)


def sql_insert_values(text: str) -> Iterator[tuple[int, int]]:
    """Values of sensitive columns in ``INSERT INTO t (…, password, …) VALUES (…)``."""
    for insert in _INSERT.finditer(text):
        columns = [c.strip(' "`[]\n\t') for c in insert.group(1).split(",")]
        position = insert.end()
        for column in columns:
            value = _SQL_VALUE.match(text, position)
            if value is None:
                break
            if _SQL_COLUMNS.classify(column) is not None:
                start, end = value.span(1)
                if text[start] == "'":
                    start, end = start + 1, end - 1
                if end > start:
                    yield start, end
            position = value.end()
            if value.group(2) == ")":
                break


# Countries in SWIFT's IBAN registry plus the IBAN-format countries of the CFA franc zone.
# Any two letters would do for mod 97, but then every hex digest ("ab12…") wakes the rule.
_IBAN_COUNTRIES: Final = (  # noqa: SIM905 - a table of codes reads best as one string
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO DZ EE "
    "EG ES FI FK FO FR GA GB GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM KW KZ LB LC "
    "LI LT LU LV LY MA MC MD ME MG MK ML MN MR MT MU MZ NE NI NL NO OM PK PL PS PT QA RO RS RU "
    "SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE"
).split()
_IBAN_CC: Final = "(?:" + "|".join(_IBAN_COUNTRIES) + ")"


def _group_ok(validator: Callable[[str], bool], group: int | str = 1) -> Validator:
    return lambda match: validator(match.group(group))


CATALOGUE: Final[tuple[Detector, ...]] = (
    # --- private keys and tokens with a fixed provider prefix (gitleaks rule ids) ---------
    Detector(
        "private_key",  # gitleaks private-key; detect-secrets PrivateKeyDetector
        ("-----begin",),
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|\Z)",
        priority=90,
    ),
    Detector(
        "aws_access_key",  # gitleaks aws-access-token; detect-secrets AWSKeyDetector
        ("akia", "asia", "abia", "acca", "a3t"),
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
        priority=80,
    ),
    Detector(
        "aws_secret_key",  # detect-secrets AWSKeyDetector (keyword + 40 base64 chars)
        ("aws",),
        r"(?i)aws.{0,20}?(?:secret|key|pwd|password|pass|token).{0,20}?['\"=:\s]"
        r"([0-9a-zA-Z/+]{40})(?![0-9a-zA-Z/+])",
        groups=(1,),
        validate=_group_ok(lambda s: not v.looks_like_identifier(s)),
        priority=80,
    ),
    Detector(
        "github_token",  # gitleaks github-pat/-oauth/-app-token/-refresh-token
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        rf"\bgh[pousr]_[0-9a-zA-Z]{{36,255}}{_END}",
        priority=80,
    ),
    Detector(
        "github_token",  # gitleaks github-fine-grained-pat
        ("github_pat_",),
        r"\bgithub_pat_\w{82}",
        priority=80,
    ),
    Detector(
        "gitlab_token",  # gitleaks gitlab-pat, -deploy-token, -runner-… , -ptt, -rrt …
        (
            "glpat-",
            "gldt-",
            "glrt-",
            "glptt-",
            "glrtr-",
            "glft-",
            "glimt-",
            "glsoat-",
            "glcbt-",
            "glagent-",
            "gloas-",
            "glffct-",
        ),
        rf"\bgl(?:pat|dt|rt|ptt|rtr|ft|imt|soat|cbt|agent|oas|ffct)-[0-9a-zA-Z_\-.]{{20,300}}{_END}",
        priority=80,
    ),
    Detector(
        "slack_token",  # gitleaks slack-bot-token, -user-token, -app-token, -legacy-*
        ("xox", "xapp-"),
        r"\b(?:xox[abposre]-[0-9A-Za-z\-]{10,}|xoxe\.xox[bp]-\d-[A-Za-z0-9]{100,}"
        r"|xapp-\d-[A-Za-z0-9]+-\d+-[A-Za-z0-9]+)",
        priority=80,
    ),
    Detector(
        "slack_webhook",  # gitleaks slack-webhook-url
        ("hooks.slack.com",),
        r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{20,}",
        priority=80,
    ),
    Detector(
        "stripe_key",  # gitleaks stripe-access-token (secret and restricted keys, webhooks)
        ("sk_live", "sk_test", "sk_prod", "rk_live", "rk_test", "rk_prod", "whsec_"),
        r"\b(?:(?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99}|whsec_[a-zA-Z0-9]{24,64})" + _END,
        priority=80,
    ),
    Detector(
        "google_api_key",  # gitleaks gcp-api-key
        ("aiza",),
        rf"\bAIza[\w\-]{{35}}{_END}",
        priority=80,
    ),
    Detector(
        "google_oauth",  # client secrets (GOCSPX-) and access tokens (ya29.)
        ("gocspx-", "ya29."),
        rf"\b(?:GOCSPX-[\w\-]{{28}}|ya29\.[\w\-]{{20,}}){_END}",
        priority=80,
    ),
    Detector(
        "openai_key",  # gitleaks openai-api-key (T3BlbkFJ marker) + sk-proj-/sk-svcacct-
        ("t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"),
        rf"\bsk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{{20,}}{_END}",
        priority=80,
    ),
    Detector(
        "anthropic_key",  # gitleaks anthropic-api-key / anthropic-admin-api-key
        ("sk-ant-",),
        rf"\bsk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{{80,}}{_END}",
        priority=80,
    ),
    Detector(
        "api_key_sk",  # OpenAI-style legacy "sk-" + 32..64 alnum, without a marker
        ("sk-",),
        rf"\bsk-[A-Za-z0-9]{{32,64}}{_END}",
        validate=lambda m: not v.looks_like_identifier(m.group(0)[3:]),
        priority=70,
    ),
    Detector(
        "npm_token",  # gitleaks npm-access-token; detect-secrets NpmDetector
        ("npm_",),
        rf"\bnpm_[A-Za-z0-9]{{36}}{_END}",
        priority=80,
    ),
    Detector(
        "pypi_token",  # gitleaks pypi-upload-token
        ("pypi-ageichlwas5vcmc",),
        r"pypi-AgEIcHlwaS5vcmc[\w\-]{50,1000}",
        priority=80,
    ),
    Detector(
        "twilio_key",  # gitleaks twilio-api-key; detect-secrets TwilioKeyDetector
        ("sk",),
        r"\bSK[0-9a-fA-F]{32}\b",
        priority=80,
        re2_triggers=("(?:^|[^0-9a-z])sk[0-9a-f]{32}",),
    ),
    Detector(
        "sendgrid_key",  # gitleaks sendgrid-api-token
        ("sg.",),
        rf"\bSG\.{_B64URL}{{22}}\.{_B64URL}{{43}}{_END}",
        priority=80,
    ),
    Detector(
        "azure_storage_key",  # detect-secrets AzureStorageKeyDetector
        ("accountkey", "sharedaccesskey"),
        r"(?i)(?:AccountKey|SharedAccessKey)\s*=\s*([A-Za-z0-9+/=]{40,88})",
        groups=(1,),
        priority=80,
    ),
    Detector(
        "azure_sas_signature",  # SAS tokens: sv=…&sig=<base64 HMAC>
        ("sig=",),
        r"(?i)[?&;]sig=([A-Za-z0-9%+/=]{20,})",
        groups=(1,),
        priority=80,
    ),
    Detector(
        "vendor_token",  # gitleaks: databricks, digitalocean, shopify, huggingface, linear,
        # postman, pulumi, doppler, age, square, hashicorp-tf
        (
            "dapi",
            "dop_v1_",
            "doo_v1_",
            "dor_v1_",
            "shpat_",
            "shpca_",
            "shppa_",
            "shpss_",
            "hf_",
            "lin_api_",
            "pmak-",
            "pul-",
            "dp.pt.",
            "age-secret-key-1",
            "sq0atp-",
            "sq0csp-",
            "atlasv1",
        ),
        r"\b(?:dapi[a-f0-9]{32}(?:-\d)?|do[opr]_v1_[a-f0-9]{64}|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"
        r"|hf_[A-Za-z]{34}|lin_api_[A-Za-z0-9]{40}|PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}"
        r"|pul-[a-f0-9]{40}|dp\.pt\.[A-Za-z0-9]{43}|AGE-SECRET-KEY-1[0-9A-Z]{58}"
        r"|sq0(?:atp|csp)-[0-9A-Za-z\-_]{22,43}|[a-z0-9]{14}\.atlasv1\.[a-z0-9\-_=]{60,70})" + _END,
        priority=80,
    ),
    Detector(
        "jwt",  # gitleaks jwt; detect-secrets JwtTokenDetector (header must be JSON)
        ("eyj",),
        rf"\beyJ{_B64URL}{{8,}}(?:\.{_B64URL}*){{1,4}}",
        validate=lambda m: v.jwt_header(m.group(0)),
        priority=85,
    ),
    # --- credentials in protocols -----------------------------------------------------------
    Detector(
        "authorization_header",  # the whole credential after "Authorization:", any scheme
        ("authorization",),
        r"(?i)\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?([^\r\n\"']{1,2048})",
        groups=(1,),
        validate=lambda m: not v.non_value(m.group(1)),
        priority=75,
        re2_triggers=("authorization[\\\"']?[ \\t]*[:=]",),
    ),
    Detector(
        "bearer_token",  # "Bearer <token>", but not "Bearer realm=…" challenges
        ("bearer",),
        r"(?i)\bbearer\s+(?![A-Za-z_]+=)([A-Za-z0-9\-._~+/]{8,}=*)",
        groups=(1,),
        validate=lambda m: not v.non_value(m.group(1)),
        priority=75,
        re2_triggers=("bearer\\s+[a-z0-9\\-._~+/]{8}",),
    ),
    Detector(
        "basic_auth",  # "Basic <base64 user:password>"
        ("basic",),
        r"(?i)\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])",
        groups=(1,),
        validate=lambda m: v.basic_credentials(m.group(1)),
        priority=75,
        re2_triggers=("basic\\s+[a-z0-9+/]{6}",),
    ),
    Detector(
        "cookie_header",  # "Cookie: a=b; c=d" and "Set-Cookie: …": the whole value
        ("cookie",),
        r"(?i)\b(?:set-)?cookie[\"']?[ \t]*:[ \t]*[\"']?([^\r\n\"']{1,4096})",
        groups=(1,),
        validate=lambda m: not v.non_value(m.group(1)),
        priority=70,
        re2_triggers=("cookie[\\\"']?[ \\t]*:",),
    ),
    Detector(
        "url_credentials",  # detect-secrets BasicAuthDetector: scheme://user:password@host
        ("://",),
        r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^\s/?#@:'\"]*:([^\s/'\"]+)@",
        groups=(1,),
        validate=lambda m: not v.non_value(m.group(1)),
        priority=85,
        re2_triggers=("://[^\\s/?#@]*:[^\\s/]*@",),
    ),
    Detector(
        "url_query_secret",  # signed-URL and OAuth parameters that the pair words miss
        ("sig=", "signature=", "x-amz-", "x-goog-", "code=", "key=", "auth=", "pass=", "pw="),
        r"(?i)[?&;](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature"
        r"|x-goog-credential|signature|sig|code|key|apikey|auth|pass|pw)=([^&#\s\"'<>]{4,})",
        groups=(1,),
        priority=60,
    ),
    Detector(
        "credential_pair",  # password=…, "secret": "…", token: … in text, JSON, URLs, SQL
        _ALL_PAIR_WORDS,  # the finder only reports keys ending in one of them
        finder=credential_pairs,
        priority=65,
        re2_triggers=(
            (
                "(?:passw(?:or)?d|passphrase|passcode|secret|credentials?|creds|token|key"
                "|session(?:[_.\\-]?id)?|sessid|cookie|authorization|pwd|jwt|pin|otp|cvv2?|cvc2?"
                "|ssn|sid)[\"'\\]\\\\ \\t]{0,4}[:=]"
            ),
        ),
    ),
    Detector(
        "sql_password",  # CREATE/ALTER USER … IDENTIFIED BY '…' / WITH PASSWORD '…'
        ("identified by", "password '", 'password "'),
        r"(?i)\b(?:identified\s+by|password)\s+(?:'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\")",
        groups=(1, 2),
        priority=70,
    ),
    Detector(
        "sql_sensitive_column",  # INSERT … (email, password) VALUES ('a@b', 'hunter2')
        ("insert",),
        finder=sql_insert_values,
        priority=60,
    ),
    Detector(
        "high_entropy_secret",  # entropy only near a secret word; never ids or digests
        ("passw", "passphrase", "secret", "token", "credential", *_QUALIFIED_KEYS),
        finder=entropy_near_keyword,
        priority=40,
        # The finder's own conditions: a token of 16+ within 40 characters (any, newlines
        # included) after the word and its trailing letters.
        re2_triggers=(
            (
                "(?:passw|passphrase|secret|token|credential"
                "|(?:api|access|private|secret|signing|encryption|master)[ _.\\-]?key)"
                "[a-z]*(?s:.){0,40}[a-z0-9+/_.\\-]{16}"
            ),
        ),
    ),
    # --- checksum-validated and contextual PII ---------------------------------------------
    Detector(
        "credit_card",  # Luhn + brand prefix/length (Presidio CreditCardRecognizer idea)
        ("re:\\d(?:[ \\-]?\\d){12}",),
        finder=card_numbers,
        action=Action.MASK,
        priority=60,
        re2_triggers=("(?:^|[^0-9.])\\d(?:[ \\-]?\\d){12}",),
        joinable=True,
    ),
    Detector(
        "iban",  # ISO 13616 mod 97, registered country codes only
        (f"re:(?<![0-9a-z]){_IBAN_CC.lower()}\\d\\d(?: ?[a-z0-9]){{11}}",),
        rf"\b{_IBAN_CC}\d{{2}}(?: ?[A-Z0-9]){{11,30}}\b",
        validate=lambda m: v.iban(m.group(0)),
        priority=60,
        re2_triggers=(f"(?:^|[^0-9a-z]){_IBAN_CC.lower()}\\d\\d(?: ?[a-z0-9]){{11}}",),
        joinable=True,
    ),
    Detector(
        "us_ssn",  # dashed form only; bare nine digits need the "ssn" key word (pairs)
        ("re:\\d{3}-\\d\\d-\\d{4}",),
        r"(?<![\d\-])\d{3}-\d{2}-\d{4}(?![\d\-])",
        validate=lambda m: v.ssn(m.group(0)),
        priority=60,
        joinable=True,
    ),
    Detector(
        "email",  # pseudonymised: investigators join on the actor
        ("@",),
        r"(?<![\w.+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b",
        validate=v.email_not_userinfo,
        action=Action.PSEUDONYMIZE,
        priority=55,
        re2_triggers=("[a-z0-9]@[a-z0-9\\-]+\\.[a-z]",),
    ),
    Detector(
        "phone",  # only with a phone word in the same text
        ("phone", "tel:", "tel.", "mobile", "cell", "sms", "fax", "whatsapp", "call"),
        r"(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]?\d{2,4}){1,3}"
        r"(?![\w])",
        validate=lambda m: v.phone(m.group(0)),
        priority=50,
    ),
    # --- strict level only ------------------------------------------------------------------
    Detector(
        "phone",  # international numbers anywhere
        ("+",),
        r"(?<![\w+])\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]?\d{2,4}){1,3}(?![\w])",
        validate=lambda m: v.phone(m.group(0)),
        level=STRICT,
        priority=50,
    ),
    Detector(
        "high_entropy_secret",
        ("re:[a-z0-9+/=_\\-]{24}",),
        finder=high_entropy_anywhere,
        level=STRICT,
        priority=30,
    ),
)

IP_DETECTOR: Final = Detector(
    "ip_address",  # only when mask_client_ip is on: security logs need source addresses
    ("re:\\d\\.\\d",),
    r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])",
    validate=lambda m: v.ipv4(m.group(0)),
    action=Action.PSEUDONYMIZE,
    priority=45,
)
