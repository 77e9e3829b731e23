"""Client address, request id and route matching: the per-request policy of both middlewares."""

from __future__ import annotations

import ipaddress
import os

import pytest

from otel_audit import AuditSettings
from otel_audit._web import ClientAddressResolver, WebAudit, forwarded_for, request_id_from

RESOLVER = ClientAddressResolver(
    [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
)


@pytest.mark.parametrize(
    ("peer", "forwarded", "xff", "expected"),
    [
        # no proxy configured for this peer: headers are ignored (spoofing from outside)
        ("203.0.113.9", None, "1.2.3.4", "203.0.113.9"),
        ("203.0.113.9", "for=1.2.3.4", None, "203.0.113.9"),
        # one trusted proxy: the entry it appended is the client
        ("10.0.0.1", None, "198.51.100.7", "198.51.100.7"),
        # the client prepended a fake entry: the walk stops at the first untrusted hop
        ("10.0.0.1", None, "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        # two trusted hops are skipped
        ("10.0.0.1", None, "198.51.100.7, 10.1.1.1", "198.51.100.7"),
        # a spoofed trusted-looking address behind an untrusted hop is not believed
        ("10.0.0.1", None, "10.9.9.9, 198.51.100.7", "198.51.100.7"),
        # everything trusted: the leftmost one
        ("10.0.0.1", None, "10.2.2.2, 10.1.1.1", "10.2.2.2"),
        # junk stops the walk at the last address a trusted proxy vouched for
        ("10.0.0.1", None, "198.51.100.7, garbage", "10.0.0.1"),
        ("10.0.0.1", None, "unknown, 10.1.1.1", "10.1.1.1"),
        # ports and brackets
        ("10.0.0.1", None, "198.51.100.7:5555", "198.51.100.7"),
        ("10.0.0.1", 'for="[2001:db8::1]:4711"', None, "2001:db8::1"),
        ("10.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43", None, "192.0.2.60"),
        ("10.0.0.1", "for=192.0.2.43, for=198.51.100.17", None, "198.51.100.17"),
        # Forwarded wins over X-Forwarded-For
        ("10.0.0.1", "for=192.0.2.60", "198.51.100.7", "192.0.2.60"),
        # an element without for= is an unknown hop
        ("10.0.0.1", "for=192.0.2.60, proto=https", None, "10.0.0.1"),
        # IPv6 trusted proxy, IPv4-mapped peer
        ("fd00::1", None, "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.0.0.1", None, "198.51.100.7", "198.51.100.7"),
        ("::ffff:203.0.113.9", None, "198.51.100.7", "203.0.113.9"),
        # no header from a trusted proxy: the proxy is the peer
        ("10.0.0.1", None, None, "10.0.0.1"),
        # no peer at all, or a non-IP peer (Unix socket)
        (None, None, "1.2.3.4", None),
        ("unix:/run/app.sock", None, "1.2.3.4", "unix:/run/app.sock"),
    ],
)
def test_resolve(peer, forwarded, xff, expected):
    """Forwarding headers count only from trusted proxies, walked right to left."""
    assert expected == RESOLVER.resolve(peer, forwarded, xff)


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("unix:/run/app.sock", "unix:/run/app.sock"),
        (None, None),
    ],
)
def test_no_trusted_proxies_ignores_headers(peer, expected):
    """Without trusted proxies the (normalised) peer is always the client."""
    resolver = ClientAddressResolver([])
    assert expected == resolver.resolve(peer, "for=1.2.3.4", "1.2.3.4")


def test_huge_header_is_ignored():
    """A forwarding header longer than the cap is not parsed."""
    assert RESOLVER.resolve("10.0.0.1", None, "1.2.3.4," * 2000) == "10.0.0.1"


def test_forwarded_for_keeps_hop_count():
    """Elements without for= still count as a hop."""
    assert forwarded_for("for=a, by=x, For=b") == ["a", "", "b"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("0af7651916cd43dd8448eb211c80319c", True),
        ("", False),
        (None, False),
        ("x" * 129, False),
        ("evil\nline", False),
        ("<script>", False),
    ],
)
def test_request_id(given, kept):
    """A well-formed incoming request id is kept; anything else is replaced."""
    result = request_id_from(given)
    assert (result == given) is kept
    assert result


@pytest.mark.parametrize(
    ("route", "path", "sensitive"),
    [
        (None, "/admin/users", True),
        (None, "/login", True),
        ("/account/<id>", "/account/42", True),
        (None, "/public/page", False),
        (None, "/administrator", False),
    ],
)
def test_sensitive_routes(route, path, sensitive):
    """Sensitive-route globs match the route template or the path."""
    assert sensitive is WebAudit(AuditSettings()).is_sensitive(route, path)


def test_generated_request_ids_are_unique_hex():
    """Generated ids are 32 hex digits and do not repeat."""
    ids = {request_id_from(None) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_worker_does_not_repeat_the_parents_ids():
    """A forked worker (gunicorn, uwsgi) draws its own key: its ids differ from the parent's."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running pytest's teardown
        os.write(write_end, request_id_from(None).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.close(write_end)
    assert len(child) == 32
    assert child != request_id_from(None)
