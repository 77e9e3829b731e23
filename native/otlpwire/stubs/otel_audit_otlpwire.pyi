from typing import Any

def configure(
    unencodable: type[Exception], max_depth: int, max_items: int, skip_prefix: str, /
) -> None: ...
def encode_record(
    timestamp: int,
    severity: int,
    severity_text: str | None,
    body: Any,
    attributes: dict[str, Any] | None,
    dropped: int,
    flags: int,
    trace_id: bytes,
    span_id: bytes,
    observed: int,
    event_name: str | None,
    /,
) -> tuple[bytes, bytes]: ...
