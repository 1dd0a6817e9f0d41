"""The credentials a wait hands out: its resume token and its wait id.

A wait's resume token is ours, not the engine's: 256 random bits, of which only the sha256 is
stored (the task's `resumeTokenHash`). The engine's own handle on the wait (a Step Functions task
token, a durable callback id) stays on the task record for the backend, so it never leaves in a
notification, an answer or a log line, and our token never reaches Step Functions (so no
execution history or execution-data log can show it). The wait id names the wait in its
`callbackUrl`; it is random too, but it is no credential: the token is.
"""

from __future__ import annotations

import hashlib
import secrets

# 32 random bytes: 256 bits, URL-safe base64 without padding (43 characters).
TOKEN_BYTES = 32
# 16 random bytes name a wait (128 bits: unique without coordination).
WAIT_ID_BYTES = 16


def new_resume_token() -> str:
    """A fresh resume token (256 random bits); only `token_hash` of it may be stored."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_wait_id() -> str:
    """A fresh, URL-safe wait id (the last segment of the wait's `callbackUrl`)."""
    return secrets.token_urlsafe(WAIT_ID_BYTES)


def token_hash(token: str) -> str:
    """What the task record keeps of a resume token: its sha256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def callback_url(task_api_url: str, wait_id: str) -> str | None:
    """`{taskApiUrl}/callbacks/{waitId}`; None when the function was not told the task API's URL."""
    return f"{task_api_url.rstrip('/')}/callbacks/{wait_id}" if task_api_url else None
