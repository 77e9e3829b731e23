"""The one value walker, under its ingress and export bounds."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.attributes import _clean_attribute_value

from otel_audit._bounded import (
    CYCLE,
    EXPORT,
    INGRESS,
    TOO_DEEP,
    TOO_MANY,
    Bounds,
    bound_value,
    needs_bounding,
)


class _Leaky:
    def __str__(self) -> str:
        return "SECRET-STR"

    __repr__ = __str__


def _cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def _shaped(bounds: Bounds, value: Any) -> Any:
    """``value`` with lists as tuples where ``bounds`` gives the SDK cleaner's shape."""
    if not bounds.sdk_shape:
        return value
    if isinstance(value, list):
        return tuple(_shaped(bounds, v) for v in value)
    if isinstance(value, dict):
        return {k: _shaped(bounds, v) for k, v in value.items()}
    return value


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["d"] = {}
        node = node["d"]
    return root


class TestSharedRules:
    @pytest.mark.parametrize("bounds", [INGRESS, EXPORT], ids=["ingress", "export"])
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (2**80, str(2**80)),
            (-(2**63) - 1, str(-(2**63) - 1)),
            ("lone \udc80", "lone ?"),
            ({1, 2}, [1, 2]),
            ({7: "seven"}, {"7": "seven"}),
        ],
    )
    def test_encodable_result(self, bounds, value, expected):
        """Big ints become text, lone surrogates are replaced, sets become lists."""
        assert needs_bounding(value, bounds)
        assert _shaped(bounds, expected) == bound_value(value, bounds)

    @pytest.mark.parametrize("bounds", [INGRESS, EXPORT], ids=["ingress", "export"])
    def test_cycle_is_cut(self, bounds):
        """A self-referencing dict becomes <cycle>; the same object twice is not a cycle."""
        loop = _cycle()
        assert needs_bounding(loop, bounds)
        assert bound_value(loop, bounds) == {"name": "loop", "self": CYCLE}
        shared = {"x": 1}
        assert {"a": shared, "b": shared} == bound_value({"a": shared, "b": shared}, bounds)

    @pytest.mark.parametrize("bounds", [INGRESS, EXPORT], ids=["ingress", "export"])
    def test_depth_and_items_are_bounded(self, bounds):
        """Nesting past max_depth and items past max_items become markers."""
        out = bound_value(_deep(bounds.max_depth + 5), bounds)
        for _ in range(bounds.max_depth):
            out = out["d"]
        assert out == TOO_DEEP
        many = list(range(bounds.max_items + 3))
        assert needs_bounding(many, bounds)
        assert _shaped(bounds, [*range(bounds.max_items), TOO_MANY]) == bound_value(many, bounds)

    @pytest.mark.parametrize("bounds", [INGRESS, EXPORT], ids=["ingress", "export"])
    def test_plain_values_need_nothing(self, bounds):
        """The common shape of an attribute value is left alone."""
        value = {"user": "u-1", "n": 3, "tags": ["a", "b"], "ok": True, "none": None, "f": 1.5}
        value["max"] = 2**63 - 1
        assert not needs_bounding(value, bounds)
        assert _shaped(bounds, value) == bound_value(value, bounds)


class TestIngress:
    def test_bytes_become_text_for_redaction(self):
        """At ingress bytes are decoded (invalid UTF-8 replaced) so redaction can scan them."""
        assert needs_bounding(b"token \xff", INGRESS)
        assert bound_value(b"token \xff", INGRESS) == "token \ufffd"

    def test_objects_become_their_text(self):
        """Unknown objects are stringified; redaction runs on the text afterwards."""
        assert bound_value({"o": _Leaky()}, INGRESS) == {"o": "SECRET-STR"}

    def test_long_strings_are_cut(self):
        """Strings are bounded at ingress."""
        assert len(bound_value("x" * (INGRESS.max_string or 0) * 2, INGRESS)) == INGRESS.max_string

    @pytest.mark.parametrize(
        "value",
        [
            {"user": "u-1", "tags": ["a", ("b", {"c": [1, 2.5, None]})], "": "dropped"},
            [{"k": b"\xff"}, {3, 4}, {"nested": {"": 1, "x": ["y"]}}],
            {"big": 2**70, "obj": _Leaky(), 7: "seven"},
        ],
    )
    def test_the_sdk_cleaner_keeps_a_bounded_value_as_it_is(self, value):
        """The bridge skips the SDK's clean of bounded values: it must be a no-op on them."""
        bounded = bound_value(value, INGRESS)
        cleaned = _clean_attribute_value(bounded, None)
        assert cleaned == bounded
        assert repr(cleaned) == repr(bounded)  # tuples stay tuples, no key is dropped


class TestExport:
    def test_bytes_stay_bytes(self):
        """After redaction, bytes are kept as OTLP bytesValue, unchanged."""
        assert not needs_bounding(b"\xff\x00", EXPORT)
        assert bound_value([b"\xff\x00"], EXPORT) == [b"\xff\x00"]

    def test_objects_never_show_their_text(self):
        """An object's str/repr is data redaction never saw: only its type name is kept."""
        out = bound_value({"o": _Leaky(), _Leaky(): 1}, EXPORT)
        assert out == {"o": "<_Leaky>", "<_Leaky>": 1}
        assert "SECRET" not in repr(out)

    def test_long_strings_are_kept(self):
        """Export does not cut strings (ingress and the SDK's limits already did)."""
        text = "x" * (1 << 20)
        assert not needs_bounding(text, EXPORT)
        assert bound_value(text, EXPORT) == text
