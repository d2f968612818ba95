#!/usr/bin/env bash
# Set up (scripts/setup.sh), lint (ruff), then run pytest with any arguments given here.
# Exits with pytest's code; "no tests collected" (pytest's 5) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
.venv/bin/ruff check .

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; treating that as a failure" >&2
  exit 1
fi
exit "$rc"
