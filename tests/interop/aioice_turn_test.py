#!/usr/bin/python3
"""aioice_turn_test.py HOST PORT - aioice's TURN client (Debian python3-aioice)
against stunkitd: two allocations, over UDP and over TCP, each the other's
peer; 20 datagrams each way through both relays must all arrive. Exit 0 on
success, 1 on failure, 77 when aioice is not installed (skip)."""
import asyncio
import sys

try:
    from aioice import turn
except ImportError:
    print("skip: aioice not installed for this interpreter")
    sys.exit(77)

HOST, PORT = sys.argv[1], int(sys.argv[2])
USER, PASSWORD = "alice", "turn-secret"


class Echo(asyncio.DatagramProtocol):
    def __init__(self, name, echo):
        self.name, self.echo, self.got, self.transport = name, echo, [], None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.got.append(data)
        if self.echo:
            self.transport.sendto(b"echo:" + data, addr)


async def main():
    failures = 0
    for transport in ("udp", "tcp"):
        a_tr, a = await turn.create_turn_endpoint(lambda: Echo("a", False), (HOST, PORT), USER, PASSWORD,
                                                   transport=transport)
        b_tr, b = await turn.create_turn_endpoint(lambda: Echo("b", True), (HOST, PORT), USER, PASSWORD,
                                                   transport=transport)
        a_addr, b_addr = a_tr.get_extra_info("sockname"), b_tr.get_extra_info("sockname")
        # B must permit A before A's data can reach it: B sends first (it binds a channel)
        b_tr.sendto(b"hello", a_addr)
        await asyncio.sleep(0.2)
        for i in range(20):
            a_tr.sendto(b"ping %d" % i, b_addr)
            await asyncio.sleep(0.01)
        for _ in range(50):
            if len([d for d in a.got if d.startswith(b"echo:")]) >= 20:
                break
            await asyncio.sleep(0.05)
        echoes = len([d for d in a.got if d.startswith(b"echo:")])
        ok = echoes == 20 and sum(1 for d in b.got if d.startswith(b"ping")) == 20
        print("%s   aioice over %s: relayed %s and %s, %d of 20 echoed" %
              ("ok" if ok else "FAIL", transport, a_addr, b_addr, echoes))
        failures += 0 if ok else 1
        a_tr.close()
        b_tr.close()
        await asyncio.sleep(0.2)
    return failures


sys.exit(1 if asyncio.run(asyncio.wait_for(main(), 30)) else 0)
