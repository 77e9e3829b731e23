#!/usr/bin/env bash
# Build the `otelcol-audit` collector distribution from collector-config/builder-config.yaml.
#
# - Installs the OpenTelemetry Collector Builder (OCB) with `go install`, pinned to the same release
#   as the components in the manifest, into a project-local GOBIN (.cache/otelcol/bin).
# - Builds once into .cache/otelcol/dist/otelcol-audit, with project-local Go module and build caches
#   (.cache/otelcol/gomod, .cache/otelcol/gocache) so repeated builds are incremental.
# - Skips everything when the binary was built from the current manifest (stamp file holding the
#   manifest's sha256) and is newer than the manifest. FORCE=1 rebuilds.
# - Uses at most 2 CPU cores (OTELCOL_BUILD_JOBS to change).
#
# Prints the path of the binary as its last line of stdout. Needs Go >= 1.24 and network access to
# the Go module proxy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="${ROOT}/collector-config/builder-config.yaml"
CACHE="${ROOT}/.cache/otelcol"
BIN="${CACHE}/dist/otelcol-audit"
STAMP="${CACHE}/otelcol-audit.stamp"
JOBS="${OTELCOL_BUILD_JOBS:-2}"

log() { printf '[build-collector] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "ERROR: 'go' not found on PATH (need Go >= 1.24)"; exit 3; }

# The builder release must equal the component release in the manifest: take it from the manifest.
VERSION="$(sed -n 's|^ *- gomod: go.opentelemetry.io/collector/receiver/otlpreceiver \(v[0-9][0-9.]*\).*|\1|p' "${MANIFEST}")"
[[ -n "${VERSION}" ]] || { log "ERROR: cannot read the release from ${MANIFEST}"; exit 2; }

mkdir -p "${CACHE}"
# Serialise concurrent callers (make + pytest fixture): the second one waits, then finds the stamp.
exec 9>"${CACHE}/build.lock"
flock 9

want="$(sha256sum "${MANIFEST}" | cut -d' ' -f1) ${VERSION}"
if [[ "${FORCE:-0}" != "1" && -x "${BIN}" && -f "${STAMP}" && "${BIN}" -nt "${MANIFEST}" \
      && "$(cat "${STAMP}")" == "${want}" ]]; then
  log "up to date (${VERSION}), skipping build: ${BIN}"
  echo "${BIN}"
  exit 0
fi

start=$(date +%s)
export GOBIN="${CACHE}/bin"
export GOMODCACHE="${CACHE}/gomod"
export GOCACHE="${CACHE}/gocache"
export GOMAXPROCS="${JOBS}"
export GOFLAGS="${GOFLAGS:-} -p=${JOBS}"
export CGO_ENABLED=0
# The module proxy used here serves contrib modules whose checksum-database entries are not all
# reachable; skip the checksum database for the OpenTelemetry module paths only (everything else is
# still verified). Override with GONOSUMDB if your proxy serves them.
export GONOSUMDB="${GONOSUMDB:-github.com/open-telemetry/opentelemetry-collector-contrib,go.opentelemetry.io/collector}"

if [[ ! -x "${GOBIN}/builder" ]] || ! "${GOBIN}/builder" version 2>/dev/null | grep -q "${VERSION}"; then
  log "installing go.opentelemetry.io/collector/cmd/builder@${VERSION} into ${GOBIN}"
  go install -trimpath -ldflags="-s -w" "go.opentelemetry.io/collector/cmd/builder@${VERSION}"
fi
log "builder ready after $(( $(date +%s) - start ))s"

cd "${ROOT}"
log "building otelcol-audit ${VERSION} with ${JOBS} jobs (first build takes several minutes)"
"${GOBIN}/builder" --config="${MANIFEST}" --skip-strict-versioning=false >&2
[[ -x "${BIN}" ]] || { log "ERROR: builder finished but ${BIN} is missing"; exit 1; }
"${BIN}" components >/dev/null
echo "${want}" >"${STAMP}"
log "built ${BIN} in $(( $(date +%s) - start ))s"
echo "${BIN}"
