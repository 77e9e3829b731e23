"""Build the extension: plain C against the Python C API, no other library."""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "otel_audit_otlpwire",
            sources=["src/otel_audit_otlpwire.c"],
            extra_compile_args=["-std=c11", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra"],
        )
    ],
)
