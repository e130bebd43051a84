#!/usr/bin/python3
"""signal_server.py ADDR PORT DIR - the browser test's signalling: POST /offer
stores DIR/offer.sdp; GET /answer serves DIR/answer.sdp once it exists (204
before); GET /result?TEXT appends TEXT to DIR/result; GET /peer.html the page.
Bodies are capped at 64 KiB."""
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
page = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer.html")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = min(int(self.headers.get("Content-Length", "0")), 65536)
        body = self.rfile.read(n)
        if self.path == "/offer":
            with open(os.path.join(out, "offer.sdp"), "wb") as f:
                f.write(body)
            self.send(200)
        else:
            self.send(404)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/peer.html":
            with open(page, "rb") as f:
                self.send(200, f.read(), "text/html")
        elif path == "/answer":
            p = os.path.join(out, "answer.sdp")
            if os.path.exists(p):
                with open(p, "rb") as f:
                    self.send(200, f.read())
            else:
                self.send(204)
        elif path == "/result":
            with open(os.path.join(out, "result"), "a") as f:
                f.write(urllib.parse.unquote(query) + "\n")
            self.send(200)
        else:
            self.send(404)


HTTPServer((addr, port), Handler).serve_forever()
