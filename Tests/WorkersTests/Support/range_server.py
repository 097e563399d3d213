#!/usr/bin/env python3
"""A loopback HTTP/1.1 file server for the download tests: Range requests, and faults on
demand by path prefix.
  /files/NAME          the file, honouring Range (206) and 416 past the end
  /drop/N/NAME         the first request sends N bytes of the body, then closes the socket
  /busy/K/NAME         the first K requests get 503
  /norange/NAME        ignores Range (always 200 with the whole file)
  /slow/NAME           sends the body in 64 KiB pieces, 50 ms apart
Prints the port on the first line of stdout; serves until killed or its stdin closes."""
import http.server, os, sys, threading, time

root = sys.argv[1]
counts = {}
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def first(self, key):
        with lock:
            counts[key] = counts.get(key, 0) + 1
            return counts[key]

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        mode, args, name = parts[0], parts[1:-1], parts[-1]
        path = os.path.join(root, name)
        if mode == "busy" and self.first(self.path) <= int(args[0]):
            return self.reply(503, b"busy\n")
        if not os.path.isfile(path):
            return self.reply(404, b"no such file\n")
        data = open(path, "rb").read()
        start, status = 0, 200
        header = self.headers.get("Range")
        if header and mode != "norange":
            start = int(header.split("=")[1].split("-")[0])
            if start >= len(data):
                return self.reply(416, b"", {"Content-Range": "bytes */%d" % len(data)})
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.end_headers()
        if mode == "drop" and self.first(self.path) == 1:
            self.wfile.write(body[: int(args[0])])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if mode == "slow":
            for i in range(0, len(body), 65536):
                self.wfile.write(body[i : i + 65536])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.wfile.write(body)

    def reply(self, status, body, headers={}):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

def exit_with_parent():
    # stdin is a pipe from the test process: EOF means it is gone, so this server goes too.
    sys.stdin.read()
    os._exit(0)

threading.Thread(target=exit_with_parent, daemon=True).start()
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
