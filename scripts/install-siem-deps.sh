#!/usr/bin/env bash
# Install the SIEM stand-ins that tests/collector and examples/demo.py start on loopback.
#
# rsyslog (Debian package) is NOT installed system-wide and never started as a service: its .deb
# files and the few libraries it needs are downloaded with `apt-get download` and unpacked with
# `dpkg-deb -x` into .cache/siem-deps/root. The tests start their own rsyslogd from there with their
# own config on 127.0.0.1 (examples/_siem_stack.py finds it; RSYSLOGD=/path overrides).
#
# Idempotent: returns at once when the unpacked rsyslogd is already present. Needs Debian/Ubuntu
# with apt (run as root for `apt-get update`; a non-root user with fresh apt lists works too).
#
# Not installed here: Elasticsearch/OpenSearch. The OpenSearch exporter is not servable at the
# pinned collector release and no search-engine test distribution is fetched; the end-to-end tests
# use the rotated JSON archive as the third sink (see collector-config/README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${ROOT}/.cache/siem-deps"
PKGS=(rsyslog libestr0 libfastjson4 liblognorm5)

log() { printf '[install-siem-deps] %s\n' "$*" >&2; }

rsyslogd_ok() {
  local bin="${DEST}/root/usr/sbin/rsyslogd"
  [[ -x "${bin}" ]] || return 1
  LD_LIBRARY_PATH="${DEST}/root/usr/lib/x86_64-linux-gnu:${DEST}/root/lib/x86_64-linux-gnu:${DEST}/root/usr/lib/aarch64-linux-gnu" \
    "${bin}" -v >/dev/null 2>&1
}

if rsyslogd_ok; then
  log "rsyslogd already unpacked in ${DEST}/root"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || { log "ERROR: apt-get not found (Debian/Ubuntu needed)"; exit 3; }
start=$(date +%s)
mkdir -p "${DEST}/debs" "${DEST}/root"
cd "${DEST}/debs"
if ! apt-get download "${PKGS[@]}" >/dev/null 2>&1; then
  log "package lists missing or stale: apt-get update"
  if [[ "$(id -u)" == "0" ]]; then apt-get update -qq; else sudo apt-get update -qq; fi
  apt-get download "${PKGS[@]}"
fi
for deb in ./*.deb; do
  dpkg-deb -x "${deb}" "${DEST}/root"
done
rsyslogd_ok || { log "ERROR: unpacked rsyslogd does not run"; exit 1; }
log "rsyslog unpacked into ${DEST}/root in $(( $(date +%s) - start ))s"
