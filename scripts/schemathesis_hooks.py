"""Schemathesis hooks for scripts/schemathesis.sh (loaded by `hooks` in schemathesis.toml).

The OpenAPI document says what a request may look like; some valid-looking values still
name data the seeded mall does not have, or collide with what an earlier request left.
Schemathesis cannot know them, and the server rightly refuses them with 422. Like
`path.tenant` in schemathesis.toml, these hooks supply that data, and only to the
requests schemathesis means as valid (positive), so requests meant as invalid stay as
they were generated:

- a body's `currency` (and each credit's in `items`) names the mall's `points`: another
  code in the document's form is a currency the mall does not have;
- `Idempotency-Key` is new for every request: schemathesis draws short keys that repeat,
  and a key reused with another body is refused (422 `idempotency_key_reused`, as the
  IETF Idempotency-Key draft has it);
- the seeded member proves its own phone (`kind`), the one identifier it has;
- a sign-up's `invite_code` is the seeded member's (`ST_INVITE_CODE`), one that exists;
- the clock: a credit's `expires_at` is in the future, an event's `occurred_at` is not,
  nor a member's `birthday` (a date from 1900 to today);
- a tenant archive (`application/gzip`, the operator's import) is raw bytes, plain or
  gzip-compressed, none of them a valid archive: schemathesis has no generator for it.
"""

import datetime
import gzip
import os
import uuid

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type(
    "application/gzip", st.one_of(st.binary(max_size=512), st.binary(max_size=512).map(gzip.compress))
)

VERIFICATION = {"/v1/tenants/{tenant}/me/verification", "/v1/tenants/{tenant}/me/verification-codes"}
REGISTER = "/v1/tenants/{tenant}/auth/register"


def _positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not _positive(case):
        return
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            headers[name] = str(uuid.uuid4())
    body = case.body
    if not isinstance(body, dict):
        return
    if "currency" in body:
        body["currency"] = "points"
    now = datetime.datetime.now(datetime.timezone.utc)
    items = body.get("items")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and "currency" in item:
                item["currency"] = "points"
            if isinstance(item, dict) and item.get("expires_at") is not None:
                item["expires_at"] = (now + datetime.timedelta(days=30)).isoformat()
    events = body.get("events")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, dict) and event.get("occurred_at") is not None:
                event["occurred_at"] = (now - datetime.timedelta(minutes=1)).isoformat()
    if body.get("birthday") is not None:
        body["birthday"] = "1990-05-01"
    path = case.operation.path
    if path in VERIFICATION and "kind" in body:
        body["kind"] = "phone"
    if path == REGISTER and body.get("invite_code") is not None:
        body["invite_code"] = os.environ["ST_INVITE_CODE"]
