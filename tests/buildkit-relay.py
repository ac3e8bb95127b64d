#!/usr/bin/env python3
"""The Docker daemon's embedded BuildKit as a buildkitd-like gRPC listener.

    buildkit-relay.py PORT UNIX_SOCKET                 # plain h2c
    buildkit-relay.py unix:PATH UNIX_SOCKET            # on a unix socket
    buildkit-relay.py PORT UNIX_SOCKET CERT KEY CA     # mutual TLS
    buildkit-relay.py --check PORT [CERT KEY CA]       # is it serving?

Listens on 127.0.0.1:PORT. For each connection it opens UNIX_SOCKET, asks
the daemon for its BuildKit Control API (`POST /grpc` upgraded to h2c, as
buildx's docker driver does), waits for the 101 and then pipes bytes both
ways, so the client speaks gRPC to the real engine as it would to a
standalone buildkitd (`tcp://` address). With CERT/KEY/CA it terminates
TLS first and requires a client certificate signed by CA, as buildkitd's
--tlscacert does. When either side closes, both are closed.
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


def upgrade(unix_path):
    """The daemon's socket, switched to h2c gRPC; bytes read past the 101."""
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.connect(unix_path)
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


def serve(conn, ctx, unix_path):
    if ctx is not None:
        try:
            conn = ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
    try:
        upstream, early = upgrade(unix_path)
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


def main():
    if sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3:6])
    port, unix_path = sys.argv[1:3]
    ctx = None
    if len(sys.argv) >= 6:
        cert, key, ca = sys.argv[3:6]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["h2"])
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
        threading.Thread(target=serve, args=(conn, ctx, unix_path), daemon=True).start()


if __name__ == "__main__":
    main()
