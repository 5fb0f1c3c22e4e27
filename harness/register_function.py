"""Registers a Lambda function in moto without Docker, so that RotateSecret
accepts its ARN (moto answers every invocation "Simple Lambda happy path OK"
instead of running it), configured as the template configures the rotation
function: the stack's MANAGED_USER_PATH and SECRET_NAME_PREFIX in its
environment, and a resource policy that lets Secrets Manager invoke it for
secrets under the prefix. Prints the function's ARN.

usage: register_function.py ENDPOINT FUNCTION_NAME [USER_PATH [SECRET_PREFIX [PERMISSION]]]
  (defaults: / and no prefix, as the tests' users and secrets are; PERMISSION
  "none" leaves the resource policy out)
"""
import io
import json
import sys
import urllib.request
import zipfile

import boto3

endpoint, name = sys.argv[1], sys.argv[2]
user_path = sys.argv[3] if len(sys.argv) > 3 else "/"
prefix = sys.argv[4] if len(sys.argv) > 4 else ""
permission = sys.argv[5] if len(sys.argv) > 5 else "secretsmanager"
urllib.request.urlopen(
    urllib.request.Request(
        endpoint + "/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
    )
)
settings = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
iam = boto3.client("iam", **settings)
try:
    role = iam.create_role(RoleName="rotation-function-role", AssumeRolePolicyDocument="{}")
except iam.exceptions.EntityAlreadyExistsException:
    role = iam.get_role(RoleName="rotation-function-role")
code = io.BytesIO()
with zipfile.ZipFile(code, "w") as archive:
    archive.writestr("bootstrap", "not run: moto has no Docker here")
functions = boto3.client("lambda", **settings)
environment = {"MANAGED_USER_PATH": user_path}
if prefix:
    environment["SECRET_NAME_PREFIX"] = prefix
try:
    created = functions.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=role["Role"]["Arn"],
        Handler="bootstrap",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": environment},
    )
    arn = created["FunctionArn"]
    if permission == "secretsmanager":
        account = arn.split(":")[4]
        functions.add_permission(
            FunctionName=name,
            StatementId="SecretsManagerInvokes",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
            SourceAccount=account,
            SourceArn=f"arn:aws:secretsmanager:us-east-1:{account}:secret:{prefix}*",
        )
    print(arn)
except functions.exceptions.ResourceConflictException:
    print(functions.get_function(FunctionName=name)["Configuration"]["FunctionArn"])
