"""Writes a Schemathesis config whose dictionaries hold things that exist in the gateway.

Usage: schemathesis_seed.py URL SENDER_TOKEN RECIPIENT_KEY ANSWER.json...

The answers are `sealpost send --json` outputs (transfers, with their links). This also starts
an unfinished resumable upload. Half the time Schemathesis takes an id, a name, a key or a link
token from these instead of inventing one, so it reaches past "not found" to the states behind
(available, held, collected, recalled).
"""

import base64
import hashlib
import json
import sys
import urllib.request

url, sender_token, recipient_key, *answer_files = sys.argv[1:]
answers = [json.load(open(path)) for path in answer_files]
transfers = [answer["id"] for answer in answers]
links = [link["url"].split("#", 1)[1] for answer in answers for link in answer["links"]]

request = urllib.request.Request(
    f"{url}/api/v1/uploads",
    method="POST",
    headers={
        "Authorization": f"Bearer {sender_token}",
        "Tus-Resumable": "1.0.0",
        "Upload-Length": "4096",
        "Upload-Metadata": "to " + base64.b64encode(b"hmpps/alice").decode(),
    },
)
with urllib.request.urlopen(request) as response:
    upload = response.headers["Location"].rsplit("/", 1)[1]
fingerprint = "sha256:" + hashlib.sha256(recipient_key.encode()).hexdigest()

dictionaries = {
    "ids": transfers + [upload],
    "orgs": ["acme", "hmpps", "dpo"],
    "names": ["bob", "alice", "olga"],
    "fingerprints": [fingerprint],
    "users": ["acme/bob", "hmpps/alice", "dpo/olga"],
    "links": links,
}
for name, values in dictionaries.items():
    print(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
print("[parameters]")
bindings = {
    "path.id": "ids",
    "path.org": "orgs",
    "path.name": "names",
    "path.from": "orgs",
    "path.to": "orgs",
    "path.fingerprint": "fingerprints",
    "query.transfer": "ids",
    "query.party": "users",
    "query.user": "users",
    "body.token": "links",
}
for key, dictionary in bindings.items():
    print(f'"{key}" = {{ dictionary = "{dictionary}", probability = 0.5 }}')
