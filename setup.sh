#!/usr/bin/env bash
# Install the grader into .venv inside this folder, with what full isolation needs.
#
#   ./setup.sh            .venv/ (made with python3 -m venv; PEP 668 systems are fine),
#                         bubblewrap (apt-get, when run as root on Debian/Ubuntu)
#   PYTHON=python3.12 ./setup.sh      another interpreter (3.11 or newer)
#
# Then: .venv/bin/grader ...   (or `source .venv/bin/activate` and plain `grader ...`)
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "setup: $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v bwrap >/dev/null; then
  if is_root && command -v apt-get >/dev/null; then
    say "installing bubblewrap (for full isolation)"
    apt_install bubblewrap
  else
    say "bubblewrap is missing: grading will run with reduced isolation until it is installed" \
        "(sudo apt-get install bubblewrap); \`grader doctor\` says what you get"
  fi
fi

PYTHON=${PYTHON:-$(command -v python3 || command -v python || true)}
if [ -z "$PYTHON" ]; then
  say "no python3 found: install Python 3.11 or newer (e.g. sudo apt-get install python3 python3-venv)"
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "$PYTHON is $("$PYTHON" --version 2>&1); the grader needs Python 3.11 or newer (PYTHON=... ./setup.sh)"
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if is_root && command -v apt-get >/dev/null; then
      say "installing python3-venv (Debian's Python makes venvs with it)"
      apt_install python3-venv
      "$PYTHON" -m venv .venv
    else
      say "$PYTHON cannot make a venv: sudo apt-get install python3-venv, then run ./setup.sh again"
      exit 1
    fi
  fi
fi

.venv/bin/python -m pip install -q -e '.[test,torch]'
# byte-compiled once here, as pip does for a regular install: an editable install's own
# modules would otherwise be compiled on every run wherever PYTHONDONTWRITEBYTECODE is set
# (~0.1 s of each `grader grade`)
.venv/bin/python -m compileall -q grader solutions >/dev/null || true  # a broken file says so when graded
say "installed into $(pwd)/.venv: run .venv/bin/grader (or source .venv/bin/activate)"
