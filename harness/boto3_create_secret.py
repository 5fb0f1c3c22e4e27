"""The baseline of the throttling benchmark (examples/bench.rs): createSecret's
calls for a first rotation, made by boto3 with its default retry settings, in the
order and with the parameters the function makes them.

Not a second implementation of the step: it decides nothing and guards nothing. It
makes the same eleven calls (the step's preconditions, the three versions read,
the user and its keys, the proof of the stored key, the creation marker, the key,
its description, the pending value) so that a throttle costs boto3 what it would
cost a Python rotation function of the same contract.

Usage: python boto3_create_secret.py ENDPOINT SECRET_ARN TOKEN
Prints one JSON line: {"ok": true|false, "ms": <time of the calls>, "error": ...}.
The clients are made before the clock starts (boto3 builds them from local
files); the time is that of the calls alone, as the function's is that of one
invocation of a process that has already started.
"""

import json
import sys
import time

import boto3
from botocore.exceptions import ClientError

DESCRIPTION_PREFIX = "iam-key-rotation"
CREATING_TAG = "iam-key-rotation:creating"


def value_or_none(secrets, secret_arn, **version):
    try:
        return secrets.get_secret_value(SecretId=secret_arn, **version)["SecretString"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return None


def create_secret(session, endpoint, secrets, iam, secret_arn, token):
    secrets.describe_secret(SecretId=secret_arn)
    value_or_none(secrets, secret_arn, VersionId=token, VersionStage="AWSPENDING")
    current = json.loads(value_or_none(secrets, secret_arn, VersionStage="AWSCURRENT"))
    user = current["UserName"]
    iam.get_user(UserName=user)
    value_or_none(secrets, secret_arn, VersionStage="AWSPREVIOUS")
    iam.list_access_keys(UserName=user)
    # The proof of possession of the stored key, before it is adopted.
    session.client(
        "sts",
        endpoint_url=endpoint,
        aws_access_key_id=current["AccessKeyId"],
        aws_secret_access_key=current["SecretAccessKey"],
    ).get_caller_identity()
    marker = f"{token} {int(time.time())}"
    iam.tag_user(
        UserName=user,
        Tags=[
            {"Key": CREATING_TAG, "Value": marker},
            {
                "Key": current["AccessKeyId"],
                "Value": f"{DESCRIPTION_PREFIX} {secret_arn} adopted",
            },
        ],
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.tag_user(
        UserName=user,
        Tags=[
            {"Key": key["AccessKeyId"], "Value": f"{DESCRIPTION_PREFIX} {secret_arn} {token}"},
            {"Key": CREATING_TAG, "Value": f"{marker} {key['AccessKeyId']}"},
        ],
    )
    secrets.put_secret_value(
        SecretId=secret_arn,
        ClientRequestToken=token,
        SecretString=json.dumps(
            {
                "UserName": user,
                "AccessKeyId": key["AccessKeyId"],
                "SecretAccessKey": key["SecretAccessKey"],
            }
        ),
        VersionStages=["AWSPENDING"],
    )


def main():
    endpoint, secret_arn, token = sys.argv[1:4]
    session = boto3.session.Session()
    secrets = session.client("secretsmanager", endpoint_url=endpoint)
    iam = session.client("iam", endpoint_url=endpoint)
    started = time.monotonic()
    try:
        create_secret(session, endpoint, secrets, iam, secret_arn, token)
        result = {"ok": True}
    except ClientError as error:
        result = {"ok": False, "error": error.response["Error"]["Code"]}
    result["ms"] = (time.monotonic() - started) * 1000.0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
