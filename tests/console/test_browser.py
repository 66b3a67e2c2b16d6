"""The console in headless Chromium (Debian's ``chromium``, driven by Playwright's Python package with the
system browser: no browser download). The walk-through an operator makes: sign in with the keyboard, create a
key with a tag and an alias, break the policy and fix it, disable and re-enable the key, find the audit record
of an Encrypt made with boto3, look at usage, sign out. Every page is saved as a screenshot under
``artifacts/console-screenshots/`` (README, "Console"), or ``$OPENKMS_SCREENSHOT_DIR``.

Without Chromium or Playwright the test skips and says why; ``.ci/run`` sets ``OPENKMS_REQUIRE_BROWSER=1`` and
installs both, so CI never skips it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("OPENKMS_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(
    os.environ.get("OPENKMS_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "artifacts" / "console-screenshots")
)


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (scripts/bootstrap test installs it)"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        if os.environ.get("OPENKMS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are mandatory here: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


def _shot(page: Any, engine: str, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{engine}-{name}.png"), full_page=True)


def test_an_operator_manages_a_key_and_finds_its_use_in_the_audit_trail(
    server: ServerProcess, kms: Any, browser: Any
) -> None:
    engine = "postgres" if server.database_url.startswith("postgres") else "sqlite"
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    base = server.endpoint
    alias = f"alias/browser-{secrets.token_hex(4)}"

    # Sign in with the keyboard only: the access key field has focus, Tab moves on, Enter submits.
    page.goto(f"{base}/console/keys")
    assert page.url.startswith(f"{base}/console/sign-in")
    _shot(page, engine, "01-sign-in")
    page.keyboard.type(ACCESS_KEY_ID)
    page.keyboard.press("Tab")
    page.keyboard.type(SECRET_ACCESS_KEY)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/keys")
    cookie = next(c for c in context.cookies() if c["name"] == "openkms_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
    _shot(page, engine, "02-keys")

    # Create a key with a tag and an alias.
    page.get_by_role("link", name="Create key").click()
    page.get_by_label("Key spec").select_option("SYMMETRIC_DEFAULT")
    page.get_by_label("Alias").fill(alias)
    page.get_by_label("Description").fill("payments, production")
    page.get_by_label("Tag key 1").fill("env")
    page.get_by_label("Tag value 1").fill("production")
    _shot(page, engine, "03-create-key")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url(re.compile(r".*/console/keys/[0-9a-f-]{36}\?done=created$"))
    key_id = page.url.split("/console/keys/")[1].split("?")[0]
    assert page.get_by_role("status").inner_text() == "Key created."
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key_id
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "env", "TagValue": "production"}]
    _shot(page, engine, "04-key-detail")

    # The keys page finds it by its tag.
    page.goto(f"{base}/console/keys")
    page.get_by_label("Tag").fill("env=production")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_role("link", name=key_id).is_visible()

    # A policy with an error is refused and the error shows beside the editor; the fixed one saves.
    page.goto(f"{base}/console/keys/{key_id}")
    editor = page.get_by_label("Policy document (JSON)")
    good = json.loads(editor.input_value())
    editor.fill(json.dumps(good, indent=2).replace('"Effect": "Allow"', '"Effect": "Allow",', 1))
    page.get_by_role("button", name="Save policy").click()
    error = page.locator("#error-policy")
    assert "MalformedPolicyDocumentException" in error.inner_text() and "Line " in error.inner_text()
    assert page.get_by_label("Policy document (JSON)").get_attribute("aria-invalid") == "true"
    _shot(page, engine, "05-policy-error")
    good["Statement"][0]["Sid"] = "Fixed in the browser"
    page.get_by_label("Policy document (JSON)").fill(json.dumps(good, indent=2))
    page.get_by_role("button", name="Save policy").click()
    assert page.get_by_role("status").inner_text() == "Key policy saved."
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == good

    # Disable, then enable again: boto3 sees both at once.
    page.get_by_role("button", name="Disable key").click()
    assert "Key disabled" in page.get_by_role("status").inner_text()
    _shot(page, engine, "06-disabled")
    with pytest.raises(Exception, match="DisabledException"):
        kms.encrypt(KeyId=key_id, Plaintext=b"refused")
    page.get_by_role("button", name="Enable key").click()
    assert page.get_by_role("status").inner_text() == "Key enabled."

    # An Encrypt through boto3 shows up in the audit explorer, found by key and operation.
    request_id = kms.encrypt(KeyId=alias, Plaintext=b"browser canary")["ResponseMetadata"]["RequestId"]
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Key (id, ARN or alias)").fill(alias)
    page.get_by_label("Operation").fill("Encrypt")
    page.get_by_label("Outcome").select_option("success")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.audit tbody tr")
    assert rows.count() == 1
    rows.first.locator("summary").click()
    record = json.loads(rows.first.locator("pre").inner_text())
    assert record["requestID"] == request_id and record["eventName"] == "Encrypt"
    assert record["resources"][0]["ARN"].endswith(key_id)
    assert "browser canary" not in page.content()
    _shot(page, engine, "07-audit")

    page.get_by_role("link", name="Usage").click()
    assert page.get_by_role("heading", name="Monthly cost estimate").is_visible()
    _shot(page, engine, "08-usage")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/console/sign-in.*"))
    page.goto(f"{base}/console/keys")
    assert page.url.startswith(f"{base}/console/sign-in")
    context.close()
