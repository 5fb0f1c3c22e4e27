"""moto's standalone server, as `moto_server` runs it, plus a record of every call
the functions under test make, for the least-privilege check (tools/iam-check).

moto does not evaluate IAM policies, so the suite cannot see a call the
template's roles would deny. The functions under test sign with their own
access key ids (`rotation-function`, `audit-function`; moto accepts any), and for
each call signed so this server appends one JSON line to `$AUTHZ_LOG`: the
principal, the IAM action, the resource ARN as IAM would authorize it, and the
condition keys the policies test (`aws:TagKeys`). Resources are resolved from
moto's own state (a user's path, a secret's ARN) before the call runs. Never a
request or response body: those hold secrets.

Usage: moto_server.py -H HOST -p PORT
"""

import argparse
import io
import json
import re
import os
import threading
import urllib.parse

from werkzeug.serving import run_simple

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

# Signing key id -> the template's function whose role signs in production.
PRINCIPALS = {
    "rotation-function": "RotationFunction",
    "audit-function": "AuditFunction",
    "delivery-function": "DeliveryFunction",
}
# Roles of deploy/member-account.yaml (by name) -> the principal their sessions
# stand for: calls made with a session a function got from AssumeRole into one of
# them are checked against that role's policy in the member template.
MEMBER_ROLES = {
    "iam-key-rotation-audit": "MemberAuditRole",
    "iam-key-rotation-target": "MemberRotationRole",
    "iam-key-rotation-delivery": "MemberDeliveryRole",
}
# A member session's signing key -> the account of its role.
SESSION_ACCOUNTS = {}
# moto has no organization context: AWS gives every call of an organization's
# members aws:PrincipalOrgID, and AssumeRole aws:ResourceOrgID; the tests' one
# organization stands in.
ORGANIZATION = "o-tests00000"
# Actions that need no permission (GetCallerIdentity is signed by the key under
# test in any case).
UNAUTHORIZED_ACTIONS = {"sts:GetCallerIdentity"}
SERVICE_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}

_lock = threading.Lock()


def credential_scope(environ):
    """(access key id, region, service) from the SigV4 Authorization header."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        return scope[0], scope[2], scope[3]
    except IndexError:
        return "", "", ""


def parameters(environ, body):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        try:
            return target.split(".", 1)[1], json.loads(body or b"{}")
        except (IndexError, ValueError):
            return target, {}
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    flat = {k: v[0] for k, v in {**query, **form}.items()}
    return flat.get("Action", ""), flat


def members(params, prefix):
    """Query-protocol list members: Tags.member.1.Key, TagKeys.member.1, ..."""
    found = []
    for key, value in params.items():
        if key.startswith(prefix):
            found.append((key, value))
    return [v for _, v in sorted(found, key=lambda kv: kv[0])]


def user_arn(account, name):
    from moto.iam.models import iam_backends

    try:
        return iam_backends[account]["aws"].get_user(name).arn
    except Exception:  # the user is gone or never was: IAM authorizes the name
        return f"arn:aws:iam::{account}:user/{name}"


def key_user_arn(account, key_id):
    from moto.iam.models import iam_backends

    try:
        user = iam_backends[account]["aws"].get_access_key_last_used(key_id)["user_name"]
        return user_arn(account, user)
    except Exception:
        return None


def secret_arn(account, region, secret_id):
    from moto.secretsmanager.models import secretsmanager_backends

    if secret_id.startswith("arn:"):
        return secret_id
    try:
        return secretsmanager_backends[account][region].secrets[secret_id].arn
    except Exception:
        return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"


# The tests' deployment has one rotation function: whichever ARN a test
# attached to a secret stands for the stack's RotationFunction, as the
# least-privilege check names it.
STACK_ROTATION_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:test-RotationFunction"


def rotation_function(account, region, secret_id):
    """The secret's rotation function as AWS's condition key
    secretsmanager:resource/AllowRotationLambdaArn gives it, if it has one."""
    from moto.secretsmanager.models import secretsmanager_backends

    if not secret_id:
        return None
    try:
        secrets = secretsmanager_backends[account][region].secrets
        secret = secrets.get(secret_id)
    except Exception:
        return None
    if secret is None or not getattr(secret, "rotation_lambda_arn", None):
        return None
    return STACK_ROTATION_FUNCTION


def bus_arn(account, region, name):
    name = name or "default"
    if name.startswith("arn:"):
        return name
    return f"arn:aws:events:{region}:{account}:event-bus/{name}"


def requests_for(service, action, params, account, region):
    """The authorization requests IAM makes for one call: (action, resource, context)."""
    prefix = SERVICE_PREFIX.get(service, service)
    iam_action = f"{prefix}:{action}"
    if iam_action in UNAUTHORIZED_ACTIONS:
        return []
    if prefix == "iam":
        context = {}
        if action == "TagUser":
            context["aws:TagKeys"] = [
                v for k, v in sorted(params.items()) if k.startswith("Tags.member.") and k.endswith(".Key")
            ]
        if action == "UntagUser":
            context["aws:TagKeys"] = members(params, "TagKeys.member.")
        if "UserName" in params:
            return [(iam_action, user_arn(account, params["UserName"]), context)]
        if action == "GetAccessKeyLastUsed":
            arn = key_user_arn(account, params.get("AccessKeyId", ""))
            return [(iam_action, arn or "*", context)]
        return [(iam_action, "*", context)]
    if prefix == "secretsmanager":
        context = {}
        rotated_by = rotation_function(account, region, params.get("SecretId"))
        if rotated_by:
            context["secretsmanager:resource/AllowRotationLambdaArn"] = rotated_by
        if action == "TagResource":
            context["aws:TagKeys"] = [tag.get("Key", "") for tag in params.get("Tags", [])]
        if action == "UntagResource":
            context["aws:TagKeys"] = list(params.get("TagKeys", []))
        if "SecretId" in params:
            return [(iam_action, secret_arn(account, region, params["SecretId"]), context)]
        return [(iam_action, "*", context)]
    if prefix == "ssm" and "Name" in params:
        name = params["Name"]
        return [(iam_action, f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}", {})]
    if prefix == "events" and action == "PutEvents":
        buses = {e.get("EventBusName") for e in params.get("Entries", [])} or {None}
        return [(iam_action, bus_arn(account, region, b), {}) for b in sorted(buses, key=str)]
    if prefix == "sts" and action == "AssumeRole":
        context = {"aws:PrincipalOrgID": ORGANIZATION, "aws:ResourceOrgID": ORGANIZATION}
        return [(iam_action, params.get("RoleArn", ""), context)]
    return [(iam_action, "*", {})]


def batch_reads(account, region, response_body):
    """BatchGetSecretValue also needs GetSecretValue on every secret it returns."""
    try:
        answer = json.loads(response_body or b"{}")
    except ValueError:
        return []
    # Only the secrets it returned: an entry under Errors may be a denial,
    # which real AWS answers there too.
    arns = [v.get("ARN") for v in answer.get("SecretValues", [])]
    return [("secretsmanager:GetSecretValue", arn, {}) for arn in arns if arn]


def remember_session(role_arn, response_body):
    """A function's session of a member role signs as that role, in the role's
    account, from now on. A role of another name has no policy to check its calls
    against: they are recorded under a principal the check knows nothing of, and
    so fail it, rather than go unchecked."""
    name = role_arn.rsplit("/", 1)[-1]
    member = MEMBER_ROLES.get(name, f"UnknownRole({name})")
    parts = role_arn.split(":")
    match = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", response_body)
    if match:
        with _lock:
            key = match.group(1).decode()
            PRINCIPALS[key] = member
            if len(parts) > 4 and parts[4]:
                SESSION_ACCOUNTS[key] = parts[4]


def recording(app, log_path):
    def wrapped(environ, start_response):
        key, region, service = credential_scope(environ)
        principal = PRINCIPALS.get(key)
        if principal is None:
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action, params = parameters(environ, body)
        account = SESSION_ACCOUNTS.get(key, DEFAULT_ACCOUNT_ID)
        wanted = requests_for(service, action, params, account, region)
        status = {}

        def remember(code, headers, exc_info=None):
            status["code"] = int(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        chunks = list(app(environ, remember))
        if action == "BatchGetSecretValue" and status.get("code") == 200:
            wanted += batch_reads(account, region, b"".join(chunks))
        if action == "AssumeRole" and status.get("code") == 200:
            remember_session(params.get("RoleArn", ""), b"".join(chunks))
        lines = [
            json.dumps(
                {
                    "principal": principal,
                    "action": a,
                    "resource": r,
                    "account": account,
                    "context": c,
                    "status": status.get("code"),
                },
                sort_keys=True,
            )
            for a, r, c in wanted
        ]
        if lines:
            with _lock, open(log_path, "a", encoding="utf-8") as log:
                log.write("\n".join(lines) + "\n")
        return chunks

    return wrapped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    log_path = os.environ.get("AUTHZ_LOG")
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        app = recording(app, log_path)
    run_simple(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
