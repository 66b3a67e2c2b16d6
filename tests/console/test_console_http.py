"""The console over real HTTP on both engines: sign-in, the session cookie, CSRF, sign-out, revocation, and
that every console action is the same authorised, audited operation as an API call (checked with boto3 and
``openkms audit query``)."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.console.web_client import Answer, Browser, location_path
from tests.e2e.principals import iam, make_user, put_policy
from tests.e2e.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess

pytestmark = pytest.mark.e2e


def audit(server: ServerProcess, *filters: str) -> list[dict[str, Any]]:
    result = server.openkms("audit", "query", "--json", "--limit", "200", *filters)
    assert result.returncode == 0, result.stderr
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def signed_in(server: ServerProcess, access_key_id: str = ACCESS_KEY_ID, secret: str = SECRET_ACCESS_KEY) -> Browser:
    browser = Browser(server, user_agent=f"console-test/{secrets.token_hex(4)}")
    answer = browser.sign_in(access_key_id, secret)
    assert answer.status == 303, answer.body
    return browser


# ---- sign-in, cookie, sign-out ------------------------------------------------------------------------------


def test_pages_need_a_session_and_remember_where_to_return(server: ServerProcess) -> None:
    browser = Browser(server)
    answer = browser.get("/console/audit?operation=Encrypt")
    assert answer.status == 303
    assert location_path(answer) == "/console/sign-in?next=%2Fconsole%2Faudit%3Foperation%3DEncrypt"
    assert browser.get("/console").header("location") == "/console/keys"
    token = browser.get("/console/sign-in").csrf()
    back = browser.request(
        "POST",
        "/console/sign-in",
        {"csrf": token, "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
         "next": "/console/audit?operation=Encrypt"},
    )  # fmt: skip
    assert location_path(back) == "/console/audit?operation=Encrypt"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console/keys", "/other", "javascript:x"])
def test_sign_in_never_redirects_off_the_console(server: ServerProcess, target: str) -> None:
    browser = Browser(server)
    token = browser.get("/console/sign-in").csrf()
    back = browser.request(
        "POST",
        "/console/sign-in",
        {"csrf": token, "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "next": target},
    )
    assert back.status == 303 and back.header("location") == "/console/keys"


def test_the_session_cookie_is_httponly_samesite_scoped_and_expires(server: ServerProcess) -> None:
    browser = Browser(server)
    answer = browser.sign_in()
    session = [c for c in answer.cookies_set() if c.startswith("openkms_session=")]
    assert len(session) == 1
    attributes = {part.strip().split("=")[0]: part.strip() for part in session[0].split(";")[1:]}
    assert attributes["HttpOnly"] == "HttpOnly"
    assert attributes["SameSite"] == "SameSite=Strict"
    assert attributes["Path"] == "Path=/console"
    assert attributes["Max-Age"] == "Max-Age=28800"
    assert "Secure" not in attributes  # plain HTTP here; under TLS: __Host-, Secure, Path=/ (test_console_hostile.py)
    token = browser.jar["openkms_session"]
    assert len(token) >= 43 and SECRET_ACCESS_KEY not in answer.body


def test_a_wrong_secret_is_refused_and_recorded_without_the_secret(server: ServerProcess) -> None:
    browser = Browser(server, user_agent=f"wrong-secret/{secrets.token_hex(4)}")
    canary = f"canary-{secrets.token_hex(12)}"
    answer = browser.sign_in(ACCESS_KEY_ID, canary)
    assert answer.status == 401
    assert "openkms_session" not in browser.jar
    assert "incorrect" in answer.body and canary not in answer.body
    assert browser.get("/console/keys").status == 303
    failures = [
        r
        for r in audit(server, "--operation", "ConsoleLogin", "--outcome", "failure", "--since", "10m")
        if browser.user_agent in r["userAgent"]
    ]
    assert len(failures) == 1
    record = failures[0]
    assert record["eventSource"] == "signin.amazonaws.com"
    assert record["responseElements"] == {"ConsoleLogin": "Failure"}
    assert record["userIdentity"].get("accessKeyId") == ACCESS_KEY_ID
    assert canary not in json.dumps(record)


def test_a_successful_sign_in_is_recorded_as_console_login(server: ServerProcess) -> None:
    browser = signed_in(server)
    logins = [
        r
        for r in audit(server, "--operation", "ConsoleLogin", "--outcome", "success", "--since", "10m")
        if browser.user_agent in r["userAgent"]
    ]
    assert len(logins) == 1
    assert logins[0]["responseElements"] == {"ConsoleLogin": "Success"}
    assert logins[0]["userIdentity"]["accessKeyId"] == ACCESS_KEY_ID


def test_sign_out_ends_the_session_on_the_server(server: ServerProcess) -> None:
    browser = signed_in(server)
    stolen = dict(browser.jar)  # what someone who copied the cookie would hold
    out = browser.post("/console/sign-out", {}, csrf_from="/console/keys")
    assert out.status == 303 and "openkms_session" not in browser.jar
    replay = Browser(server, jar=stolen)
    assert replay.get("/console/keys").status == 303  # back to sign-in: the token is gone server-side


def test_deactivating_the_access_key_ends_its_console_sessions_at_once(server: ServerProcess) -> None:
    user = make_user(server, "console-revoked", policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})  # fmt: skip
    browser = signed_in(server, *user.credentials)
    assert browser.get("/console/keys").status == 200
    iam(server, "update-access-key", "--access-key-id", user.credentials[0], "--status", "Inactive")
    assert browser.get("/console/keys").status == 303
    iam(server, "update-access-key", "--access-key-id", user.credentials[0], "--status", "Active")
    assert browser.get("/console/keys").status == 200  # the session itself had not expired


# ---- CSRF -----------------------------------------------------------------------------------------------------


def _describe(server: ServerProcess, key_id: str) -> dict[str, Any]:
    metadata: dict[str, Any] = server.client().describe_key(KeyId=key_id)["KeyMetadata"]
    return metadata


def test_a_post_without_the_sessions_csrf_token_changes_nothing(server: ServerProcess, key_id: str) -> None:
    mine, other = signed_in(server), signed_in(server)
    path = f"/console/keys/{key_id}/disable"
    assert mine.request("POST", path, {}).status == 403
    assert mine.request("POST", path, {"csrf": other.get("/console/keys").csrf()}).status == 403
    assert mine.request("POST", path, {"csrf": "x" * 43}).status == 403
    assert _describe(server, key_id)["KeyState"] == "Enabled"
    token = mine.get("/console/keys").csrf()
    forged = mine.request("POST", path, {"csrf": token}, headers={"Origin": "https://evil.example"})
    assert forged.status == 403
    assert _describe(server, key_id)["KeyState"] == "Enabled"
    assert mine.request("POST", path, {"csrf": token}).status == 303
    assert _describe(server, key_id)["KeyState"] == "Disabled"


def test_the_sign_in_form_is_csrf_protected_too(server: ServerProcess) -> None:
    browser = Browser(server)
    browser.get("/console/sign-in")
    answer = browser.request(
        "POST", "/console/sign-in", {"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY}
    )
    assert answer.status == 403 and "openkms_session" not in browser.jar


# ---- pages act as the signed-in principal, authorised and audited ---------------------------------------------


def test_create_key_with_tag_and_alias_is_the_api_create_key(server: ServerProcess, kms: Any) -> None:
    browser = signed_in(server)
    alias = f"alias/console-{secrets.token_hex(4)}"
    answer = browser.post(
        "/console/keys/new",
        [("spec", "SYMMETRIC_DEFAULT"), ("usage", "ENCRYPT_DECRYPT"), ("description", "from the console"),
         ("alias", alias), ("tag_key", "env"), ("tag_value", "production"), ("tag_key", ""), ("tag_value", "")],
    )  # fmt: skip
    assert answer.status == 303, answer.body
    key_id = re.fullmatch(r"/console/keys/([0-9a-f-]{36})\?done=created", location_path(answer))
    assert key_id is not None
    key = key_id.group(1)
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key
    assert kms.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "env", "TagValue": "production"}]
    records = audit(server, "--key-id", key, "--since", "10m")
    created = [r for r in records if r["eventName"] == "CreateKey"]
    assert len(created) == 1
    assert created[0]["userAgent"].startswith("openkms-console (console-test/")
    assert created[0]["userIdentity"]["accessKeyId"] == ACCESS_KEY_ID
    assert created[0]["sourceIPAddress"] == "127.0.0.1"
    assert any(r["eventName"] == "CreateAlias" for r in records)
    listed = browser.get("/console/keys?tag=env%3Dproduction&alias=" + alias.split("/")[1])
    assert listed.status == 200 and key in listed.body and alias in listed.body


def test_keys_page_filters_by_tag_state_spec_and_alias(server: ServerProcess, kms: Any) -> None:
    marker = secrets.token_hex(4)
    hmac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC",
                              Tags=[{"TagKey": "team", "TagValue": marker}])["KeyMetadata"]["KeyId"]  # fmt: skip
    disabled = kms.create_key(Tags=[{"TagKey": "team", "TagValue": marker}])["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    kms.create_alias(AliasName=f"alias/filter-{marker}", TargetKeyId=disabled)
    browser = signed_in(server)
    by_tag = browser.get(f"/console/keys?tag=team%3D{marker}").body
    assert hmac_key in by_tag and disabled in by_tag
    by_spec = browser.get(f"/console/keys?tag=team%3D{marker}&spec=HMAC_256").body
    assert hmac_key in by_spec and disabled not in by_spec
    by_state = browser.get(f"/console/keys?tag=team%3D{marker}&state=Disabled").body
    assert disabled in by_state and hmac_key not in by_state
    by_alias = browser.get(f"/console/keys?alias=filter-{marker}").body
    assert disabled in by_alias and hmac_key not in by_alias
    assert browser.get("/console/keys?state=Nonsense").status == 400


def test_policy_editor_shows_the_error_inline_and_keeps_the_text(server: ServerProcess, kms: Any, key_id: str) -> None:
    browser = signed_in(server)
    before = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    broken = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",, }]}'
    answer = browser.post(f"/console/keys/{key_id}/policy", {"policy": broken}, csrf_from=f"/console/keys/{key_id}")
    assert answer.status == 400
    error = re.search(r'<p class="error" role="alert" id="error-policy">([^<]*)</p>', answer.body)
    assert (
        error is not None
        and "MalformedPolicyDocumentException" in error.group(1)
        and "Line 1, column" in error.group(1)
    )
    assert 'aria-invalid="true"' in answer.body and "Allow&#34;,, }" in answer.body  # the text stays, escaped
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == before
    fixed = json.loads(before)
    fixed["Statement"][0]["Sid"] = "Edited in the console"
    saved = browser.post(f"/console/keys/{key_id}/policy", {"policy": json.dumps(fixed)},
                         csrf_from=f"/console/keys/{key_id}")  # fmt: skip
    assert saved.status == 303
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == fixed
    failed = audit(server, "--key-id", key_id, "--operation", "PutKeyPolicy", "--outcome", "failure")
    assert [r["errorCode"] for r in failed] == ["MalformedPolicyDocumentException"]


def test_disable_enable_and_deletion_take_effect_for_api_callers(server: ServerProcess, kms: Any, key_id: str) -> None:
    browser = signed_in(server)
    page = f"/console/keys/{key_id}"
    assert browser.post(f"{page}/disable", {}, csrf_from=page).status == 303
    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert refused.value.response["Error"]["Code"] == "DisabledException"
    assert browser.post(f"{page}/enable", {}, csrf_from=page).status == 303
    kms.encrypt(KeyId=key_id, Plaintext=b"x")
    too_short = browser.post(f"{page}/schedule-deletion", {"days": "6"}, csrf_from=page)
    assert too_short.status == 400 and "error-deletion" in too_short.body
    assert browser.post(f"{page}/schedule-deletion", {"days": "7"}, csrf_from=page).status == 303
    pending = browser.get(page)
    assert "Scheduled for deletion on" in pending.body
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert browser.post(f"{page}/cancel-deletion", {}, csrf_from=page).status == 303
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


def test_rotation_tags_aliases_and_grants_from_the_detail_page(server: ServerProcess, kms: Any, key_id: str) -> None:
    browser = signed_in(server)
    page = f"/console/keys/{key_id}"
    assert browser.post(f"{page}/rotation", {"enabled": "on", "period": "90"}, csrf_from=page).status == 303
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 90
    assert browser.post(f"{page}/rotate-now", {}, csrf_from=page).status == 303
    assert len(kms.list_key_rotations(KeyId=key_id)["Rotations"]) == 1
    assert "ON_DEMAND" in browser.get(page).body
    assert browser.post(f"{page}/tag", {"tag_key": "env", "tag_value": "dev"}, csrf_from=page).status == 303
    assert browser.post(f"{page}/untag", {"tag_key": "env"}, csrf_from=page).status == 303
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []
    alias = f"alias/detail-{secrets.token_hex(4)}"
    assert browser.post(f"{page}/create-alias", {"alias": alias}, csrf_from=page).status == 303
    bad_alias = browser.post(f"{page}/create-alias", {"alias": "alias/aws/nope"}, csrf_from=page)
    assert bad_alias.status == 400 and "error-alias" in bad_alias.body
    assert browser.post(f"{page}/delete-alias", {"alias": alias}, csrf_from=page).status == 303
    grant = kms.create_grant(KeyId=key_id, GranteePrincipal="arn:aws:iam::111122223333:user/someone",
                             Operations=["Encrypt"])["GrantId"]  # fmt: skip
    assert grant[:16] in browser.get(page).body
    assert browser.post(f"{page}/revoke-grant", {"grant_id": grant}, csrf_from=page).status == 303
    assert kms.list_grants(KeyId=key_id)["Grants"] == []


def test_a_user_without_permission_is_denied_and_the_denials_are_recorded(server: ServerProcess, key_id: str) -> None:
    reads = ["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": reads, "Resource": "*"}]}
    user = make_user(server, "console-reader", policy=policy)
    browser = signed_in(server, *user.credentials)
    assert browser.get("/console/keys").status == 200
    page = f"/console/keys/{key_id}"
    denied = browser.post(f"{page}/disable", {}, csrf_from=page)
    assert denied.status == 403 and "AccessDeniedException" in denied.body
    assert _describe(server, key_id)["KeyState"] == "Enabled"
    assert browser.get("/console/audit").status == 403  # cloudtrail:LookupEvents is not allowed
    assert "AccessDeniedException" in browser.get("/console/audit").body
    assert browser.get("/console/usage").status == 403
    records = audit(server, "--principal", user.arn, "--outcome", "AccessDeniedException")
    assert {r["eventName"] for r in records} >= {"DisableKey", "LookupEvents", "GetCostAndUsage"}
    put_policy(server, user.name, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"}]}, name="audit")  # fmt: skip
    assert browser.get("/console/audit").status == 200  # policy changes apply at once


def test_the_audit_explorer_finds_an_encrypt_made_with_boto3(server: ServerProcess, kms: Any, key_id: str) -> None:
    response = kms.encrypt(KeyId=key_id, Plaintext=b"secret payload")
    request_id = response["ResponseMetadata"]["RequestId"]
    browser = signed_in(server)
    found = browser.get(f"/console/audit?key={key_id}&operation=Encrypt&outcome=success")
    assert found.status == 200 and request_id in found.body
    assert "secret payload" not in found.body
    none = browser.get(f"/console/audit?key={key_id}&operation=Encrypt&outcome=failure")
    assert request_id not in none.body
    assert browser.get("/console/audit?since=yesterday").status == 400


def test_usage_page_charts_requests_per_key(server: ServerProcess, kms: Any, key_id: str) -> None:
    for _ in range(3):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    page = signed_in(server).get("/console/usage?days=7")
    assert page.status == 200
    assert "<svg" in page.body and "Monthly cost estimate" in page.body
    assert "requests</title>" in page.body and key_id in page.body


def test_markup_in_key_data_is_escaped(server: ServerProcess, kms: Any) -> None:
    tags = [{"TagKey": "note", "TagValue": "<img src=x onerror=alert(1)>"}]
    key = kms.create_key(Description='<script>alert("x")</script>', Tags=tags)["KeyMetadata"]["KeyId"]
    browser = signed_in(server)
    for body in (browser.get(f"/console/keys/{key}").body, browser.get("/console/keys?tag=note").body):
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;" in body


def test_security_headers_and_static_files(server: ServerProcess) -> None:
    browser = signed_in(server)
    page: Answer = browser.get("/console/keys")
    csp = page.header("content-security-policy") or ""
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert page.header("x-frame-options") == "DENY" and page.header("cache-control") == "no-store"
    assert 'href="http' not in page.body and 'src="http' not in page.body  # nothing from the internet
    css = browser.get("/console/static/console.css")
    assert css.status == 200 and (css.header("content-type") or "").startswith("text/css")
    for path in ("/console/static/../app.py", "/console/static/app.py", "/console/static/%2e%2e/app.py"):
        assert browser.get(path).status == 404
    assert browser.get("/console/nowhere").status == 404


def test_two_sign_in_tabs_both_work(server: ServerProcess) -> None:
    browser = Browser(server)
    first = browser.get("/console/sign-in").csrf()
    second = browser.get("/console/sign-in").csrf()
    assert first == second  # the same pre-session anchor while its cookie lasts
    answer = browser.request(
        "POST",
        "/console/sign-in",
        {"csrf": first, "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY},
    )
    assert answer.status == 303
