"""The official `openai` Python client against `druppie serve`'s chat API.

Usage: openai-client.py BASE_URL API_KEY

Lists the models, asks a catalog question and a status question (each
whole and streamed), asks for a permit portal (whole, and streamed under
another plan name), and asks a model that is not druppie. Prints one JSON
object that tests/it/serve/chat.rs asserts on.
"""

import json
import sys
import time

import openai
from openai import OpenAI


def main():
    base, key = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)
    out = {"client": openai.__version__}
    out["models"] = [m.id for m in client.models.list()]

    def messages(text):
        return [
            {"role": "system", "content": "You are druppie."},
            {"role": "user", "content": text},
        ]

    def whole(text, **kw):
        r = client.chat.completions.create(
            model="druppie", messages=messages(text), **kw
        )
        choice = r.choices[0]
        return {
            "id": r.id,
            "object": r.object,
            "model": r.model,
            "role": choice.message.role,
            "content": choice.message.content,
            "finish_reason": choice.finish_reason,
            "usage": r.usage.total_tokens if r.usage else None,
            "druppie": (r.model_extra or {}).get("druppie"),
        }

    def streamed(text, **kw):
        pieces, finish, facts, usage, ids, roles = [], None, None, None, set(), []
        stream = client.chat.completions.create(
            model="druppie",
            messages=messages(text),
            stream=True,
            stream_options={"include_usage": True},
            **kw,
        )
        for chunk in stream:
            ids.add(chunk.id)
            if chunk.usage is not None:
                usage = chunk.usage.total_tokens
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            if choice.delta.role:
                roles.append(choice.delta.role)
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
                facts = (chunk.model_extra or {}).get("druppie")
        return {
            "content": "".join(pieces),
            "chunks": len(pieces),
            "ids": len(ids),
            "roles": roles,
            "finish_reason": finish,
            "usage": usage,
            "druppie": facts,
        }

    catalog = "which blocks give me a database?"
    status = "why is permits pending in prod?"
    portal = "a permit portal with a database for team-x"
    seconds = {}

    def timed(key, call, *args, **kw):
        started = time.monotonic()
        out[key] = call(*args, **kw)
        seconds[key] = round(time.monotonic() - started, 3)

    timed("catalog", whole, catalog)
    timed("catalog_stream", streamed, catalog)
    timed("status", whole, status)
    timed("status_stream", streamed, status)
    timed("proposal", whole, portal)
    timed("proposal_stream", streamed, portal, metadata={"name": "permit-portal-stream"})
    out["seconds"] = seconds
    try:
        client.chat.completions.create(model="gpt-4o", messages=messages(catalog))
        out["other_model"] = None
    except openai.APIStatusError as e:
        out["other_model"] = {"status": e.status_code, "code": e.code}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
