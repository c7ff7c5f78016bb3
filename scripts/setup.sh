#!/usr/bin/env bash
# Installs what building and testing Atoll needs and is missing: cmake (for zlib-ng) and nginx
# (the load tester's `hello` scenario compares against it), through apt-get when running as root,
# and the wasm32-wasip2 Rust target (through rustup).
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: ${missing[*]} missing; install (for example: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 target with rustup"
  rustup target add wasm32-wasip2
fi
