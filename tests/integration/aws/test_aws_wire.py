"""The AWS wire (`tests.fakes.aws_wire`): calls counted by the access key that signed them, layers answering in
moto's place, and what passes through it unrecorded. Real boto3 clients over HTTP; moto's state is shared with the
other tests of this process, so every name here is unique and nothing is reset."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fakes.aws_wire import AwsWire
from tests.fakes.ecs_limits import EcsRateLimits, Limit
from tests.fakes.ecs_semantics import EcsClientTokens

REGION = "us-east-1"
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def wire() -> Iterator[AwsWire]:
    with AwsWire() as started:
        yield started


def client(wire: AwsWire, service: str, key: str) -> Any:
    session = boto3.session.Session(region_name=REGION, aws_access_key_id=key, aws_secret_access_key="secret")
    return session.client(service, endpoint_url=wire.endpoint, config=NO_RETRIES)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_calls_are_counted_by_the_key_that_signed_them(wire: AwsWire) -> None:
    cluster = unique("wire")
    client(wire, "ecs", "alice").create_cluster(clusterName=cluster)
    client(wire, "ecs", "bob").describe_clusters(clusters=[cluster])
    client(wire, "ec2", "bob").describe_vpcs()

    assert wire.counts(access_key="alice") == {"ecs:CreateCluster": 1}
    assert wire.counts(access_key="bob") == {"ecs:DescribeClusters": 1, "ec2:DescribeVpcs": 1}
    assert wire.counts(access_key="carol") == {}
    [create] = wire.calls(access_key="alice")
    assert (create.status, create.by_layer) == (200, False)
    assert create.params == {"clusterName": cluster}
    assert create.answer["cluster"]["clusterName"] == cluster


def test_mark_shows_only_later_calls(wire: AwsWire) -> None:
    ecs = client(wire, "ecs", "alice")
    ecs.list_clusters()
    mark = wire.mark()
    ecs.list_task_definitions()

    assert wire.counts(since=mark) == {"ecs:ListTaskDefinitions": 1}
    assert wire.counts() == {"ecs:ListClusters": 1, "ecs:ListTaskDefinitions": 1}


def test_a_layer_answers_in_place_of_moto(wire: AwsWire) -> None:
    limits = EcsRateLimits(register=Limit(burst=1, per_second=0.001))
    wire.layers = [limits]
    ecs = client(wire, "ecs", "alice")
    family = unique("throttled")
    definition = {"family": family, "containerDefinitions": [{"name": "c", "image": "i", "memory": 128}]}
    ecs.register_task_definition(**definition)

    with pytest.raises(ClientError) as refused:
        ecs.register_task_definition(**definition)

    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    refusal = wire.calls(access_key="alice")[-1]
    assert (refusal.status, refusal.by_layer) == (400, True)
    revisions = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert len(revisions) == 1, "moto never saw the throttled call"
    assert limits.throttled == {"RegisterTaskDefinition": 1}


def test_layers_see_moto_answers_across_the_wire(wire: AwsWire) -> None:
    """EcsClientTokens learns the first RunTask's tasks from moto's answer, then replays them."""
    tokens = EcsClientTokens()
    wire.layers = [tokens]
    ecs, ec2 = client(wire, "ecs", "alice"), client(wire, "ec2", "alice")
    cluster, family = unique("tokens"), unique("tokens")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "c", "image": "i", "memory": 512}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": []}}
    request = {"cluster": cluster, "taskDefinition": family, "launchType": "FARGATE",
               "networkConfiguration": network, "clientToken": "one-token"}  # fmt: skip

    first = ecs.run_task(**request)["tasks"][0]["taskArn"]
    again = ecs.run_task(**request)["tasks"][0]["taskArn"]

    assert again == first
    assert len(ecs.list_tasks(cluster=cluster)["taskArns"]) == 1
    assert [call.by_layer for call in wire.calls() if call.operation == "RunTask"] == [False, True]
    assert tokens.replayed == 1


def test_unsigned_and_malformed_requests_pass_unrecorded_or_as_moto_answers(wire: AwsWire) -> None:
    assert requests.get(f"{wire.endpoint}/moto-api/data.json", timeout=10).ok
    assert wire.counts() == {}

    forged = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=mallory/20250101/us-east-1/ecs/aws4_request, Signature=x",
        "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
        "Content-Type": "application/x-amz-json-1.1",
    }
    answer = requests.post(wire.endpoint, data=b"{not json", headers=forged, timeout=10)

    [call] = wire.calls(access_key="mallory")
    assert (call.action, call.params, call.status) == ("ecs:ListClusters", {}, answer.status_code)
