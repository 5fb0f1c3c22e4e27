"""Registers a Lambda function in moto without Docker, so that RotateSecret
accepts its ARN (moto answers every invocation "Simple Lambda happy path OK"
instead of running it). Prints the function's ARN.

usage: register_function.py ENDPOINT FUNCTION_NAME
"""
import io
import json
import sys
import urllib.request
import zipfile

import boto3

endpoint, name = sys.argv[1], sys.argv[2]
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
try:
    created = functions.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Role=role["Role"]["Arn"],
        Handler="bootstrap",
        Code={"ZipFile": code.getvalue()},
    )
    print(created["FunctionArn"])
except functions.exceptions.ResourceConflictException:
    print(functions.get_function(FunctionName=name)["Configuration"]["FunctionArn"])
