#!/usr/bin/env bash
# The whole test suite: installs and starts what the tests need, then runs
# them. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/github.com/moby/patternmatcher ] || need_apt+=(golang-github-moby-patternmatcher-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "==> installing ${need_apt[*]} (reference implementation for the differential test)"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "==> cargo test"
cargo test --all-targets --no-fail-fast -j2 "$@"
