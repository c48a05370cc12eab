#!/usr/bin/env bash
# Install the grader and what full isolation needs (bubblewrap), on Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "setup: bubblewrap is missing; install it (sudo apt-get install bubblewrap) for full isolation." >&2
  fi
fi
python -m pip install -q -e '.[test,torch]'
