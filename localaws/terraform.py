"""Pointing a Terraform root configuration (an example) at the local AWS.

``stage(example, dest, endpoint)`` copies the configuration elsewhere (the
repository gets no state, lock file or .terraform), points its module sources
back at this repository, and adds an override file that sends the AWS provider
to ``endpoint``. ``cli_config()`` is the Terraform CLI config of tools/tf.py
(offline mirror) or, when the registry is reachable, the default installation.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM = ROOT / "tools" / "terraform"
REGION = "us-west-2"
# Every service the modules and examples create resources in or read from.
ENDPOINT_SERVICES = (
    "cloudwatch",
    "dynamodb",
    "ec2",
    "events",
    "iam",
    "kinesis",
    "kms",
    "lambda",
    "logs",
    "s3",
    "sfn",
    "sns",
    "sqs",
    "sts",
)
OVERRIDE = "localaws_override.tf"
TFVARS = "localaws.auto.tfvars.json"


def provider_override(endpoint: str, region: str = REGION) -> str:
    """An override file: the AWS provider talks to ``endpoint`` with test credentials."""
    endpoints = "\n".join(f'    {svc} = "{endpoint}"' for svc in ENDPOINT_SERVICES)
    return f"""# Written by localaws.terraform: the AWS provider talks to the local AWS at {endpoint}.
provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {{
{endpoints}
  }}
}}
"""


def account_network(endpoint: str, region: str = REGION) -> dict[str, Any]:
    """What an NGAP-style account has before anyone applies: a VPC with two private subnets
    (examples/complete places the functions in them). Returns the example's variables."""
    import boto3

    ec2 = boto3.client(
        "ec2", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{region}{zone}")["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate("ab")
    ]
    return {"vpc_id": vpc, "subnet_ids": subnets}


def stage(example: Path, dest: Path, endpoint: str) -> Path:
    """Copy ``example`` to ``dest`` (module sources -> this repository) with the provider override;
    an example that takes a ``vpc_id`` gets a VPC and subnets made in the local AWS first."""
    shutil.copytree(
        example,
        dest,
        ignore=shutil.ignore_patterns(
            ".terraform", "*.tfstate*", ".terraform.lock.hcl", "tf_resources.json", OVERRIDE, TFVARS
        ),
    )
    if 'variable "vpc_id"' in "".join(f.read_text() for f in dest.glob("*.tf")):
        (dest / TFVARS).write_text(json.dumps(account_network(endpoint), indent=2))
    for tf_file in dest.glob("*.tf"):
        text = tf_file.read_text()
        tf_file.write_text(text.replace('source = "../../', f'source = "{ROOT}/'))
    (dest / OVERRIDE).write_text(provider_override(endpoint))
    return dest


def registry_reachable(host: str = "registry.terraform.io", timeout: float = 3.0) -> bool:
    """True when the public Terraform registry answers a TCP connection on 443."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def unprotect_tables(dynamodb: Any, prefix: str) -> list[str]:
    """Turn off deletion protection of the stack's tables, as an operator must before `terraform destroy`
    of a stack that keeps the default (config_tables_deletion_protection_enabled: examples/minimal protects
    its config, idempotency and executions tables, and DeleteTable refuses, on AWS as on the local AWS).
    Returns the names of the tables it changed."""
    names = [n for page in dynamodb.get_paginator("list_tables").paginate() for n in page["TableNames"]]
    changed = []
    for name in (n for n in names if n.startswith(prefix)):
        if dynamodb.describe_table(TableName=name)["Table"].get("DeletionProtectionEnabled"):
            dynamodb.update_table(TableName=name, DeletionProtectionEnabled=False)
            changed.append(name)
    return changed
