"""Error messages are bounded wherever they come from (issue 15 item 16: echoed input bloated answers and records)."""

from __future__ import annotations

from openkms.errors import MAX_MESSAGE_CHARS, MalformedPolicyDocumentException, ValidationException


def test_a_message_quoting_a_huge_input_is_cut() -> None:
    error = MalformedPolicyDocumentException("Invalid value '" + "x" * 40_000 + "' for condition.")
    assert len(error.message) < MAX_MESSAGE_CHARS + 64
    assert error.message.endswith(f"... ({40_000 + 31} characters)")


def test_ordinary_messages_are_unchanged() -> None:
    assert ValidationException("1 validation error detected").message == "1 validation error detected"
    assert ValidationException("x" * MAX_MESSAGE_CHARS).message == "x" * MAX_MESSAGE_CHARS
