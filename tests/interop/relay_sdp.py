"""relay_sdp.py OFFER_CMD... -- ANSWER_CMD... - runs two ICE peers that speak
the `stunkit punch --sdp` stdio protocol and carries their descriptions
(SDP blocks ended by an empty line) between them: the offer's to the answer,
the answer's back. Then waits (30 s at most) and prints each side's
remaining output, prefixed "offer: " / "answer: ", and their exit codes."""
import subprocess
import sys
import threading

args = sys.argv[1:]
cut = args.index("--")
offer_cmd, answer_cmd = args[:cut], args[cut + 1:]
offer = subprocess.Popen(offer_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
answer = subprocess.Popen(answer_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def read_block(proc):
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line.rstrip("\r\n"))
    return lines


def give(proc, lines):
    proc.stdin.write("\n".join(lines) + "\n\n")
    proc.stdin.flush()


timer = threading.Timer(30, lambda: (offer.kill(), answer.kill()))
timer.start()
try:
    o = read_block(offer)
    give(answer, o)
    a = read_block(answer)
    give(offer, a)
    print("offer-description: " + " | ".join(o))
    print("answer-description: " + " | ".join(a))
    for name, proc in (("offer", offer), ("answer", answer)):
        for line in proc.stdout:
            print(name + ": " + line.rstrip())
        print(name + "-exit: " + str(proc.wait()))
finally:
    timer.cancel()
