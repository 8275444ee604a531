#!/usr/bin/env bash
# Installs, once, what the portal's browser tests drive: Debian's chromium and chromium-driver
# (/usr/bin/chromium, /usr/bin/chromedriver). Needs root (apt-get); prints why when it cannot install.
# Concurrent calls wait for the first under a lock.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "chromium and chromedriver are missing, and installing them needs root and apt-get (Debian packages chromium, chromium-driver)" >&2
  exit 1
fi
exec 9>/tmp/dispatcher-chromium-install.lock
flock 9
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2
fi
