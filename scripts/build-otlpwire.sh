#!/usr/bin/env bash
# Build and install native/otlpwire (otel_audit_otlpwire) into the project venv.
#
# It is otel-audit's optional C encoder for the durable export path: one OTLP LogRecord and
# its integrity canonical form, the same bytes as otel_audit/export/_wire.py's Python
# reference. It needs only a C compiler and the Python headers (a venv has them).
#
# Optional by default: when it cannot be built the script says why, removes any stale copy
# and exits 0, and otel-audit encodes in Python. OTEL_AUDIT_REQUIRE_OTLPWIRE=1 (set by
# .ci/run where a compiler exists) makes a failed build fatal.
#
# Usage: scripts/build-otlpwire.sh [python]   (default: .venv/bin/python)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-${ROOT}/.venv/bin/python}"
[[ "${PY}" == /* ]] || PY="${PWD}/${PY}"
UV="${ROOT}/.venv/bin/uv"

log() { printf '[build-otlpwire] %s\n' "$*" >&2; }

build() {
  command -v cc >/dev/null 2>&1 || { log "no C compiler (cc) on PATH"; return 1; }
  # setuptools skips a compile whose output looks current: start clean.
  rm -rf "${ROOT}/native/otlpwire/build" "${ROOT}"/native/otlpwire/src/*.egg-info
  "${UV}" pip install --quiet --python "${PY}" --reinstall-package otel-audit-otlpwire \
    --no-cache "${ROOT}/native/otlpwire" || return 1
  "${PY}" -c "import otel_audit_otlpwire" || { log "built, but it does not import"; return 1; }
}

if build; then
  log "otel_audit_otlpwire installed"
  exit 0
fi
"${UV}" pip uninstall --quiet --python "${PY}" otel-audit-otlpwire >/dev/null 2>&1 || true
if [[ "${OTEL_AUDIT_REQUIRE_OTLPWIRE:-}" == "1" ]]; then
  log "ERROR: otel_audit_otlpwire could not be built (OTEL_AUDIT_REQUIRE_OTLPWIRE=1)"
  exit 1
fi
log "WARNING: otel_audit_otlpwire not built; the durable export path encodes in Python"
log "         (same bytes, several times the CPU). See native/otlpwire/README.md."
exit 0
