#!/usr/bin/python3
"""stun_probe.py - fixed STUN requests from a fixed address, their answers
as hex, one line each ("none" when nothing came back in 0.5 s). The XDP lab
sends the same set to stunkitd with and without --xdp and compares.

Usage: stun_probe.py LOCAL_IP LOCAL_PORT SERVER_IP PORT [PORT2]
       stun_probe.py --garbage SERVER_IP PORT COUNT   (non-STUN datagrams)
       stun_probe.py --paced SERVER_IP PORT RATE SECONDS (a well-behaved
           client: RATE Binding requests a second, each answer matched by
           transaction ID; prints sent, answered, lost)
"""
import socket
import struct
import sys
import zlib

COOKIE = 0x2112A442


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def msg(attrs, tid, fingerprint=False, cookie=True, mtype=0x0001):
    body = b"".join(attrs)
    head_tid = struct.pack("!I", COOKIE) + tid if cookie else tid
    if fingerprint:
        head = struct.pack("!HH", mtype, len(body) + 8) + head_tid
        crc = zlib.crc32(head + body) ^ 0x5354554E
        return head + body + attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HH", mtype, len(body)) + head_tid + body


def requests(rfc5780):
    tid = bytes(range(1, 13))
    out = [
        ("plain", msg([], tid)),
        ("fingerprint", msg([], tid, True)),
        ("software+fingerprint", msg([attr(0x8022, b"stun_probe 1.0")], tid, True)),
        ("optional attribute", msg([attr(0x8055, b"\x01\x02\x03")], tid)),
        ("rfc3489", msg([], bytes(range(1, 17)), cookie=False)),
        ("unknown required (420)", msg([attr(0x0FFF, b"\0\0\0\0")], tid, True)),
        ("bad fingerprint", msg([], tid, True)[:-1] + b"\0"),
    ]
    if rfc5780:
        out.append(("change-request", msg([attr(0x0003, struct.pack("!I", 2))], tid, True)))
    return out


def probe(local_ip, local_port, server, ports):
    fam = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((local_ip, local_port))
    s.settimeout(0.5)
    for port in ports:
        for name, req in requests(len(ports) > 1):
            s.sendto(req, (server, port))
            try:
                data, frm = s.recvfrom(2048)
                print("%s %d %s: %s from %s" % (server, port, name, data.hex(), frm[1]))
            except socket.timeout:
                print("%s %d %s: none" % (server, port, name))


def garbage(server, port, count):
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    junk = b"\x80" * 40
    for _ in range(count):
        s.sendto(junk, (server, port))


def paced(server, port, rate, seconds):
    import os
    import time
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setblocking(False)
    want = set()
    sent = answered = 0
    start = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        tid = os.urandom(12)
        want.add(tid)
        # with FINGERPRINT, as real clients send: the answer stays within
        # twice the request (the general budget, not the strict one)
        s.sendto(msg([], tid, True), (server, port))
        sent += 1
        deadline = start + (i + 1) / rate
        while True:
            try:
                data, _ = s.recvfrom(2048)
                if len(data) >= 20 and data[8:20] in want:
                    want.discard(data[8:20])
                    answered += 1
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.002))
    end = time.monotonic() + 1.0
    while want and time.monotonic() < end:
        try:
            data, _ = s.recvfrom(2048)
            if data[8:20] in want:
                want.discard(data[8:20])
                answered += 1
        except BlockingIOError:
            time.sleep(0.01)
    print("sent %d, answered %d, lost %d" % (sent, answered, sent - answered))


if __name__ == "__main__":
    if sys.argv[1] == "--paced":
        paced(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1] == "--garbage":
        garbage(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        probe(sys.argv[1], int(sys.argv[2]), sys.argv[3], [int(p) for p in sys.argv[4:]])
