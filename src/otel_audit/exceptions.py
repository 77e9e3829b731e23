"""Exceptions raised by otel-audit, kept apart to avoid import loops."""

from __future__ import annotations

from collections.abc import Iterable


class ConfigurationError(ValueError):
    """A setting has a value otel-audit cannot use.

    Raised at start-up, never from a logging call. The message names the variable, the
    value that was given and the values that are accepted, so that an operator can fix
    the deployment from the message alone.
    """

    def __init__(self, variable: str, value: object, accepted: str | Iterable[str]) -> None:
        self.variable = variable
        self.value = value
        self.accepted = accepted if isinstance(accepted, str) else ", ".join(accepted)
        msg = f"{variable}={value!r} is not valid; accepted values: {self.accepted}"
        super().__init__(msg)
