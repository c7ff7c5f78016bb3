#!/usr/bin/env bash
# Installs what building Atoll needs and is missing: cmake (for zlib-ng, through apt-get when
# running as root) and the wasm32-wasip2 Rust target (through rustup).
set -euo pipefail

if ! command -v cmake >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing cmake with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
  else
    echo "setup: cmake is missing; install it (for example: sudo apt-get install cmake)" >&2
    exit 1
  fi
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 target with rustup"
  rustup target add wasm32-wasip2
fi
