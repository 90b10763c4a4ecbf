"""A real SMTP server for the notification tests: aiosmtpd (PyPI), storing each message it
accepts as one JSON file in a directory (`to`, `from`, `subject`, the decoded text `body`, and
the `raw` message); with --refuse N it answers the first N messages' DATA with a
permanent refusal (550), as a mail server that rejects mail does.

With --starttls CERT KEY it offers STARTTLS with that certificate and refuses mail sent without
it (aiosmtpd's require_starttls).

Usage: python smtp_server.py PORT DIR [--refuse N] [--starttls CERT KEY]
Prints "ready" once it listens; runs until killed.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory, refuse):
        self.directory = directory
        self.refuse = refuse
        self.seen = 0

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.seen <= self.refuse:
            with open(os.path.join(self.directory, "refused.log"), "a") as log:
                log.write(f"{self.seen}\n")
            return "550 5.7.1 refused by the test server"
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        record = {
            "to": envelope.rcpt_tos,
            "from": str(message["from"]),
            "subject": str(message["subject"]),
            "content_type": message.get_content_type(),
            "body": message.get_content(),
            "raw": envelope.original_content.decode("utf-8", "replace"),
        }
        path = os.path.join(self.directory, f"{self.seen:04d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("directory")
    parser.add_argument("--refuse", type=int, default=0)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    tls = {}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(Store(args.directory, args.refuse), hostname="127.0.0.1", port=args.port, **tls)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
