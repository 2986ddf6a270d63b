"""Reads HTTP requests a notification sink received and parses each with
the official CloudEvents Python SDK (`cloudevents` from PyPI) in
structured mode, as a CloudEvents 1.0 event (the SDK validates the
required attributes and their types).

stdin: a JSON array of {"headers": {name: value}, "body": "..."}.
stdout: a JSON array of the events' attributes and data, in order.
Exit 1 naming the request that is not a structured-mode CloudEvent.
"""

import json
import sys

from cloudevents.core.bindings.http import HTTPMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent


def main() -> int:
    requests = json.load(sys.stdin)
    out = []
    for i, request in enumerate(requests):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        content_type = headers.get("content-type", "")
        if not content_type.startswith("application/cloudevents+json"):
            print(f"request {i}: content-type {content_type!r} is not structured mode", file=sys.stderr)
            return 1
        if any(k.startswith("ce-") for k in headers):
            print(f"request {i}: ce- headers in structured mode", file=sys.stderr)
            return 1
        # The SDK makes up an id and a time that are missing: they must
        # be the sender's own.
        raw = json.loads(request["body"])
        missing = [a for a in ("specversion", "id", "source", "type", "time") if a not in raw]
        if missing:
            print(f"request {i}: no {', '.join(missing)}", file=sys.stderr)
            return 1
        message = HTTPMessage(headers=headers, body=request["body"].encode("utf-8"))
        try:
            event = from_structured(message, JSONFormat(), CloudEvent)
        except Exception as e:  # the SDK's own refusal, shown as it says it
            print(f"request {i}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        time = event.get_time()
        out.append(
            {
                "specversion": event.get_specversion(),
                "id": event.get_id(),
                "source": event.get_source(),
                "type": event.get_type(),
                "subject": event.get_subject(),
                "time": time.isoformat() if time is not None else None,
                "time_utc": time is not None and time.utcoffset() is not None and time.utcoffset().total_seconds() == 0,
                "datacontenttype": event.get_datacontenttype(),
                "data": event.get_data(),
            }
        )
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
