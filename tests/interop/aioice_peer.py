"""aioice_peer.py offer|answer STUN_IP STUN_PORT - aioice (Debian python3-aioice,
run with Debian's /usr/bin/python3) as the other ICE agent for
tests/ice_interop_test.sh. The same stdio protocol as nice_peer.c and
`stunkit punch --sdp`: SDP blocks ended by an empty line, then pings.
The last stdout line: "aioice: ready=1 pong=1 bye=1 controlling=1 local=<type> remote=<type>"."""
import asyncio
import sys

import aioice


def block(conn):
    lines = ["a=ice-ufrag:" + conn.local_username, "a=ice-pwd:" + conn.local_password]
    lines += ["a=candidate:" + c.to_sdp() for c in conn.local_candidates]
    lines.append("a=end-of-candidates")
    return "\n".join(lines) + "\n\n"


def read_block():
    lines = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            if lines:
                break
            continue
        lines.append(line)
        if line.startswith("a=end-of-candidates"):
            break
    return lines


async def main():
    role, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    offer = role == "offer"
    conn = aioice.Connection(ice_controlling=offer, stun_server=(ip, port), use_ipv6=False)
    await conn.gather_candidates()
    if offer:
        print(block(conn), end="", flush=True)
    remote = await asyncio.get_event_loop().run_in_executor(None, read_block)
    if not offer:
        print(block(conn), end="", flush=True)
    for line in remote:
        if line.startswith("a=ice-ufrag:"):
            conn.remote_username = line[12:]
        elif line.startswith("a=ice-pwd:"):
            conn.remote_password = line[10:]
    for line in remote:
        if line.startswith("a=candidate:"):
            await conn.add_remote_candidate(aioice.Candidate.from_sdp(line[12:]))
    await conn.add_remote_candidate(None)
    ready = pong = bye = 0
    try:
        await asyncio.wait_for(conn.connect(), 15)
        ready = 1
        await conn.send(b"SKP1 ping 100")
        while not bye:
            data = await asyncio.wait_for(conn.recv(), 10)
            text = data.decode(errors="replace")
            if text.startswith("SKP1 ping "):
                await conn.send(("SKP1 pong " + text[10:]).encode())
            elif text == "SKP1 pong 100":
                pong = 1
            elif text.startswith("SKP1 bye"):
                await conn.send(b"SKP1 bye")
                bye = 1
    except Exception as e:  # a timeout or a failed connect: reported below
        print("aioice_peer:", repr(e), file=sys.stderr)
    pair = conn._nominated.get(1) if hasattr(conn, "_nominated") else None
    local = pair.local_candidate.type if pair else "none"
    remote_type = pair.remote_candidate.type if pair else "none"
    print(f"aioice: ready={ready} pong={pong} bye={bye} controlling={int(conn.ice_controlling)} "
          f"local={local} remote={remote_type}", flush=True)
    await asyncio.sleep(0.2)
    await conn.close()
    return 0 if ready and pong else 1


sys.exit(asyncio.run(main()))
