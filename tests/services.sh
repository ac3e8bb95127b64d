#!/usr/bin/env bash
# Starts the services the end-to-end image tests need, each private to
# this machine's loopback and to one folder, and writes the file the tests
# source:
#
#   * a dockerd of its own (own socket, data root, exec root, pid file;
#     no bridge and no iptables rules, so it touches nothing of the host's
#     network),
#   * a registry (Debian's docker-registry) on 127.0.0.1 with htpasswd
#     bcrypt auth,
#   * moto_server (a local ECR API) on 127.0.0.1,
#   * the daemon's socket on plain tcp (socat) and on tcp+TLS with client
#     certificates checked (`tests/relay.py docker`), relays to the unix
#     socket; the CA, server and client certificates are made here with
#     openssl,
#   * the daemon's embedded BuildKit as a buildkitd-like gRPC listener,
#     plain and with mutual TLS (`tests/relay.py buildkit`: `POST /grpc`
#     upgraded to h2c, then piped), for `image --buildkit-addr`,
#   * a second dockerd with a data root of its own (docker2.sock), where the
#     cache-import test builds with none of the first one's build cache,
#   * a busybox base image, reggie-busybox:latest, imported from
#     busybox-static (nothing is pulled from the network).
#
# Idempotent: a second run reuses whatever is still running. Usage:
#
#   bash tests/services.sh            # install if missing, start, write env
#   bash tests/services.sh stop       # stop what it started
#   . "${REGGIE_SERVICES_DIR:-/tmp/reggie-services}/env"
set -euo pipefail

DIR="${REGGIE_SERVICES_DIR:-/tmp/reggie-services}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
SOCK="$DIR/docker.sock"

# Credentials of the local registry. moto's GetAuthorizationToken returns
# base64("AWS:<account>-auth-token"), so the ECR flow logs in as AWS with
# that password. The second user's password encodes, inside Docker's
# X-Registry-Auth JSON, to base64 with '+' and '/' (a regression test).
ECR_USER=AWS
ECR_PASSWORD=123456789012-auth-token
PLAIN_USER=reggie
PLAIN_PASSWORD='s3cr?t>>~~??ÿÿ-reggie'

log() { echo "services: $*" >&2; }
die() {
    echo "services: error: $*" >&2
    exit 1
}

alive() { # pidfile
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # what, seconds, command...
    local what=$1 secs=$2
    shift 2
    local i
    for ((i = 0; i < secs * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    return 1
}

stop_pidfile() {
    if alive "$1"; then
        local pid
        pid=$(cat "$1")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$1"
}

if [ "${1:-}" = stop ]; then
    stop_pidfile "$DIR/docker-tcp.pid"
    stop_pidfile "$DIR/docker-tls.pid"
    stop_pidfile "$DIR/buildkit-tcp.pid"
    stop_pidfile "$DIR/buildkit-tls.pid"
    stop_pidfile "$DIR/sshd.pid"
    stop_pidfile "$DIR/moto.pid"
    stop_pidfile "$DIR/registry.pid"
    stop_pidfile "$DIR/docker.pid"
    stop_pidfile "$DIR/docker2.pid"
    rm -f "$DIR/env"
    log "stopped"
    exit 0
fi

# ---- install what is missing -------------------------------------------
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
moto_usable() { python3 -c 'import moto.server, flask, werkzeug' >/dev/null 2>&1; }
if ! moto_usable; then
    log "installing moto[server]"
    python3 -m pip install -q "moto[server]"
fi
moto_usable || die "moto[server] is not importable after pip install"

# ---- dockerd -------------------------------------------------------------
docker_ok() { DOCKER_HOST="unix://$SOCK" docker version --format '{{.Server.Version}}'; }

start_dockerd() { # storage driver
    rm -f "$SOCK"
    mkdir -p "$DIR/docker-data" "$DIR/docker-exec"
    # setsid: the daemon outlives this script and is not in its process
    # group; it is stopped by `services.sh stop` or at the end of the session.
    setsid dockerd \
        --host "unix://$SOCK" \
        --data-root "$DIR/docker-data" \
        --exec-root "$DIR/docker-exec" \
        --pidfile "$DIR/docker.pid" \
        --storage-driver="$1" \
        --iptables=false --ip6tables=false --bridge=none \
        >"$DIR/dockerd.log" 2>&1 </dev/null &
    wait_for dockerd 60 docker_ok
}

if alive "$DIR/docker.pid" && docker_ok >/dev/null 2>&1; then
    log "dockerd already running ($SOCK)"
else
    stop_pidfile "$DIR/docker.pid"
    started=
    for driver in overlay2 vfs; do
        log "starting dockerd (storage driver $driver)"
        if start_dockerd "$driver"; then
            started=$driver
            break
        fi
        log "dockerd did not start with $driver:"
        tail -5 "$DIR/dockerd.log" >&2 || true
        stop_pidfile "$DIR/docker.pid"
    done
    [ -n "$started" ] || die "dockerd cannot run on this machine; see $DIR/dockerd.log"
fi
export DOCKER_HOST="unix://$SOCK"

# ---- busybox base image ---------------------------------------------------
if ! docker image inspect reggie-busybox:latest >/dev/null 2>&1; then
    log "importing reggie-busybox:latest from busybox-static"
    rootfs="$DIR/busybox-rootfs"
    rm -rf "$rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/root"
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
    tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf "$DIR/busybox-rootfs.tar" .
    docker import --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' \
        "$DIR/busybox-rootfs.tar" reggie-busybox:latest >/dev/null
    rm -rf "$rootfs" "$DIR/busybox-rootfs.tar"
fi

# ---- a second dockerd -------------------------------------------------------
# Its own data root: the cache-import test builds there with nothing of the
# first daemon's build cache, as a CI runner would.
SOCK2="$DIR/docker2.sock"
docker2_ok() { DOCKER_HOST="unix://$SOCK2" docker version --format '{{.Server.Version}}'; }
if alive "$DIR/docker2.pid" && docker2_ok >/dev/null 2>&1; then
    log "second dockerd already running ($SOCK2)"
else
    stop_pidfile "$DIR/docker2.pid"
    rm -f "$SOCK2"
    mkdir -p "$DIR/docker2-data" "$DIR/docker2-exec"
    driver=$(docker info --format '{{.Driver}}')
    log "starting a second dockerd (storage driver $driver)"
    setsid dockerd \
        --host "unix://$SOCK2" \
        --data-root "$DIR/docker2-data" \
        --exec-root "$DIR/docker2-exec" \
        --pidfile "$DIR/docker2.pid" \
        --storage-driver="$driver" \
        --iptables=false --ip6tables=false --bridge=none \
        >"$DIR/dockerd2.log" 2>&1 </dev/null &
    wait_for "second dockerd" 60 docker2_ok || die "the second dockerd did not start; see $DIR/dockerd2.log"
fi
if ! DOCKER_HOST="unix://$SOCK2" docker image inspect reggie-busybox:latest >/dev/null 2>&1; then
    docker save reggie-busybox:latest | DOCKER_HOST="unix://$SOCK2" docker load >/dev/null
fi

# ---- registry ---------------------------------------------------------------
registry_port=
[ -s "$DIR/registry.port" ] && registry_port=$(cat "$DIR/registry.port")
registry_ok() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$registry_port/v2/" | grep -q 401; }
if [ -n "$registry_port" ] && alive "$DIR/registry.pid" && registry_ok; then
    log "registry already running on 127.0.0.1:$registry_port"
else
    stop_pidfile "$DIR/registry.pid"
    registry_port=$(free_port)
    echo "$registry_port" >"$DIR/registry.port"
    mkdir -p "$DIR/registry-data"
    : >"$DIR/htpasswd"
    htpasswd -bB "$DIR/htpasswd" "$ECR_USER" "$ECR_PASSWORD" 2>/dev/null
    htpasswd -bB "$DIR/htpasswd" "$PLAIN_USER" "$PLAIN_PASSWORD" 2>/dev/null
    cat >"$DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
auth:
  htpasswd:
    realm: reggie-test
    path: $DIR/htpasswd
EOF
    log "starting registry on 127.0.0.1:$registry_port"
    setsid docker-registry serve "$DIR/registry.yml" >"$DIR/registry.log" 2>&1 </dev/null &
    echo $! >"$DIR/registry.pid"
    wait_for registry 30 registry_ok || {
        tail -5 "$DIR/registry.log" >&2
        die "the registry did not start; see $DIR/registry.log"
    }
fi

# ---- moto ---------------------------------------------------------------------
moto_port=
[ -s "$DIR/moto.port" ] && moto_port=$(cat "$DIR/moto.port")
moto_ok() { curl -s -o /dev/null "http://127.0.0.1:$moto_port/moto-api/"; }
if [ -n "$moto_port" ] && alive "$DIR/moto.pid" && moto_ok; then
    log "moto already running on 127.0.0.1:$moto_port"
else
    stop_pidfile "$DIR/moto.pid"
    moto_port=$(free_port)
    echo "$moto_port" >"$DIR/moto.port"
    log "starting moto_server on 127.0.0.1:$moto_port"
    # `python3 -m` rather than the moto_server script: a pyenv shim for a
    # script pip just installed may not exist yet.
    setsid python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$DIR/moto.log" 2>&1 </dev/null &
    echo $! >"$DIR/moto.pid"
    wait_for moto 60 moto_ok || {
        tail -5 "$DIR/moto.log" >&2
        die "moto_server did not start; see $DIR/moto.log"
    }
fi

# ---- the daemon over tcp and tcp+TLS ------------------------------------------
# Relays to the unix socket rather than more dockerd --host flags: dockerd
# applies one TLS setting to all its tcp hosts, and adding hosts would mean
# restarting a daemon that may be in use. Plain tcp is socat; TLS is
# `tests/relay.py docker` (socat's OpenSSL listener breaks session
# resumption with client certificates).
TLS="$DIR/tls"
make_certs() {
    rm -rf "$TLS"
    mkdir -p "$TLS/server" "$TLS/client" "$TLS/wrong"
    local ssl="openssl"
    # The CA, and a second one that signed nothing of ours.
    for ca in ca wrong-ca; do
        $ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
            -subj "/CN=reggie test $ca" -keyout "$TLS/$ca-key.pem" -out "$TLS/$ca.pem" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    done
    leaf() { # name, extensions
        $ssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=reggie test $1" \
            -keyout "$TLS/$1-key.pem" -out "$TLS/$1.csr" 2>/dev/null
        printf '%s\n' "$2" >"$TLS/$1.ext"
        $ssl x509 -req -in "$TLS/$1.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca-key.pem" -CAcreateserial \
            -days 3650 -extfile "$TLS/$1.ext" -out "$TLS/$1-cert.pem" 2>/dev/null
    }
    leaf server "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
    leaf client "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
    cp "$TLS/ca.pem" "$TLS/server/ca.pem"
    cp "$TLS/server-cert.pem" "$TLS/server/cert.pem"
    cp "$TLS/server-key.pem" "$TLS/server/key.pem"
    # DOCKER_CERT_PATH layouts: the right CA, and a wrong one.
    for d in client wrong; do
        cp "$TLS/client-cert.pem" "$TLS/$d/cert.pem"
        cp "$TLS/client-key.pem" "$TLS/$d/key.pem"
    done
    cp "$TLS/ca.pem" "$TLS/client/ca.pem"
    cp "$TLS/wrong-ca.pem" "$TLS/wrong/ca.pem"
    chmod 600 "$TLS"/*key.pem "$TLS"/*/key.pem
}
[ -s "$TLS/client/key.pem" ] && [ -s "$TLS/server/cert.pem" ] || make_certs

tcp_port=
[ -s "$DIR/docker-tcp.port" ] && tcp_port=$(cat "$DIR/docker-tcp.port")
tcp_ok() { curl -s "http://127.0.0.1:$tcp_port/_ping" | grep -q OK; }
if [ -n "$tcp_port" ] && alive "$DIR/docker-tcp.pid" && tcp_ok; then
    log "daemon relay already on tcp://127.0.0.1:$tcp_port"
else
    stop_pidfile "$DIR/docker-tcp.pid"
    tcp_port=$(free_port)
    echo "$tcp_port" >"$DIR/docker-tcp.port"
    log "relaying the daemon on tcp://127.0.0.1:$tcp_port"
    setsid socat "TCP-LISTEN:$tcp_port,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$SOCK" \
        >"$DIR/docker-tcp.log" 2>&1 </dev/null &
    echo $! >"$DIR/docker-tcp.pid"
    wait_for docker-tcp 20 tcp_ok || die "the tcp relay did not start; see $DIR/docker-tcp.log"
fi

tls_port=
[ -s "$DIR/docker-tls.port" ] && tls_port=$(cat "$DIR/docker-tls.port")
tls_ok() {
    curl -s --cacert "$TLS/client/ca.pem" --cert "$TLS/client/cert.pem" --key "$TLS/client/key.pem" \
        "https://127.0.0.1:$tls_port/_ping" | grep -q OK
}
RELAY="$(dirname "${BASH_SOURCE[0]}")/relay.py"
# Whether PIDFILE's process is `relay.py MODE`. The relays that
# tls-relay.py and buildkit-relay.py started, before they became
# relay.py's modes, serve the same: they are kept, not restarted under
# tests that may be using them.
is_relay() { # pidfile, mode
    local cmd legacy
    cmd=$(tr '\0' ' ' <"/proc/$(cat "$1")/cmdline" 2>/dev/null) || return 1
    if [ "$2" = docker ]; then legacy=tls-relay.py; else legacy=buildkit-relay.py; fi
    case "$cmd" in
    *"relay.py $2 "* | *"/$legacy "*) return 0 ;;
    *) return 1 ;;
    esac
}
if [ -n "$tls_port" ] && alive "$DIR/docker-tls.pid" && is_relay "$DIR/docker-tls.pid" docker && tls_ok; then
    log "daemon relay already on tcp+TLS 127.0.0.1:$tls_port"
else
    stop_pidfile "$DIR/docker-tls.pid"
    tls_port=$(free_port)
    echo "$tls_port" >"$DIR/docker-tls.port"
    log "relaying the daemon on tcp+TLS 127.0.0.1:$tls_port"
    setsid python3 "$RELAY" docker "$tls_port" "$SOCK" \
        "$TLS/server/cert.pem" "$TLS/server/key.pem" "$TLS/server/ca.pem" \
        >"$DIR/docker-tls.log" 2>&1 </dev/null &
    echo $! >"$DIR/docker-tls.pid"
    wait_for docker-tls 20 tls_ok || die "the TLS relay did not start; see $DIR/docker-tls.log"
fi

# ---- the daemon's BuildKit as a remote builder --------------------------------
# No buildkitd can be installed here: `tests/relay.py buildkit` serves the
# daemon's embedded BuildKit (its /grpc endpoint) on 127.0.0.1, plain and
# with client certificates required, as `buildkitd --addr tcp://...` would.
relay_tls=("$TLS/server/cert.pem" "$TLS/server/key.pem" "$TLS/server/ca.pem")
check_tls=("$TLS/client/cert.pem" "$TLS/client/key.pem" "$TLS/client/ca.pem")
for kind in tcp tls; do
    port=
    [ -s "$DIR/buildkit-$kind.port" ] && port=$(cat "$DIR/buildkit-$kind.port")
    if [ "$kind" = tls ]; then serve_args=("${relay_tls[@]}") check_args=("${check_tls[@]}"); else serve_args=() check_args=(); fi
    if [ -n "$port" ] && alive "$DIR/buildkit-$kind.pid" && is_relay "$DIR/buildkit-$kind.pid" buildkit &&
        python3 "$RELAY" --check "$port" "${check_args[@]}" 2>/dev/null; then
        log "BuildKit relay already on $kind 127.0.0.1:$port"
    else
        stop_pidfile "$DIR/buildkit-$kind.pid"
        port=$(free_port)
        echo "$port" >"$DIR/buildkit-$kind.port"
        log "relaying the daemon's BuildKit on $kind 127.0.0.1:$port"
        setsid python3 "$RELAY" buildkit "$port" "$SOCK" "${serve_args[@]}" \
            >"$DIR/buildkit-$kind.log" 2>&1 </dev/null &
        echo $! >"$DIR/buildkit-$kind.pid"
        wait_for "buildkit-$kind" 20 python3 "$RELAY" --check "$port" "${check_args[@]}" ||
            die "the BuildKit $kind relay did not start; see $DIR/buildkit-$kind.log"
    fi
done
buildkit_tcp_port=$(cat "$DIR/buildkit-tcp.port")
buildkit_tls_port=$(cat "$DIR/buildkit-tls.port")

# An sshd on 127.0.0.1 for ssh:// daemons: key login only, and sessions
# get DOCKER_HOST so that `docker system dial-stdio` reaches the private
# daemon. ssh_config holds everything a client needs (key, port, no
# known-hosts prompt); tests pass it with REGGIE_SSH_COMMAND="ssh -F ...".
SSHD="$DIR/sshd"
ssh_ok() { ssh -F "$SSHD/ssh_config" reggie-test true; }
ssh_port=
[ -s "$DIR/sshd.port" ] && ssh_port=$(cat "$DIR/sshd.port")
if [ -n "$ssh_port" ] && alive "$DIR/sshd.pid" && ssh_ok; then
    log "sshd already on 127.0.0.1:$ssh_port"
else
    stop_pidfile "$DIR/sshd.pid"
    rm -rf "$SSHD"
    mkdir -p "$SSHD" /run/sshd
    chmod 700 "$SSHD"
    ssh-keygen -q -t ed25519 -N '' -f "$SSHD/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$SSHD/client_key"
    cp "$SSHD/client_key.pub" "$SSHD/authorized_keys"
    ssh_port=$(free_port)
    echo "$ssh_port" >"$DIR/sshd.port"
    cat >"$SSHD/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $ssh_port
HostKey $SSHD/host_key
PidFile $DIR/sshd.pid
AuthorizedKeysFile $SSHD/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
SetEnv DOCKER_HOST=unix://$SOCK
CONF
    cat >"$SSHD/ssh_config" <<CONF
Host reggie-test
    HostName 127.0.0.1
    Port $ssh_port
    User $(id -un)
    IdentityFile $SSHD/client_key
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
CONF
    log "starting sshd on 127.0.0.1:$ssh_port"
    /usr/sbin/sshd -f "$SSHD/sshd_config" -E "$DIR/sshd.log"
    wait_for sshd 20 ssh_ok || die "sshd did not start; see $DIR/sshd.log"
fi

cat >"$DIR/env" <<EOF
export DOCKER_HOST=unix://$SOCK
export REGGIE_TEST_REGISTRY=127.0.0.1:$registry_port
export REGGIE_TEST_MOTO=http://127.0.0.1:$moto_port
export REGGIE_TEST_REGISTRY_USER=$PLAIN_USER
export REGGIE_TEST_REGISTRY_PASSWORD='$PLAIN_PASSWORD'
export REGGIE_TEST_DOCKER2=unix://$SOCK2
export REGGIE_TEST_DOCKER_TCP=tcp://127.0.0.1:$tcp_port
export REGGIE_TEST_DOCKER_TLS=tcp://127.0.0.1:$tls_port
export REGGIE_TEST_DOCKER_CERTS=$TLS/client
export REGGIE_TEST_DOCKER_WRONG_CERTS=$TLS/wrong
export REGGIE_TEST_SSH_CONFIG=$SSHD/ssh_config
export REGGIE_TEST_BUILDKIT_TCP=tcp://127.0.0.1:$buildkit_tcp_port
export REGGIE_TEST_BUILDKIT_TLS=tcp://127.0.0.1:$buildkit_tls_port
export REGGIE_TEST_BUILDKIT_CERTS=$TLS/client
export REGGIE_TEST_BUILDKIT_WRONG_CERTS=$TLS/wrong
EOF
log "ready: . $DIR/env"
