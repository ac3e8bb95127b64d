#!/usr/bin/env bash
# The lean build (`cargo build --no-default-features`: the analysis
# commands, the pip wheel's feature set) on a fixture: analyze and check
# answer as the full build does, and `image` says where the builder is.
#
#   tests/lean-smoke.sh BINARY
set -euo pipefail
bin=${1:?usage: tests/lean-smoke.sh BINARY}
cd "$(dirname "$0")/.."
fail() { echo "lean smoke test: $*" >&2; exit 1; }

out=$("$bin" analyze fixtures/reggie -f fixtures/reggie/backend/Dockerfile) || fail "analyze exited $?"
grep -q 'Needed            19 files' <<<"$out" || fail "analyze did not report the 19 needed files:
$out"

set +e
out=$("$bin" check fixtures/reggie -f fixtures/reggie/backend/Dockerfile --max-size 5kB 2>&1)
rc=$?
set -e
[ "$rc" = 1 ] || fail "check over budget exited $rc, expected 1:
$out"
grep -q 'over the 5 kB budget' <<<"$out" || fail "check did not name the budget:
$out"

set +e
out=$("$bin" image fixtures/reggie -t pkg-lean:x 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] || fail "image in the lean build exited $rc, expected 2:
$out"
grep -q 'not in this build' <<<"$out" || fail "image did not say it is not in this build:
$out"
echo "lean smoke test: analyze, check and image answer as expected"
