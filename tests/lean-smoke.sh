#!/usr/bin/env bash
# The lean build (`cargo build --no-default-features`: the analysis
# commands, the pip wheel's feature set) on a fixture: analyze and check
# answer as the full build does, and `image` (its error and its help) says
# how to get the full build, which has the builder.
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
# It says how to get the full build, with commands that can be pasted: the
# release installer and cargo install from the package's repository
# (Cargo.toml's `repository` and version), or from a checkout.
repo=$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$repo" ] && [ -n "$version" ] || fail "no repository or version in Cargo.toml"
help=$("$bin" image --help) || fail "image --help exited $?"
for want in \
    "curl -LsSf $repo/releases/download/v$version/reggie-build-installer.sh | sh" \
    "cargo install --locked --git $repo reggie-build" \
    "cargo install --locked --path ."; do
    grep -qF -- "$want" <<<"$out" || fail "image's error does not say \`$want\`:
$out"
    # Help is wrapped to the terminal's width: compare without line breaks.
    tr -s ' \n' ' ' <<<"$help" | grep -qF -- "$want" ||
        fail "image --help does not say \`$want\`:
$help"
done
grep -q 'beside reggie-build' <<<"$help" && fail "the lean image --help says the builder sits beside it:
$help"
echo "lean smoke test: analyze, check and image answer as expected"
