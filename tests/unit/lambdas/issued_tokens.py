"""A unit-test fixture: the resume tokens waits hand out, as the notify URL would see them.

Only a token's hash is stored, so a test that resumes a wait without a notify URL takes the
token from here: `record_issued_tokens` records every token `aiwf.callbacks` makes (the real
ones); a test module's fixture calls it.
"""

from __future__ import annotations

import pytest

from aiwf import callbacks, resume_tokens


def record_issued_tokens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens handed out during the test, oldest first."""
    issued: list[str] = []

    def new_resume_token() -> str:
        issued.append(resume_tokens.new_resume_token())
        return issued[-1]

    monkeypatch.setattr(callbacks, "new_resume_token", new_resume_token)
    return issued
