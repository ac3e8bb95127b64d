#!/usr/bin/env bash
# The whole test suite: installs and starts what the tests need, then runs
# them. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/github.com/moby/patternmatcher ] || need_apt+=(golang-github-moby-patternmatcher-dev)
# Headless Chromium renders the HTML report (tests/html_report.rs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "==> installing ${need_apt[*]} (reference implementation for the differential test, browser for the HTML report)"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# SARIF 2.1.0 schema (shipped in npm's @microsoft/jest-sarif) and Python's
# jsonschema, to validate `--format sarif` output.
deps="$PWD/target/test-deps"
mkdir -p "$deps"
schema="$deps/package/lib/schemas/sarif-2.1.0-rtm.5.json"
if [ ! -f "$schema" ]; then
    echo "==> fetching the SARIF 2.1.0 schema"
    (cd "$deps" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null && tar -xzf microsoft-jest-sarif-1.0.0-beta.0.tgz)
fi
export REGGIE_SARIF_SCHEMA="$schema"
python3 -c "import jsonschema" 2>/dev/null || pip install -q jsonschema
# The pre-commit framework, to run the hook for real.
command -v pre-commit >/dev/null 2>&1 || pip install -q pre-commit
# maturin builds the pip wheel (tests/wheel.rs); the wheel-based hook's
# package builds with setuptools, which pip then finds here, offline.
command -v maturin >/dev/null 2>&1 || pip install -q "maturin>=1.5,<2"
export REGGIE_PIP_WHEELS="$deps/wheels"
if ! ls "$REGGIE_PIP_WHEELS"/setuptools-*.whl >/dev/null 2>&1; then
    pip download -q --no-deps --only-binary :all: -d "$REGGIE_PIP_WHEELS" "setuptools==80.9.0"
fi

echo "==> services for tests/e2e_image.rs (dockerd, registry, moto)"
bash tests/services.sh
if [ -n "${CI:-}" ]; then
    trap 'bash tests/services.sh stop >/dev/null 2>&1 || true' EXIT
fi

# The pip wheel under test (tests/wheel.rs, tests/action.rs): maturin
# packages the lean debug build (`.ci/run` built it, so cargo finds it
# fresh). Before `cargo test`, which then puts the full binary back in
# target/debug where the other tests expect it.
echo "==> the pip wheel (maturin build --profile dev)"
export REGGIE_TEST_WHEELS="$deps/wheel"
rm -rf "$REGGIE_TEST_WHEELS"
maturin build --quiet --profile dev --jobs 2 --out "$REGGIE_TEST_WHEELS"

echo "==> cargo test"
log="$deps/cargo-test.log"
# A test whose service or tool is missing fails; with REGGIE_ALLOW_SKIP=1
# it is skipped instead and logged here, to be counted below.
export REGGIE_SKIP_LOG="$deps/skipped.log"
rm -f "$REGGIE_SKIP_LOG"
set +e
cargo test --all-targets --no-fail-fast -j2 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
skipped=0
if [ -s "$REGGIE_SKIP_LOG" ]; then
    skipped=$(wc -l <"$REGGIE_SKIP_LOG")
    echo "==> skipped (REGGIE_ALLOW_SKIP is set):"
    sed 's/^/    /' "$REGGIE_SKIP_LOG"
fi
# One closing line for the whole run (cargo prints one per test binary). A
# skipped test also counted as passed by cargo is moved to "skipped".
awk -v s="$skipped" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { if (s > 0) printf "tests: %d passed, %d failed, %d skipped\n", p - s, f, s; else printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
