"""A webhook receiver for the notification tests that checks every delivery's signature with the
`standardwebhooks` package (PyPI; the Standard Webhooks reference implementation), not with any
code of sealpost's.

Usage: python webhook_receiver.py DIR [--fail-first N]
Reads the endpoint's secret (`whsec_…`) from DIR/secret at each request. Each request is logged
to DIR/requests.jsonl (`{"id", "verified", "status"}`); each verified delivery answered 2xx is
appended to DIR/deliveries.jsonl (`{"id", "payload"}`). The first N verified deliveries are
answered 500 (to prove retries). Prints "port PORT" once it listens.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    state = {"verified": 0}

    def log(name, record):
        with open(os.path.join(args.directory, name), "a") as f:
            f.write(json.dumps(record) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            msg_id = headers.get("webhook-id", "")
            try:
                with open(os.path.join(args.directory, "secret")) as f:
                    secret = f.read().strip()
                payload = Webhook(secret).verify(body, headers)
            except Exception as e:  # an unverifiable delivery is refused and recorded
                log("requests.jsonl", {"id": msg_id, "verified": False, "status": 400, "error": str(e)})
                self.send_response(400)
                self.end_headers()
                return
            state["verified"] += 1
            status = 500 if state["verified"] <= args.fail_first else 204
            log("requests.jsonl", {"id": msg_id, "verified": True, "status": status})
            if status == 204:
                log("deliveries.jsonl", {"id": msg_id, "payload": payload})
            self.send_response(status)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
