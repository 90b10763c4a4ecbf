"""Schemathesis hooks for sealpost's contract (loaded through SCHEMATHESIS_HOOKS).

tus appends bytes with `PATCH` and `Content-Type: application/offset+octet-stream`, a media type
Schemathesis does not know: it is raw bytes, serialised as `application/octet-stream` is.
"""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
