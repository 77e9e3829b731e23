#!/usr/bin/env bash
# Build and install native/re2hold (otel_audit_re2hold) into the project venv.
#
# It is otel-audit's optional accelerator for the tier-1 prefilter: RE2::Set matching that
# keeps the GIL (google-re2 releases it on every call; see native/re2hold). It needs a C++
# compiler and RE2's headers and library. When the system has them (Debian's libre2-dev)
# they are used; otherwise libre2-dev and its runtime package are downloaded with
# `apt-get download` and unpacked under .cache/native-deps/root (nothing is installed
# system-wide), and the extension's run path points there.
#
# Usage: scripts/build-re2hold.sh [python]   (default: .venv/bin/python)
# RE2HOLD_UNPACKED=1 ignores a system RE2 (how a machine without libre2-dev builds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-${ROOT}/.venv/bin/python}"
[[ "${PY}" == /* ]] || PY="${PWD}/${PY}"  # the script changes directory below
DEST="${ROOT}/.cache/native-deps"

log() { printf '[build-re2hold] %s\n' "$*" >&2; }

command -v c++ >/dev/null 2>&1 || { log "ERROR: no C++ compiler (c++) on PATH"; exit 3; }

prefix=""
if [[ -z "${RE2HOLD_UNPACKED:-}" ]] && [[ -f /usr/include/re2/set.h ]] && compgen -G "/usr/lib/*/libre2.so" >/dev/null; then
  log "using the system's RE2 (libre2-dev)"
elif [[ -f "${DEST}/root/usr/include/re2/set.h" ]]; then
  prefix="${DEST}/root"
  log "using RE2 unpacked in ${prefix}"
else
  command -v apt-get >/dev/null 2>&1 || { log "ERROR: RE2 headers missing and no apt-get"; exit 3; }
  mkdir -p "${DEST}/debs" "${DEST}/root"
  pushd "${DEST}/debs" >/dev/null
  runtime_pkg() {  # libre2-9 on Debian 12, libre2-10/11 elsewhere: ask apt
    apt-cache depends libre2-dev 2>/dev/null | awk '/Depends: libre2-[0-9]/ {print $2; exit}'
  }
  pkg="$(runtime_pkg)"
  if [[ -z "${pkg}" ]] || ! apt-get download libre2-dev "${pkg}" >/dev/null 2>&1; then
    log "package lists missing or stale: apt-get update"
    if [[ "$(id -u)" == "0" ]]; then apt-get update -qq; else sudo apt-get update -qq; fi
    pkg="$(runtime_pkg)"
    apt-get download libre2-dev "${pkg}"
  fi
  for deb in ./*.deb; do
    dpkg-deb -x "${deb}" "${DEST}/root"
  done
  popd >/dev/null
  prefix="${DEST}/root"
  log "RE2 unpacked into ${prefix} (${pkg})"
fi

# setuptools builds in the source tree and skips a compile whose output looks current:
# start clean, or an extension linked against another RE2 is reused.
rm -rf "${ROOT}/native/re2hold/build" "${ROOT}"/native/re2hold/src/*.egg-info
RE2_PREFIX="${prefix}" "${ROOT}/.venv/bin/uv" pip install --quiet --python "${PY}" \
  --reinstall-package otel-audit-re2hold --no-cache "${ROOT}/native/re2hold"
"${PY}" -c "import otel_audit_re2hold" || { log "ERROR: the built module does not import"; exit 1; }
log "otel_audit_re2hold installed"
