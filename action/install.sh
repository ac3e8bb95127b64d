#!/usr/bin/env bash
# Installs a prebuilt reggie-build for the GitHub Action (action.yml), or
# anywhere: the release archive for this machine (the one cargo-dist
# publishes, checked against its .sha256), else the pip wheel (the lean
# build: every command but `image`). Nothing is compiled.
#
# Environment:
#   REGGIE_VERSION      version to install, e.g. 0.1.0 (required)
#   REGGIE_INSTALL_DIR  where bin/ goes (required); an existing
#                       bin/reggie-build there is kept (the action's cache)
#   REGGIE_RELEASE_URL  where the archives are: an https:// or file:// URL,
#                       or a directory (default: the GitHub release
#                       v$REGGIE_VERSION of $REGGIE_REPOSITORY)
#   REGGIE_REPOSITORY   owner/name on GitHub (the action passes its own)
#   REGGIE_PIP_ARGS     extra arguments for the wheel fallback's pip install,
#                       e.g. "--no-index --find-links DIR"
#   REGGIE_NO_WHEEL=1   fail instead of falling back to the wheel
#
# Prints the bin directory to put on PATH as its last line.
set -euo pipefail

fail() { echo "install.sh: $*" >&2; exit 1; }
version=${REGGIE_VERSION:?REGGIE_VERSION is not set: the version to install, e.g. 0.1.0}
version=${version#v}
dir=${REGGIE_INSTALL_DIR:?REGGIE_INSTALL_DIR is not set: where to install}
bin="$dir/bin"
mkdir -p "$bin"

if [ -x "$bin/reggie-build" ] && "$bin/reggie-build" --version 2>/dev/null | grep -qx "reggie-build $version"; then
    echo "install.sh: reggie-build $version already in $bin" >&2
    echo "$bin"
    exit 0
fi

# cargo-dist's target triples (dist-workspace.toml lists the same).
case "$(uname -s)-$(uname -m)" in
Linux-x86_64) target=x86_64-unknown-linux-gnu ;;
Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-gnu ;;
Darwin-x86_64) target=x86_64-apple-darwin ;;
Darwin-arm64) target=aarch64-apple-darwin ;;
*) target="" ;;
esac

url=${REGGIE_RELEASE_URL:-}
if [ -z "$url" ] && [ -n "${REGGIE_REPOSITORY:-}" ]; then
    url="https://github.com/$REGGIE_REPOSITORY/releases/download/v$version"
fi
case "$url" in
"" | *://*) ;;
*) url="file://$(cd "$url" && pwd)" ;;
esac

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

from_archive() {
    [ -n "$target" ] || { echo "install.sh: no release archive for $(uname -s) $(uname -m)" >&2; return 1; }
    [ -n "$url" ] || { echo "install.sh: no REGGIE_RELEASE_URL or REGGIE_REPOSITORY: no archive to fetch" >&2; return 1; }
    local name="reggie-build-$target.tar.gz"
    echo "install.sh: fetching $url/$name" >&2
    if ! curl -fsSL --retry 3 -o "$work/$name" "$url/$name" ||
        ! curl -fsSL --retry 3 -o "$work/$name.sha256" "$url/$name.sha256"; then
        echo "install.sh: no archive $name (or its .sha256) at $url" >&2
        return 1
    fi
    local want got
    want=$(cut -d' ' -f1 <"$work/$name.sha256")
    got=$(sha256 "$work/$name")
    # A corrupt or substituted archive is an error, not a reason to fall back.
    [ "$want" = "$got" ] || fail "$name: sha256 $got, but $name.sha256 says $want; not installed"
    # dist's tarballs hold one directory, named like the archive.
    local src="$work/unpacked"
    mkdir -p "$src"
    tar -xzf "$work/$name" -C "$src" --strip-components 1
    [ -x "$src/reggie-build" ] || fail "$name has no reggie-build-$target/reggie-build"
    # Both binaries: `reggie-build image` runs reggie-build-image beside it.
    for b in reggie-build reggie-build-image; do
        if [ -f "$src/$b" ]; then install -m 755 "$src/$b" "$bin/$b"; fi
    done
}

from_wheel() {
    local py
    py=$(command -v python3 || command -v python) || fail "no release archive, and no python3 for the wheel"
    echo "install.sh: installing the wheel reggie-build==$version with pip (the lean build: no \`image\`)" >&2
    # shellcheck disable=SC2086 # REGGIE_PIP_ARGS is a list of words
    "$py" -m pip install --quiet --disable-pip-version-check --target "$work/pip" ${REGGIE_PIP_ARGS:-} "reggie-build==$version" >&2 ||
        fail "pip could not install reggie-build==$version"
    [ -x "$work/pip/bin/reggie-build" ] || fail "the wheel installed no bin/reggie-build"
    install -m 755 "$work/pip/bin/reggie-build" "$bin/reggie-build"
    rm -f "$bin/reggie-build-image"
}

if ! from_archive; then
    [ "${REGGIE_NO_WHEEL:-}" != 1 ] || fail "no release archive, and REGGIE_NO_WHEEL=1"
    from_wheel
fi
"$bin/reggie-build" --version >&2 || fail "the installed $bin/reggie-build does not run"
echo "$bin"
