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

unpacked_re2() {  # headers present and libre2.so resolving to a file (not a dangling link)
  [[ -f "${DEST}/root/usr/include/re2/set.h" ]] || return 1
  local lib
  for lib in "${DEST}"/root/usr/lib/*/libre2.so; do
    [[ -e "${lib}" ]] && return 0
  done
  return 1
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
  # Every step is checked by hand: `set -e` does not apply inside a function called from
  # an `if` or an `||` list, and an unchecked failure here would unpack into /root.
  local work deb
  rm -rf "${ROOT}"/.cache/native-deps.* 2>/dev/null || true  # left by an interrupted run
  mkdir -p "${ROOT}/.cache" || return 1
  work="$(mktemp -d "${ROOT}/.cache/native-deps.XXXXXX")" && [[ -d "${work}" ]] || {
    log "cannot create a directory under ${ROOT}/.cache"
    return 1
  }
  mkdir -p "${work}/debs" "${work}/root" && chmod 755 "${work}" "${work}/debs" || {
    rm -rf "${work}"
    return 1
  }
  # shellcheck disable=SC2086  # one package name per word
  (cd "${work}/debs" && apt-get download ${pkgs} >/dev/null) || {
    log "apt-get download failed for: ${pkgs//$'\n'/ }"
    rm -rf "${work}"
    return 1
  }
  for deb in "${work}"/debs/*.deb; do
    dpkg-deb -x "${deb}" "${work}/root" || {
      log "cannot unpack ${deb}"
      rm -rf "${work}"
      return 1
    }
  done
  # Replaced whole, never a mix of two downloads; only a complete download replaces it.
  rm -rf "${DEST}" && mv "${work}" "${DEST}" || { rm -rf "${work}"; return 1; }
  log "RE2 unpacked into ${DEST}/root (${pkgs//$'\n'/ })"
}

install_with() {  # $1: RE2 root ("" for the system's)
  # setuptools builds in the source tree and skips a compile whose output looks current:
  # start clean, or an extension linked against another RE2 is reused.
  rm -rf "${ROOT}/native/re2hold/build" "${ROOT}"/native/re2hold/src/*.egg-info
  RE2_PREFIX="$1" "${UV}" pip install --quiet --python "${PY}" \
    --reinstall-package otel-audit-re2hold --no-cache "${ROOT}/native/re2hold" || return 1
  "${PY}" -c "import otel_audit_re2hold" || { log "the built module does not import"; return 1; }
}

build() {
  command -v c++ >/dev/null 2>&1 || { log "no C++ compiler (c++) on PATH"; return 1; }
  if system_re2; then
    log "using the system's RE2 (libre2-dev)"
    install_with ""
    return
  fi
  if unpacked_re2; then
    log "using RE2 unpacked in ${DEST}/root"
    install_with "${DEST}/root" && return 0
    log "the unpacked RE2 did not work: downloading it again"
  fi
  fetch_re2 || return 1
  install_with "${DEST}/root"
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
