#!/usr/bin/env bash
# How many images a test file leaves in the test daemon: counts the
# daemon's images (`docker images -a`, dangling ones included) before and
# after `cargo test --test NAME`, and lists the new ones still there.
#
#   bash tests/images-left.sh e2e_image [-- TEST FILTER...]
#
# The daemon is shared: images another run made meanwhile count too, so
# run it when nothing else builds (the listing shows whose they are).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: tests/images-left.sh TEST-FILE [cargo test args...]}
shift
# shellcheck disable=SC1091
. "${REGGIE_SERVICES_DIR:-/tmp/reggie-services}/env"
export DOCKER_HOST
ids() { docker images -a -q --no-trunc | sort -u; }
before=$(mktemp)
trap 'rm -f "$before"' EXIT
ids >"$before"
echo "==> images before: $(wc -l <"$before")"
status=0
cargo test -j2 --test "$name" "$@" || status=$?
after=$(ids)
new=$(comm -13 "$before" <(printf '%s\n' "$after" | sed '/^$/d'))
echo "==> images after: $(printf '%s\n' "$after" | sed '/^$/d' | wc -l)"
count=$(printf '%s' "$new" | sed '/^$/d' | wc -l)
echo "==> left by this run: $count"
for id in $new; do
    docker image inspect --format '{{.Id}} {{join .RepoTags ","}} {{.Created}}' "$id" 2>/dev/null || true
done
exit "$status"
