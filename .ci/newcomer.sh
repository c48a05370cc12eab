#!/usr/bin/env bash
# CI: do what a newcomer does with the repository at $1, as whoever runs this script
# (root, or a normal user: runuser -u USER -- .ci/newcomer.sh /path/to/repo).
#   1. clone it into a private temp folder and run the README's quick-start commands
#      word for word (the lines of the first ``` block after "## Quick start");
#   2. a non-editable install (python3 -m venv + pip install CLONE) graded from an
#      unrelated empty folder.
# After each grading run, every student of examples/class whose EXPECTED.json parts are
# all "full" must have full marks, and grader-errors.log must be empty: exit 0 with
# every student at 0/88 is a failure. Temp folders are removed on success and kept
# (and named) on failure. Exit status: 0 when everything worked, 1 otherwise.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 REPO   (a git repository readable by the user running this)" >&2
  exit 2
fi
repo=$(cd "$1" && pwd -P)

section() { printf '\n==== %s ====\n' "$*"; }

tmp=$(mktemp -d)  # private: mode 0700
chmod 700 "$tmp"
work=""
finish() {
  status=$?
  if [ "$status" -eq 0 ]; then
    rm -rf "$tmp" ${work:+"$work"}
  else
    section "FAILED (exit status $status); kept for a look"
    echo "clone, venv and reports: $tmp"
    [ -z "$work" ] || echo "empty folder of the non-editable run: $work"
  fi
}
trap finish EXIT
fail() { echo "newcomer: $*" >&2; exit 1; }

# Full marks for every all-"full" student of EXPECTED.json; no grader error logged.
check_reports() {  # REPORTS_DIR EXPECTED_JSON PYTHON
  "$3" - "$1" "$2" <<'PY'
import csv, json, pathlib, sys
out, expected = pathlib.Path(sys.argv[1]), json.loads(pathlib.Path(sys.argv[2]).read_text())
problems = []
errors = out / "grader-errors.log"
if errors.exists() and errors.read_text(errors="replace").strip():
    problems.append(f"{errors} is not empty:\n" + errors.read_text(errors="replace")[:2000])
grades = out / "grades.csv"
rows = {}
if grades.exists():
    with open(grades, newline="", encoding="utf-8") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
else:
    problems.append(f"{grades} was not written")
full = lambda v: v == "full" or (isinstance(v, list) and v[:1] == ["full"])
for student, parts in expected.items():
    row = rows.get(student)
    if grades.exists() and row is None:
        problems.append(f"{student}: no row in grades.csv")
    elif row is not None and all(full(v) for v in parts.values()):
        score, top = float(row["score"]), float(row["max_score"])
        if top <= 0 or score != top:
            problems.append(f"{student}: {row['score']}/{row['max_score']}, expected full marks")
print("\n".join(problems) if problems else f"{grades}: {len(rows)} students, the correct ones at full marks")
sys.exit(1 if problems else 0)
PY
}

section "newcomer as $(id -un) (uid $(id -u)), home $HOME; repository $repo"
echo "private temp folder: $tmp"

section "git clone $repo"
if [ "$(stat -c %u "$repo")" != "$(id -u)" ]; then
  # Someone else's repository on this machine (CI's layout, not a newcomer's): git refuses
  # it ("dubious ownership") unless a system/global config trusts it; give the clone one.
  printf '[safe]\n\tdirectory = *\n' > "$tmp/gitconfig"
  GIT_CONFIG_GLOBAL="$tmp/gitconfig" git clone --quiet "$repo" "$tmp/clone"
else
  git clone --quiet "$repo" "$tmp/clone"
fi
cd "$tmp/clone"
echo "cloned into $tmp/clone at $(git rev-parse --short HEAD)"

# The quick start, read from the README at run time: the first fenced block after the heading.
mapfile -t commands < <(awk '
  /^## Quick start[[:space:]]*$/ { found = 1; next }
  found && /^```/ { if (inside) exit; inside = 1; next }
  found && inside && NF && $1 !~ /^#/ { print }
' README.md)
[ "${#commands[@]}" -gt 0 ] || fail "README.md: no command in a \`\`\` block after '## Quick start'"

if [ -n "${NEWCOMER_TEST_COMMAND:-}" ]; then  # CI's second run: a lighter test command (the time budget)
  echo "the quick start's last command, ${commands[-1]}, is replaced by: $NEWCOMER_TEST_COMMAND"
  commands[-1]=$NEWCOMER_TEST_COMMAND
fi
n=0
for command in "${commands[@]}"; do
  n=$((n + 1))
  section "quick start ${n}/${#commands[@]}: $command"
  start=$SECONDS
  if ! bash -c "$command"; then
    fail "quick start command ${n} failed: $command"
  fi
  echo "(done in $((SECONDS - start)) s)"
done
section "quick start: the reports it wrote ($tmp/clone/reports)"
if [ -d "$tmp/clone/reports" ]; then
  check_reports "$tmp/clone/reports" "$tmp/clone/examples/class/EXPECTED.json" python3 \
    || fail "the quick start graded examples/class wrongly"
else
  fail "the quick start wrote no reports/ folder"
fi

if [ -n "${NEWCOMER_EXTRA:-}" ]; then  # e.g. CI's install-layout tier, with the quick start's venv
  section "extra, in the clone: $NEWCOMER_EXTRA"
  start=$SECONDS
  bash -c "$NEWCOMER_EXTRA" || fail "extra command failed: $NEWCOMER_EXTRA"
  echo "(done in $((SECONDS - start)) s)"
fi

section "non-editable install: python3 -m venv $tmp/venv && pip install $tmp/clone"
start=$SECONDS
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet "$tmp/clone" || fail "pip install $tmp/clone failed"
echo "(done in $((SECONDS - start)) s)"

work=$(mktemp -d)
cd "$work"
section "non-editable install: grader grade from an empty folder ($work)"
"$tmp/venv/bin/grader" grade "$tmp/clone/examples/class" --out reports \
  || fail "grader grade (non-editable install) exited with status $?"
[ -s reports/grades.csv ] || fail "grader grade (non-editable install) wrote no reports/grades.csv"
check_reports "$work/reports" "$tmp/clone/examples/class/EXPECTED.json" "$tmp/venv/bin/python" \
  || fail "the non-editable install graded examples/class wrongly"

section "newcomer: everything worked"
