#!/usr/bin/python3
# fwd_app.py MY_PORT PUNCH_PORT SEND EXPECT - a UDP application behind
# `stunkit punch --forward`: sends SEND to 127.0.0.1:PUNCH_PORT from
# 127.0.0.1:MY_PORT until EXPECT comes back (at most 15 s); exit 0 when it did.
import socket, sys, time
me, punch, send, expect = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", me))
s.settimeout(0.2)
got = False
end = time.time() + 15
while time.time() < end:
    s.sendto(send.encode(), ("127.0.0.1", punch))
    try:
        d, a = s.recvfrom(2048)
        if d.decode(errors="replace") == expect:
            got = True
            # a few more so the other side gets ours too
            for _ in range(10):
                s.sendto(send.encode(), ("127.0.0.1", punch)); time.sleep(0.05)
            break
    except socket.timeout:
        pass
print("got" if got else "nothing")
sys.exit(0 if got else 1)
