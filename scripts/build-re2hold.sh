#!/usr/bin/env bash
# Build and install native/re2hold (otel_audit_re2hold) into the project venv.
#
# It is otel-audit's optional accelerator for the tier-1 prefilter: RE2::Set matching that
# keeps the GIL (google-re2 releases it on every call; see native/re2hold). It needs a C++
# compiler and RE2's headers and library. When the system has them (Debian's libre2-dev)
# they are used; otherwise libre2-dev and the libraries it needs (RE2's runtime package and,
# for RE2 from 2023 on, Abseil) are downloaded with `apt-get download` and unpacked under
# .cache/native-deps/root (nothing is installed system-wide), and the extension's run path
# points there.
#
# Optional by default: when it cannot be built the script says why, removes any stale copy
# and exits 0, and otel-audit uses google-re2's Set with the same verdicts.
# OTEL_AUDIT_REQUIRE_RE2HOLD=1 (set by .ci/run) makes a failed build fatal.
#
# Usage: scripts/build-re2hold.sh [python]   (default: .venv/bin/python)
# RE2HOLD_UNPACKED=1 ignores a system RE2 (how a machine without libre2-dev builds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-${ROOT}/.venv/bin/python}"
[[ "${PY}" == /* ]] || PY="${PWD}/${PY}"
DEST="${ROOT}/.cache/native-deps"
UV="${ROOT}/.venv/bin/uv"

log() { printf '[build-re2hold] %s\n' "$*" >&2; }

system_re2() {
  [[ -z "${RE2HOLD_UNPACKED:-}" ]] && [[ -f /usr/include/re2/set.h ]] &&
    compgen -G "/usr/lib/*/libre2.so" >/dev/null
}

unpacked_re2() {  # headers and the linkable library both present
  [[ -f "${DEST}/root/usr/include/re2/set.h" ]] &&
    compgen -G "${DEST}/root/usr/lib/*/libre2.so" >/dev/null
}

closure() {  # libre2-dev and the RE2/Abseil packages it pulls in, one per line
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances libre2-dev 2>/dev/null |
    grep -E '^(libre2|libabsl)' | sort -u || true
}

fetch_re2() {
  command -v apt-get >/dev/null 2>&1 || { log "RE2 headers missing and no apt-get"; return 1; }
  local pkgs
  pkgs="$(closure)"
  if [[ -z "${pkgs}" ]]; then
    log "package lists missing or stale: apt-get update"
    if [[ "$(id -u)" == "0" ]]; then
      apt-get update -qq || return 1
    else
      sudo -n apt-get update -qq || { log "cannot run apt-get update (not root, no sudo)"; return 1; }
    fi
    pkgs="$(closure)"
    [[ -n "${pkgs}" ]] || { log "apt knows no libre2-dev"; return 1; }
  fi
  local work
  mkdir -p "${ROOT}/.cache"
  work="$(mktemp -d "${ROOT}/.cache/native-deps.XXXXXX")"
  mkdir -p "${work}/debs" "${work}/root"
  chmod 755 "${work}" "${work}/debs"  # apt-get download runs as _apt where it can
  # shellcheck disable=SC2086  # one package name per word
  (cd "${work}/debs" && apt-get download ${pkgs} >/dev/null) || {
    log "apt-get download failed for: ${pkgs//$'\n'/ }"
    rm -rf "${work}"
    return 1
  }
  local deb
  for deb in "${work}"/debs/*.deb; do
    dpkg-deb -x "${deb}" "${work}/root"
  done
  rm -rf "${DEST}"  # replaced whole: never a mix of two downloads
  mv "${work}" "${DEST}"
  log "RE2 unpacked into ${DEST}/root (${pkgs//$'\n'/ })"
}

build() {
  command -v c++ >/dev/null 2>&1 || { log "no C++ compiler (c++) on PATH"; return 1; }
  local prefix=""
  if system_re2; then
    log "using the system's RE2 (libre2-dev)"
  else
    if unpacked_re2; then
      log "using RE2 unpacked in ${DEST}/root"
    else
      fetch_re2 || return 1
    fi
    prefix="${DEST}/root"
  fi
  # setuptools builds in the source tree and skips a compile whose output looks current:
  # start clean, or an extension linked against another RE2 is reused.
  rm -rf "${ROOT}/native/re2hold/build" "${ROOT}"/native/re2hold/src/*.egg-info
  RE2_PREFIX="${prefix}" "${UV}" pip install --quiet --python "${PY}" \
    --reinstall-package otel-audit-re2hold --no-cache "${ROOT}/native/re2hold" || return 1
  "${PY}" -c "import otel_audit_re2hold" || { log "the built module does not import"; return 1; }
}

if build; then
  log "otel_audit_re2hold installed"
  exit 0
fi
# A copy from an earlier build may be broken now (its RE2 gone): never leave it installed.
"${UV}" pip uninstall --quiet --python "${PY}" otel-audit-re2hold >/dev/null 2>&1 || true
if [[ "${OTEL_AUDIT_REQUIRE_RE2HOLD:-}" == "1" ]]; then
  log "ERROR: otel_audit_re2hold could not be built (OTEL_AUDIT_REQUIRE_RE2HOLD=1)"
  exit 1
fi
log "WARNING: otel_audit_re2hold not built; tier 1 uses google-re2's Set (same verdicts,"
log "         but it gives up the GIL on every scan). See native/re2hold/README.md."
exit 0
