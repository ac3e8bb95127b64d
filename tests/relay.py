#!/usr/bin/env python3
"""The test daemon behind the listeners the e2e tests need, relayed to its
unix socket.

    relay.py docker PORT UNIX_SOCKET CERT KEY CA          # the API over mutual TLS
    relay.py buildkit PORT UNIX_SOCKET [CERT KEY CA]      # BuildKit over gRPC
    relay.py buildkit unix:PATH UNIX_SOCKET               # ... on a unix socket
    relay.py --check PORT [CERT KEY CA]                   # is BuildKit served?

Listens on 127.0.0.1:PORT (or unix:PATH). With CERT/KEY/CA it terminates
TLS and requires a client certificate signed by CA, as dockerd's
--tlsverify and buildkitd's --tlscacert do. socat's OPENSSL-LISTEN cannot
serve here: it sets no session id context, so a client resuming a session
with a client certificate (rustls does) is refused with "session id
context uninitialized".

`docker` pipes each connection to UNIX_SOCKET as it is: the Engine API
over TLS. `buildkit` first asks the daemon for its BuildKit Control API
(`POST /grpc` upgraded to h2c, as buildx's docker driver does), waits for
the 101 and then pipes, so the client speaks gRPC to the real engine as it
would to a standalone buildkitd (`tcp://` address); its TLS offers ALPN h2.

When either side closes, both are closed, so a client that drops a build
request makes the daemon see the connection close and cancel the build.
"""
import socket
import ssl
import sys
import threading

UPGRADE = (
    b"POST /grpc HTTP/1.1\r\n"
    b"Host: docker\r\n"
    b"Connection: Upgrade\r\n"
    b"Upgrade: h2c\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def pump(src, dst, done):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        done.set()


def plain(unix_path):
    """The daemon's socket as it is."""
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.connect(unix_path)
    return upstream, b""


def upgrade(unix_path):
    """The daemon's socket, switched to h2c gRPC; bytes read past the 101."""
    upstream, _ = plain(unix_path)
    upstream.sendall(UPGRADE)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = upstream.recv(4096)
        if not chunk or len(head) > 65536:
            raise OSError("the daemon closed the /grpc upgrade")
        head += chunk
    status, rest = head.split(b"\r\n\r\n", 1)
    if b" 101 " not in status.split(b"\r\n", 1)[0] + b" ":
        raise OSError("the daemon refused /grpc: %r" % status[:200])
    return upstream, rest


def serve(conn, ctx, unix_path, connect):
    if ctx is not None:
        try:
            conn = ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
    try:
        upstream, early = connect(unix_path)
    except OSError as e:
        print("relay: %s" % e, file=sys.stderr, flush=True)
        conn.close()
        return
    try:
        if early:
            conn.sendall(early)
    except OSError:
        pass
    done = threading.Event()
    for a, b in ((conn, upstream), (upstream, conn)):
        threading.Thread(target=pump, args=(a, b, done), daemon=True).start()
    done.wait()
    for s in (conn, upstream):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def check(port, tls_files):
    """Exit 0 when an HTTP/2 server answers on 127.0.0.1:PORT (its SETTINGS)."""
    conn = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    if tls_files:
        cert, key, ca = tls_files
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["h2"])
        conn = ctx.wrap_socket(conn, server_hostname="127.0.0.1")
    conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    frame = b""
    while len(frame) < 9:
        chunk = conn.recv(9 - len(frame))
        if not chunk:
            sys.exit(1)
        frame += chunk
    conn.close()
    sys.exit(0 if frame[3] == 4 else 1)


def usage():
    sys.exit(__doc__.split("\n\n")[1])


def main():
    args = sys.argv[1:]
    if args[:1] == ["--check"] and len(args) in (2, 5):
        check(args[1], args[2:5])
    if len(args) not in (3, 6) or args[0] not in ("docker", "buildkit"):
        usage()
    mode, port, unix_path = args[:3]
    connect = upgrade if mode == "buildkit" else plain
    ctx = None
    if len(args) == 6:
        cert, key, ca = args[3:6]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        if mode == "buildkit":
            ctx.set_alpn_protocols(["h2"])
    elif mode == "docker":
        usage()
    if port.startswith("unix:"):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(port[len("unix:"):])
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(port)))
    listener.listen(64)
    while True:
        conn, _ = listener.accept()
        if conn.family == socket.AF_INET:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn, ctx, unix_path, connect), daemon=True).start()


if __name__ == "__main__":
    main()
