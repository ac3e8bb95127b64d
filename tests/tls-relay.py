#!/usr/bin/env python3
"""A TLS-terminating relay in front of a unix socket, for the e2e tests.

    tls-relay.py PORT CERT KEY CA UNIX_SOCKET

Listens on 127.0.0.1:PORT, requires a client certificate signed by CA
(what dockerd's --tlsverify does), and relays each connection to
UNIX_SOCKET. socat's OPENSSL-LISTEN cannot serve here: it sets no session
id context, so a client resuming a session with a client certificate
(rustls does) is refused with "session id context uninitialized".
When either side closes, both are closed, so a client that drops a build
request makes the daemon see the connection close and cancel the build.
"""
import socket
import ssl
import sys
import threading


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


def serve(conn, ctx, unix_path):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (OSError, ssl.SSLError):
        conn.close()
        return
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(unix_path)
    except OSError:
        tls.close()
        return
    done = threading.Event()
    for a, b in ((tls, upstream), (upstream, tls)):
        threading.Thread(target=pump, args=(a, b, done), daemon=True).start()
    done.wait()
    for s in (tls, upstream):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def main():
    port, cert, key, ca, unix_path = sys.argv[1:6]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(64)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, ctx, unix_path), daemon=True).start()


if __name__ == "__main__":
    main()
