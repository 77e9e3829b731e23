"""Shared test helpers: real OTLP receivers on 127.0.0.1."""
