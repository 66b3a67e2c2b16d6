"""STS GetCallerIdentity on the KMS endpoint, through boto3's ``sts`` client and the AWS CLI, on every engine.

Then the same endpoint as an attacker sees it: unsigned, a wrong secret, an unknown key, a signature scoped to
the other API (both ways), a session token nobody issued, an oversized body, too many parameters, an unknown
Action and Version. Every refusal is STS's XML error document, with AWS's code and status, and is recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openkms.server.loop_lag import WARNING_TEXT
from openkms.storage.factory import open_storage
from tests.e2e import rawhttp
from tests.e2e.conftest import ENGINES, serve_engine
from tests.e2e.principals import iam, make_user
from tests.e2e.server import ACCESS_KEY_ID, ACCOUNT_ID, SECRET_ACCESS_KEY, ServerProcess

pytestmark = pytest.mark.e2e

AWS = str(Path(sys.executable).parent / "aws")
FORM = "application/x-www-form-urlencoded; charset=utf-8"
NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
FAULT = "{http://webservices.amazon.com/AWSFault/2005-15-09}"  # AWS's front answers InvalidAction in it
GET_CALLER_IDENTITY = b"Action=GetCallerIdentity&Version=2011-06-15"


def sts(server: ServerProcess, access_key_id: str = ACCESS_KEY_ID, secret: str = SECRET_ACCESS_KEY) -> Any:
    return server.client(access_key_id, secret, service="sts")


def user_id_of(server: ServerProcess, user_name: str) -> str:
    users = json.loads(iam(server, "list-users", "--account-id", ACCOUNT_ID, "--json"))
    return str(next(u["UserId"] for u in users if u["UserName"] == user_name))


@pytest.fixture(scope="module", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """This module's own server. It checks the records of unauthenticated calls, which are recorded within a
    per-source budget and counted into a summary beyond it (audit/unauthenticated.py): on the session's
    shared server, other modules may have spent that budget already."""
    yield from serve_engine(request.param, tmp_path_factory.mktemp("sts"))


def records(server: ServerProcess, request_id: str) -> list[dict[str, Any]]:
    storage = open_storage(server.database_url)
    try:
        with storage.read() as tx:
            rows = tx.audit_range(0, 1_000_000)
    finally:
        storage.close()
    return [json.loads(row.event) for row in rows if row.request_id == request_id]


def error_of(reply: rawhttp.Reply, ns: str = NS) -> tuple[int, str, str, str]:
    """(status, Type, Code, Message) of an error document in namespace ``ns``; its RequestId is the header's."""
    assert reply.headers["content-type"] == "text/xml", reply.describe()
    root = ET.fromstring(reply.body)  # noqa: S314 - the answer of the server under test, no entities
    assert root.tag == f"{ns}ErrorResponse", reply.describe()
    assert root.findtext(f"{ns}RequestId") == reply.request_id
    error = root.find(f"{ns}Error")
    assert error is not None
    kind, code, message = (error.findtext(f"{ns}{name}") or "" for name in ("Type", "Code", "Message"))
    return reply.status, kind, code, message


def post_sts(server: ServerProcess, body: bytes = GET_CALLER_IDENTITY, **signing: Any) -> rawhttp.Reply:
    signing.setdefault("service", "sts")
    headers = rawhttp.sign(server.port, body, None, content_type=FORM, **signing)
    return rawhttp.post(server.port, headers, body)


# -- real clients -------------------------------------------------------------------------------------------


def test_boto3_get_caller_identity_names_the_signer(server: ServerProcess) -> None:
    answer = sts(server).get_caller_identity()
    assert answer["Account"] == ACCOUNT_ID
    assert answer["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/admin"
    assert answer["UserId"] == user_id_of(server, "admin")
    assert answer["UserId"].startswith("AIDA")
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == request_id

    # Recorded as CloudTrail records AWS's: read-only, from sts.amazonaws.com, without parameters or elements.
    [event] = records(server, request_id)
    assert (event["eventSource"], event["eventName"]) == ("sts.amazonaws.com", "GetCallerIdentity")
    assert event["readOnly"] is True
    assert event["userIdentity"]["principalId"] == answer["UserId"]
    assert event["userIdentity"]["arn"] == answer["Arn"]
    assert event["requestParameters"] is None and event["responseElements"] is None
    assert "errorCode" not in event


def test_each_user_sees_itself(server: ServerProcess) -> None:
    user = make_user(server, "sts")
    answer = sts(server, *user.credentials).get_caller_identity()
    assert (answer["Account"], answer["Arn"]) == (ACCOUNT_ID, user.arn)
    assert answer["UserId"] == user_id_of(server, user.name)


def _aws_sts(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [AWS, "sts", "get-caller-identity", *args, "--output", "json"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_aws_cli_with_endpoint_url(server: ServerProcess) -> None:
    done = _aws_sts(server.cli_env(), "--endpoint-url", server.endpoint)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer == {
        "UserId": user_id_of(server, "admin"),
        "Account": ACCOUNT_ID,
        "Arn": f"arn:aws:iam::{ACCOUNT_ID}:user/admin",
    }


def test_aws_cli_with_aws_endpoint_url_sts(server: ServerProcess) -> None:
    env = server.cli_env()
    env["AWS_ENDPOINT_URL_STS"] = server.endpoint
    done = _aws_sts(env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Account"] == ACCOUNT_ID


def test_aws_cli_reports_sts_errors(server: ServerProcess) -> None:
    env = server.cli_env()
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    done = _aws_sts(env, "--endpoint-url", server.endpoint)
    assert done.returncode in (254, 255), (done.returncode, done.stderr)
    assert "(SignatureDoesNotMatch)" in done.stderr
    assert "invalid XML" not in done.stderr


# -- as an attacker -----------------------------------------------------------------------------------------


def test_unsigned_is_missing_authentication_token_and_recorded(server: ServerProcess) -> None:
    reply = rawhttp.post(
        server.port, [("Host", rawhttp.host_of(server.port)), ("Content-Type", FORM)], GET_CALLER_IDENTITY
    )
    assert error_of(reply) == (403, "Sender", "MissingAuthenticationToken", "Request is missing Authentication Token")
    [event] = records(server, str(reply.request_id))  # within the unauthenticated budget: recorded alone
    assert (event["eventSource"], event["eventName"]) == ("sts.amazonaws.com", "GetCallerIdentity")
    assert event["userIdentity"] == {"type": "Unknown"}
    assert event["errorCode"] == "MissingAuthenticationToken"


def test_a_wrong_secret_is_signature_does_not_match(server: ServerProcess) -> None:
    with pytest.raises(ClientError) as caught:
        sts(server, secret="not-the-secret").get_caller_identity()
    error = caught.value.response
    assert error["Error"]["Code"] == "SignatureDoesNotMatch"
    assert error["Error"]["Type"] == "Sender"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Message"].startswith("The request signature we calculated does not match")
    [event] = records(server, error["ResponseMetadata"]["RequestId"])
    assert event["userIdentity"] == {"type": "Unknown", "accessKeyId": ACCESS_KEY_ID}
    assert event["errorCode"] == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_invalid_client_token_id(server: ServerProcess) -> None:
    with pytest.raises(ClientError) as caught:
        sts(server, access_key_id="AKIAUNKNOWNKEY000001").get_caller_identity()
    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidClientTokenId", 403)
    assert error["Error"]["Message"] == "The security token included in the request is invalid."


def test_a_deactivated_access_key_is_refused_at_once(server: ServerProcess) -> None:
    user = make_user(server, "sts-off")
    client = sts(server, *user.credentials)
    assert client.get_caller_identity()["Arn"] == user.arn
    iam(server, "update-access-key", "--access-key-id", user.credentials[0], "--status", "Inactive")
    with pytest.raises(ClientError) as caught:
        client.get_caller_identity()
    assert caught.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_a_kms_scoped_signature_is_refused_by_sts(server: ServerProcess) -> None:
    reply = post_sts(server, service="kms")
    expected = "Credential should be scoped to correct service: 'sts'. "  # with STS's trailing space
    assert error_of(reply) == (403, "Sender", "SignatureDoesNotMatch", expected)


def test_an_sts_scoped_signature_is_refused_by_kms(server: ServerProcess) -> None:
    body = b"{}"
    reply = rawhttp.post(server.port, rawhttp.sign(server.port, body, "TrentService.ListKeys", service="sts"), body)
    assert reply.status == 400
    assert reply.json() == {
        "__type": "InvalidSignatureException",
        "message": "Credential should be scoped to correct service: 'kms'.",
    }


def test_a_session_token_nobody_issued_is_refused(server: ServerProcess) -> None:
    reply = post_sts(server, extra={"X-Amz-Security-Token": "forged"})
    assert error_of(reply)[:3] == (403, "Sender", "InvalidClientTokenId")


def test_a_region_not_served_is_refused(server: ServerProcess) -> None:
    reply = post_sts(server, region="xx-nowhere-1")
    assert error_of(reply) == (
        403,
        "Sender",
        "SignatureDoesNotMatch",
        "Credential should be scoped to a valid region. ",
    )


def test_an_unknown_action_is_invalid_action(server: ServerProcess) -> None:
    reply = post_sts(server, b"Action=GetFederationTokenX&Version=2011-06-15")
    assert error_of(reply, FAULT) == (
        400, "Sender", "InvalidAction", "Could not find operation GetFederationTokenX for version 2011-06-15"
    )  # fmt: skip
    [event] = records(server, str(reply.request_id))
    assert (event["eventName"], event["errorCode"]) == ("Unknown", "InvalidAction")
    assert event["userIdentity"]["type"] == "IAMUser"  # it was signed: recorded whatever the budget


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"Action=GetCallerIdentity&Version=2000-01-01",
            "Could not find operation GetCallerIdentity for version 2000-01-01",
        ),
        (b"Action=GetCallerIdentity&Version=", "Could not find operation GetCallerIdentity for version "),
        (b"Action=GetCallerIdentity", "Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED"),
        (b"Action=&Version=2011-06-15", "Could not find operation  for version 2011-06-15"),
        (
            b"Action=NoSuchAction&Action=GetCallerIdentity&Version=2011-06-15",
            "Could not find operation NoSuchAction for version 2011-06-15",
        ),
    ],
)
def test_dispatch_on_action_and_version_answers_as_aws(server: ServerProcess, body: bytes, message: str) -> None:
    assert error_of(post_sts(server, body), FAULT) == (400, "Sender", "InvalidAction", message)


@pytest.mark.parametrize(
    "body",
    [
        GET_CALLER_IDENTITY + b"&Unknown=value",  # AWS ignores a parameter the action does not take
        b"Action=GetCallerIdentity&Action=NoSuchAction&Version=2011-06-15",  # and takes a repeated one's first value
        b"Action=GetCallerIdentity&Version=2011-06-15&Version=2000-01-01",
    ],
)
def test_unknown_and_repeated_parameters_are_taken_as_aws_takes_them(server: ServerProcess, body: bytes) -> None:
    reply = post_sts(server, body)
    assert reply.status == 200, reply.describe()
    assert b"<Account>111122223333</Account>" in reply.body


@pytest.mark.parametrize(("body", "content_type"), [(b"Version=2011-06-15", FORM), (GET_CALLER_IDENTITY, None)])
def test_a_call_naming_no_action_is_redirected_as_at_aws(
    server: ServerProcess, body: bytes, content_type: str | None
) -> None:
    headers = rawhttp.sign(server.port, body, None, service="sts", content_type=content_type)
    reply = rawhttp.post(server.port, headers, body)
    assert (reply.status, reply.body, reply.headers["location"]) == (302, b"", "https://aws.amazon.com/iam")
    [event] = records(server, str(reply.request_id))
    assert event["errorCode"] == "MissingAction"


def test_too_many_parameters_are_refused_before_decoding(server: ServerProcess) -> None:
    body = GET_CALLER_IDENTITY + b"".join(b"&p%d=%%41" % n for n in range(1000))
    reply = post_sts(server, body)
    assert error_of(reply) == (400, "Sender", "InvalidParameterValue", "The request has more than 1000 parameters.")


def test_an_oversized_body_is_refused_unread(server: ServerProcess) -> None:
    """Beyond the node's body limit (128 KiB) nothing is read, so no protocol is known yet: the node's 413."""
    body = GET_CALLER_IDENTITY + b"&x=" + b"A" * (129 * 1024)
    reply = post_sts(server, body)
    assert reply.status == 413


def test_no_hostile_form_blocks_the_event_loop(server: ServerProcess) -> None:
    """Bodies within the node's limit that would cost a careless parser dearly, unsigned and then signed (so
    they reach the form parser either way): each answered without a server error, and no loop-lag warning."""
    assert server.log_path is not None
    before = server.log_path.read_text(errors="replace").count(WARNING_TEXT)
    bodies = [
        b"&" * 120_000,
        b"Action=" + b"%" * 120_000,
        b"Action=GetCallerIdentity&Version=2011-06-15&x=" + b"%41" * 40_000,
        b"=" * 120_000,
        b"Action=" + b"%FF" * 40_000,
        b"\xff" * 120_000,
        GET_CALLER_IDENTITY + b"&" + b"&".join(b"k%d=%%41" % n for n in range(990)),
    ]
    for body in bodies:
        unsigned = rawhttp.post(server.port, [("Host", rawhttp.host_of(server.port)), ("Content-Type", FORM)], body)
        assert unsigned.status in (400, 403), unsigned.describe()
        signed = post_sts(server, body)
        assert signed.status in (200, 302, 400), signed.describe()
    after = server.log_path.read_text(errors="replace").count(WARNING_TEXT)
    assert after == before, server.log()[-2000:]


def test_the_server_still_answers_kms(server: ServerProcess, kms: Any) -> None:
    """Routing STS took nothing from KMS: a JSON call with X-Amz-Target is served as before."""
    assert "Keys" in kms.list_keys(Limit=1)
