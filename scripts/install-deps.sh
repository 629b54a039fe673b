#!/usr/bin/env bash
# Installs what Walsync's development and tests need, on a brand-new Debian machine (as
# root) or on one that already has it all, in which case it only checks and is quick:
#   - deno 2.9.6 (from the npm registry when no deno 2.9.6 is on PATH)
#   - MinIO, for the S3 tests (built with `go install` when no binary is found; skipped
#     when WALSYNC_NO_MINIO=1, as the demo does)
#   - the sqlite3 CLI and tmux (apt-get, only when missing)
#   - the npm packages pinned in deno.lock (`deno install --frozen`)
#
# Meant to be sourced, so the caller's shell gets PATH and WALSYNC_MINIO_BIN:
#   source scripts/install-deps.sh
# Running it with bash works too (it installs, but the exports die with it).
# Everything it says goes to stderr; stdout stays the caller's.

_walsync_log() {
  printf 'install-deps: %s\n' "$*" >&2
}

# Prints the version of the deno binary $1 (e.g. 2.9.6), or nothing if it does not run.
_walsync_deno_version() {
  "$1" --version 2>/dev/null | awk 'NR == 1 && $1 == "deno" { print $2 }'
}

_walsync_apt_install() {
  _walsync_log "installing $* with apt-get"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      _walsync_log "not root and no sudo: install $* yourself"
      return 1
    fi
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

_walsync_ensure_apt_tools() {
  local missing=()
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  if [ "${#missing[@]}" -gt 0 ]; then
    _walsync_apt_install "${missing[@]}" || return 1
  fi
}

_walsync_ensure_deno() {
  local cache="$HOME/.cache/walsync"
  local on_path
  on_path="$(command -v deno 2>/dev/null || true)"
  if [ -n "$on_path" ] && [ "$(_walsync_deno_version "$on_path")" = "$_walsync_deno_wanted" ]; then
    _walsync_log "deno $_walsync_deno_wanted: $on_path"
    return 0
  fi
  if [ -n "$on_path" ]; then
    _walsync_log "deno on PATH is $(_walsync_deno_version "$on_path"), not $_walsync_deno_wanted; using a pinned copy"
  fi
  local linked="$cache/bin/deno"
  if [ "$(_walsync_deno_version "$linked")" != "$_walsync_deno_wanted" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      _walsync_apt_install npm || return 1
    fi
    _walsync_log "installing deno $_walsync_deno_wanted from npm into $cache/deno"
    mkdir -p "$cache/deno" "$cache/bin" || return 1
    npm install --prefix "$cache/deno" --no-audit --no-fund --loglevel=error \
      "deno@$_walsync_deno_wanted" >&2 || return 1
    local candidate found=""
    # The platform package holds the real binary; node_modules/deno/deno is where the
    # package's postinstall may copy it.
    for candidate in "$cache/deno/node_modules/@deno/linux-x64-glibc/deno" \
      "$cache/deno/node_modules/deno/deno" \
      "$cache/deno/node_modules/@deno/linux-arm64-glibc/deno"; do
      if [ -f "$candidate" ]; then
        chmod +x "$candidate" 2>/dev/null || true
        if [ "$(_walsync_deno_version "$candidate")" = "$_walsync_deno_wanted" ]; then
          found="$candidate"
          break
        fi
      fi
    done
    if [ -z "$found" ]; then
      _walsync_log "npm installed deno, but no binary in $cache/deno/node_modules runs"
      return 1
    fi
    ln -sf "$found" "$linked" || return 1
  fi
  case ":$PATH:" in
    *":$cache/bin:"*) ;;
    *) export PATH="$cache/bin:$PATH" ;;
  esac
  _walsync_log "deno $_walsync_deno_wanted: $linked"
}

_walsync_ensure_minio() {
  local candidate
  for candidate in "${WALSYNC_MINIO_BIN:-}" "$HOME/go/bin/minio" "$(command -v minio 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      export WALSYNC_MINIO_BIN="$candidate"
      _walsync_log "minio: $candidate"
      return 0
    fi
  done
  local go="go"
  command -v go >/dev/null 2>&1 || go="/usr/local/go/bin/go"
  if ! [ -x "$(command -v "$go" 2>/dev/null)" ]; then
    _walsync_log "no minio binary and no Go toolchain to build one (looked for /usr/local/go/bin/go)"
    return 1
  fi
  _walsync_log "building minio with go install (takes a few minutes, once)"
  GOBIN="$HOME/go/bin" "$go" install github.com/minio/minio@latest >&2 || return 1
  export WALSYNC_MINIO_BIN="$HOME/go/bin/minio"
  _walsync_log "minio: $WALSYNC_MINIO_BIN"
}

_walsync_ensure_npm_packages() {
  local repo="$1"
  _walsync_log "caching npm packages from deno.lock"
  (cd "$repo" && deno install --frozen --quiet) >&2
}

_walsync_install_deps() {
  _walsync_deno_wanted="2.9.6"
  local repo
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
  _walsync_ensure_apt_tools &&
    _walsync_ensure_deno &&
    { [ "${WALSYNC_NO_MINIO:-}" = "1" ] || _walsync_ensure_minio; } &&
    _walsync_ensure_npm_packages "$repo"
}

if _walsync_install_deps; then
  _walsync_status=0
else
  _walsync_status=$?
  _walsync_log "failed (exit $_walsync_status)"
fi
# `return` when sourced (the caller's shell must live on), `exit` when run as a script.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  return "$_walsync_status"
else
  exit "$_walsync_status"
fi
