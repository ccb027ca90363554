#!/usr/bin/env python3
"""A minimal smartcard for tests: connects to vpcd (pcscd's virtual reader
driver) and stays inserted until it is killed or the reader goes away.

It answers the vpcd controls (power off/on, reset, get ATR) and refuses
every command APDU with 6D00 (instruction not supported): enough for a card
that is present with an ATR.

vpcd's wire format: a 2-byte big-endian length, then the bytes; a 1-byte
message is a control (0 off, 1 on, 2 reset, 4 get ATR), anything longer is
a command APDU answered by a response APDU.

usage: vcard.py PORT [ATR_HEX]
"""
import socket
import sys

GET_ATR = 4
DEFAULT_ATR = "3b8880010000000000000000"  # any syntactically valid ATR


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        if hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def send_msg(sock, data):
    sock.sendall(len(data).to_bytes(2, "big") + data)


def main():
    port = int(sys.argv[1])
    atr = bytes.fromhex(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_ATR)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        head = recv_exact(sock, 2)
        if head is None:
            return
        msg = recv_exact(sock, int.from_bytes(head, "big"))
        if msg is None:
            return
        if len(msg) == 1:
            if msg[0] == GET_ATR:
                send_msg(sock, atr)
        elif len(msg) > 1:
            send_msg(sock, b"\x6d\x00")


if __name__ == "__main__":
    main()
