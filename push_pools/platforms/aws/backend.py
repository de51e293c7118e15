"""AWS ECS (Fargate, Fargate Spot, EC2): each flow run is one ECS task, started by the function, with no worker.

How it uses ECS (boto3):

- **Templates:** Prefect's ECS work pool templates work unchanged (`task_definition` + `task_run_request` with
  placeholders); flat templates using the same variable names work too. See `ecs_job` and `ecs_run_task`.
- **Task definitions are registered once per content, never per run** (RegisterTaskDefinition allows 1 call/s).
  The family carries the hash of the task definition's content (`<family>-<16 hex>`), so a cold function finds it
  with one DescribeTaskDefinition and registers it only when absent; the ARN is then remembered by the instance.
  A template naming an existing task definition (`task_definition_arn`) registers nothing.
- **One call per run in steady state:** RunTask, with `clientToken` = the run's idempotency key (ECS starts at
  most one task per token and cluster; a ConflictException names the task started first, which is adopted),
  `startedBy` = `push-pools-<key>` and tags naming the run. Env and command travel as container overrides.
- **Networking:** `awsvpc` tasks get the template's subnets (`network_configuration` or the RunTask request's),
  or else the default VPC's (or `vpc_id`'s) subnets, looked up once per instance (ec2:DescribeVpcs/Subnets).
- **Infrastructure id:** `cluster::taskArn`, Prefect's format.
- **Status:** ECS sends "ECS Task State Change" events (`reports_infrastructure_events`), read by the Lambda entry
  point; `status()` (DescribeTasks) is there for whoever asks. See `ecs_status` for the mapping.
- **Crash evidence:** a task whose container exited non-zero is FAILED with ECS's stop code and reasons and, when
  its container logs to CloudWatch (awslogs), the last lines of its output (`with_output_tail`,
  also applied to task events): one DescribeTaskDefinition per task definition (kept when it has awslogs) and one
  GetLogEvents per failure.
- **Logs:** `logs()` reads the task's CloudWatch stream (`push_pools.platforms.aws.logs`); where GetLogEvents is
  denied, or the stream cannot be named yet, it gives the `aws logs tail` command instead; a task without awslogs
  is a ConfigurationError saying so. A task ECS has forgotten (stopped for over an hour) is looked for where the
  pool's job, rendered now (`RenderedJob`), sends its output. Masked: the orchestrator's credentials as the task's env
  overrides or the function's own environment hold them (a key the task gets by Secrets Manager reference and the
  function does not hold cannot be masked).
- **Cancel** is StopTask; a task already stopped, or gone with its cluster, counts as success.
- **Errors** are mapped by code (`ecs_errors`): throttling, 5xx and capacity failures are transient; a missing
  cluster, access denied and invalid parameters are permanent.
- **Retries** belong to the dispatcher, which retries a whole submission. The ECS client makes one attempt per
  call (botocore `standard` mode, `total_max_attempts=1`): its own randomised backoff would only delay a throttled
  RunTask. After a throttle, RunTask calls of the instance are paced at ECS's launch rate instead
  (`ecs_pacing`), so a burst of runs goes out as fast as ECS admits it. The EC2 client (default-VPC lookup)
  allows botocore one retry. Connect and read timeouts keep one call short.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from push_pools.backends.base import JobLogs, RenderedJob, RunContext
from push_pools.backends.kit.cache import TtlCache
from push_pools.backends.kit.evidence import TAIL_LINES, executor_credentials, mask_secrets, output_tail
from push_pools.backends.kit.secrets import CREDENTIAL_ENV, reveal
from push_pools.errors import (
    ConfigurationError,
    PermanentSubmissionError,
    PushPoolError,
    SubmissionError,
    TransientSubmissionError,
)
from push_pools.models import InfrastructureRef, InfrastructureState, InfrastructureStatus
from push_pools.platforms.aws.configuration import EcsJobConfiguration, TaskDefinitionFacts, parse_job
from push_pools.platforms.aws.errors import AWS_ERRORS, THROTTLING_CODES, error_code, failures_error
from push_pools.platforms.aws.logs import AwsLogs, LogsClient, LogStream, awslogs_of, read_lines, tail_command
from push_pools.platforms.aws.pacing import LaunchPacer
from push_pools.platforms.aws.request import build_requests, with_network
from push_pools.platforms.aws.status import (
    flow_container,
    infrastructure_id,
    parse_infrastructure_id,
    task_id,
    task_status,
)
from push_pools.settings import Settings

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

logger = logging.getLogger(__name__)

CANCEL_REASON = "Cancelled by push-pools"
ECS_RETRIES = {"mode": "standard", "total_max_attempts": 1}
OTHER_RETRIES = {"mode": "standard", "total_max_attempts": 2}
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20


class EcsClient(Protocol):
    """The part of boto3's ECS client the backend calls."""

    def run_task(self, **request: Any) -> dict[str, Any]: ...
    def describe_task_definition(self, **request: Any) -> dict[str, Any]: ...
    def register_task_definition(self, **request: Any) -> dict[str, Any]: ...
    def describe_tasks(self, **request: Any) -> dict[str, Any]: ...
    def stop_task(self, **request: Any) -> dict[str, Any]: ...


class Ec2Client(Protocol):
    """The part of boto3's EC2 client the backend calls (the default VPC's subnets)."""

    def describe_vpcs(self, **request: Any) -> dict[str, Any]: ...
    def describe_subnets(self, **request: Any) -> dict[str, Any]: ...


def build_request(
    configuration: dict[str, Any], run: RunContext, settings: Settings | None = None, *, region: str | None = None
) -> dict[str, Any]:
    """The requests a submission makes: RegisterTaskDefinition (made only if its family is new) and RunTask.

    Pure. Secret values are `SecretStr` (see `kit.secrets`). Given `settings` (a preview), the region is the one
    the function's clients would use; what only AWS can tell is listed under `resolved_on_submission`.
    """
    job = parse_job(configuration)
    region = region or (configured_region() if settings is not None else None)
    requests = build_requests(job, run, region=region)
    pending = []
    result: dict[str, Any] = {}
    if requests.task_definition is not None:
        result["RegisterTaskDefinition"] = requests.task_definition
        pending.append("RunTask.taskDefinition: the ARN of this family's task definition, found or registered")
    if requests.needs_network:
        where = f"VPC {job.vpc_id}" if job.vpc_id else "the default VPC"
        pending.append(f"RunTask.networkConfiguration: the subnets of {where}")
    if region is None and job.configure_cloudwatch_logs:
        pending.append("awslogs-region: the function's region")
    result["RunTask"] = requests.run_task
    result["resolved_on_submission"] = pending
    return result


class EcsBackend:
    """Starts, reads and stops ECS tasks for `ecs` pools."""

    pool_type: ClassVar[str] = "ecs"
    reports_infrastructure_events: ClassVar[bool] = True

    def __init__(
        self,
        ecs: EcsClient,
        *,
        ec2: Callable[[], Ec2Client] | None = None,
        logs: Callable[[], LogsClient] | None = None,
        region: str | None = None,
        pacer: LaunchPacer | None = None,
    ) -> None:
        """`ecs` is a boto3 ECS client; `ec2` makes an EC2 client, only if the default VPC must be looked up;
        `logs` a CloudWatch Logs client, only when a task's output is read."""
        self._ecs = ecs
        self._make_ec2 = ec2
        self._make_logs = logs
        self.region: str | None = region or getattr(getattr(ecs, "meta", None), "region_name", None)
        self.pacer = pacer or LaunchPacer()
        self._families: TtlCache[str, str] = TtlCache()
        """Task definition ARNs by family (the family names their content)."""
        self._facts: TtlCache[str, TaskDefinitionFacts] = TtlCache()
        """Existing task definitions named by templates, by ARN."""
        self._subnets: TtlCache[str, list[str]] = TtlCache()
        """Subnets by VPC id ("" for the default VPC)."""
        self._awslogs: TtlCache[tuple[str, str], AwsLogs | None] = TtlCache()
        """The awslogs configuration of a task definition's container, by (task definition ARN, container name)."""

    @classmethod
    def from_session(cls, session: boto3.session.Session, settings: Settings) -> EcsBackend:
        """The backend over clients made from `session`, configured as the module docstring says."""
        ec2 = functools.cache(lambda: session.client("ec2", config=client_config(settings)))
        logs = functools.cache(lambda: session.client("logs", config=client_config(settings)))
        ecs = session.client("ecs", config=client_config(settings, ECS_RETRIES))
        return cls(ecs, ec2=ec2, logs=logs, region=session.region_name)

    def build_request(self, configuration: dict[str, Any], run: RunContext) -> dict[str, Any]:
        return build_request(configuration, run, region=self.region)

    # ---- submit -------------------------------------------------------------------------------------------

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        job = parse_job(configuration)
        requests = build_requests(job, run, region=self.region, facts=self._existing_facts(job))
        run_task = dict(requests.run_task)
        if requests.task_definition is not None:
            run_task["taskDefinition"] = self._task_definition_arn(requests.task_definition)
        if requests.needs_network:
            run_task = with_network(run_task, self._default_subnets(job.vpc_id), public_ip=requests.fargate)
        return self._run_task(run_task)

    def _run_task(self, request: Mapping[str, Any]) -> InfrastructureRef:
        """RunTask with `request` (its secret values revealed only here, as they are sent)."""
        from botocore.exceptions import ClientError

        cluster = request.get("cluster")
        paced = self.pacer.wait_for_slot()
        with AWS_ERRORS.translated("ecs:RunTask"):
            try:
                response = self._ecs.run_task(**reveal(request))
            except ClientError as exc:
                existing = exc.response.get("resourceIds") or []
                if error_code(exc) in THROTTLING_CODES:
                    self.pacer.throttled(paced=paced)
                if error_code(exc) != "ConflictException" or not existing:
                    raise
                logger.info("RunTask token %s already started %s: adopted", request["clientToken"], existing[0])
                return InfrastructureRef(
                    infrastructure_pid=infrastructure_id(cluster or "default", existing[0]), adopted=True
                )
        self.pacer.launched()
        if response.get("failures"):
            raise failures_error(response["failures"])
        tasks = response.get("tasks") or []
        if not tasks:
            raise TransientSubmissionError("ecs:RunTask answered with neither a task nor a failure")
        task = tasks[0]
        return InfrastructureRef(infrastructure_pid=infrastructure_id(cluster or task["clusterArn"], task["taskArn"]))

    def _task_definition_arn(self, task_definition: dict[str, Any]) -> str:
        """The ARN of the family's task definition: remembered, else described, else registered (once)."""
        family = task_definition["family"]
        return self._families.get_or_compute(
            family, lambda: self._describe_family(family) or self._register(task_definition)
        )

    def _describe_family(self, family: str) -> str | None:
        """The ARN of the family's latest ACTIVE revision, or None when it has none (ECS: ClientException)."""
        try:
            action, operation = "ecs:DescribeTaskDefinition", self._ecs.describe_task_definition
            response = self._call(action, operation, taskDefinition=family)
        except SubmissionError as exc:
            if exc.code == "ClientException":
                return None
            raise
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def _register(self, task_definition: dict[str, Any]) -> str:
        response = self._call("ecs:RegisterTaskDefinition", self._ecs.register_task_definition, **task_definition)
        arn = str(response["taskDefinition"]["taskDefinitionArn"])
        logger.info("registered ECS task definition %s", arn)
        return arn

    def _existing_facts(self, job: EcsJobConfiguration) -> TaskDefinitionFacts | None:
        """For a template naming an existing task definition: its network mode and containers (read once)."""
        arn = job.task_run_request.get("taskDefinition") or job.task_definition_arn
        if not arn:
            return None

        def describe() -> TaskDefinitionFacts:
            action, operation = "ecs:DescribeTaskDefinition", self._ecs.describe_task_definition
            return TaskDefinitionFacts.of(self._call(action, operation, taskDefinition=str(arn))["taskDefinition"])

        return self._facts.get_or_compute(str(arn), describe)

    def _default_subnets(self, vpc_id: str | None) -> list[str]:
        """The subnets of `vpc_id`, or of the region's default VPC; looked up once per instance."""
        return self._subnets.get_or_compute(vpc_id or "", lambda: self._look_up_subnets(vpc_id))

    def _look_up_subnets(self, vpc_id: str | None) -> list[str]:
        if self._make_ec2 is None:
            raise PermanentSubmissionError("the task needs subnets: set `network_configuration` in the pool")
        ec2 = self._make_ec2()
        if vpc_id is None:
            vpcs = self._call("ec2:DescribeVpcs", ec2.describe_vpcs, Filters=[_filter("isDefault", "true")])["Vpcs"]
            if not vpcs:
                raise PermanentSubmissionError(
                    f"there is no default VPC in {self.region}: set `vpc_id` or `network_configuration` in the pool"
                )
            vpc_id_found = str(vpcs[0]["VpcId"])
        else:
            vpc_id_found = vpc_id
        response = self._call("ec2:DescribeSubnets", ec2.describe_subnets, Filters=[_filter("vpc-id", vpc_id_found)])
        subnets = sorted(str(subnet["SubnetId"]) for subnet in response["Subnets"])
        if not subnets:
            raise PermanentSubmissionError(f"VPC {vpc_id_found} has no subnets (or does not exist in {self.region})")
        return subnets

    # ---- status, cancel, sweep ----------------------------------------------------------------------------

    def status(self, infrastructure_pid: str) -> InfrastructureStatus:
        cluster, task_arn = parse_infrastructure_id(infrastructure_pid)
        try:
            tasks = self._call("ecs:DescribeTasks", self._ecs.describe_tasks, cluster=cluster, tasks=[task_arn])
        except SubmissionError as exc:
            if exc.code == "ClusterNotFoundException":
                return InfrastructureStatus(state=InfrastructureState.GONE, message=f"cluster {cluster} is gone")
            raise
        if not tasks.get("tasks"):
            return InfrastructureStatus(state=InfrastructureState.GONE, message=f"ECS no longer knows {task_arn}")
        task = tasks["tasks"][0]
        return self.with_output_tail(task_status(task), task)

    def with_output_tail(self, status: InfrastructureStatus, task: Mapping[str, Any]) -> InfrastructureStatus:
        """A failure whose container ran, with its output's last lines added when CloudWatch has them. A failure to
        read them is logged, never raised: the run ends CRASHED with ECS's reasons alone."""
        if status.state is not InfrastructureState.FAILED or status.exit_code is None:
            return status
        try:
            found = self._awslogs_of(task)
            stream = found[0].stream(found[1], task_id(str(task.get("taskArn", ""))), self.region) if found else None
            lines = self._read(stream, TAIL_LINES) if stream is not None else []
        except PushPoolError as exc:
            logger.warning("cannot read the output of task %s: %s", task.get("taskArn"), exc)
            return status
        tail = output_tail("\n".join(lines), _known_secrets(task))
        if not tail:
            return status
        message = f"{status.message}; last output lines:\n{tail}" if status.message else f"last output lines:\n{tail}"
        return status.model_copy(update={"message": message})

    def logs(self, infrastructure_pid: str, tail: int | None = None, job: RenderedJob | None = None) -> JobLogs:
        """The task's CloudWatch output, or the `aws logs tail` command where reading it is denied. A task ECS has
        forgotten (it keeps stopped ones for about an hour) is found where its pool's job, rendered now, logs."""
        cluster, task_arn = parse_infrastructure_id(infrastructure_pid)
        tasks = self._call("ecs:DescribeTasks", self._ecs.describe_tasks, cluster=cluster, tasks=[task_arn])
        if tasks.get("tasks"):
            task = tasks["tasks"][0]
            found = self._awslogs_of(task)
        elif job is not None:
            task, found = self._as_rendered(task_arn, job)
        else:
            raise ConfigurationError(f"ECS no longer knows task {task_id(task_arn)} (it forgets stopped tasks)")
        if found is None:
            raise ConfigurationError(
                f"task {task_id(task_arn)} does not log to CloudWatch (no awslogs driver): its output cannot be "
                "read; set configure_cloudwatch_logs in the pool"
            )
        awslogs, container = found
        stream = awslogs.stream(container, task_id(task_arn), self.region)
        if stream is None:  # no stream prefix, and the container has no Docker id yet
            return JobLogs(elsewhere=tail_command(awslogs.group, awslogs.region or self.region))
        try:
            lines = self._read(stream, tail)
        except SubmissionError as exc:
            if exc.code == "ResourceNotFoundException":
                return JobLogs()
            logger.warning("cannot read %s/%s: %s", stream.group, stream.stream, exc)
            return JobLogs(elsewhere=stream.tail_command())
        return JobLogs(lines=tuple(mask_secrets("\n".join(lines), _known_secrets(task)).splitlines()))

    def _as_rendered(
        self, task_arn: str, job: RenderedJob
    ) -> tuple[dict[str, Any], tuple[AwsLogs, Mapping[str, Any]] | None]:
        """A task ECS has forgotten as its pool's job renders now: the task's shape (container, overrides) and where
        its output goes."""
        parsed = parse_job(job.configuration)
        requests = build_requests(parsed, job.run, region=self.region, facts=self._existing_facts(parsed))
        run_task: dict[str, Any] = reveal(requests.run_task)
        container = {"name": run_task["overrides"]["containerOverrides"][0]["name"]}
        task = {
            "taskArn": task_arn,
            "taskDefinitionArn": run_task["taskDefinition"],
            "containers": [container],
            "overrides": run_task["overrides"],
        }
        if requests.task_definition is None:  # the template names an existing task definition
            return task, self._awslogs_of(task)
        awslogs = awslogs_of(requests.task_definition, container["name"])
        return task, (awslogs, container) if awslogs else None

    def _awslogs_of(self, task: Mapping[str, Any]) -> tuple[AwsLogs, Mapping[str, Any]] | None:
        """The awslogs configuration of the flow's container and that container, if its output goes to CloudWatch."""
        container = flow_container(task)
        definition_arn = str(task.get("taskDefinitionArn", ""))
        if container is None or not definition_arn:
            return None
        name = str(container.get("name"))

        def look_up() -> AwsLogs | None:
            action, operation = "ecs:DescribeTaskDefinition", self._ecs.describe_task_definition
            return awslogs_of(self._call(action, operation, taskDefinition=definition_arn)["taskDefinition"], name)

        awslogs = self._awslogs.get_or_compute((definition_arn, name), look_up)
        return (awslogs, container) if awslogs else None

    def _read(self, stream: LogStream, tail: int | None) -> list[str]:
        if self._make_logs is None:
            raise ConfigurationError("this backend has no CloudWatch Logs client")
        with AWS_ERRORS.translated("logs:GetLogEvents"):
            return read_lines(self._make_logs(), stream, tail)

    def cancel(self, infrastructure_pid: str) -> None:
        """StopTask. A task already stopped, unknown to ECS, or gone with its cluster counts as stopped."""
        cluster, task_arn = parse_infrastructure_id(infrastructure_pid)
        try:
            self._call("ecs:StopTask", self._ecs.stop_task, cluster=cluster, task=task_arn, reason=CANCEL_REASON)
        except SubmissionError as exc:
            if exc.code == "ClusterNotFoundException":
                return
            # ECS answers InvalidParameterException for a task it no longer knows; make sure that is what it meant
            if exc.code == "InvalidParameterException" and self.status(infrastructure_pid).finished:
                return
            raise

    def sweep(self, now: datetime) -> int:
        """Nothing to remove: task definitions are reused (ECS keeps them at no cost) and tasks end by themselves."""
        return 0

    def _call(self, action: str, operation: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        """One SDK call, its errors translated at this boundary."""
        with AWS_ERRORS.translated(action):
            response: dict[str, Any] = operation(**kwargs)
        return response


def _known_secrets(task: Mapping[str, Any]) -> list[str]:
    """The orchestrator's credentials as the task's env overrides and this function's environment hold them."""
    overrides = task.get("overrides") or {}
    values = [
        str(pair.get("value", ""))
        for container in overrides.get("containerOverrides") or []
        for pair in container.get("environment") or []
        if pair.get("name") in CREDENTIAL_ENV
    ]
    return [*values, *executor_credentials()]


def _filter(name: str, value: str) -> dict[str, Any]:
    return {"Name": name, "Values": [value]}


def client_config(settings: Settings, retries: Mapping[str, Any] = OTHER_RETRIES) -> Config:
    """The botocore configuration of the function's clients (see the module docstring for the retries)."""
    from botocore.config import Config

    return Config(
        retries=dict(retries),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=max(10, 2 * settings.max_parallel_submissions),
    )


def configured_region() -> str | None:
    """The region the function's clients would use (AWS_REGION, AWS_DEFAULT_REGION, the AWS config): no call made."""
    try:
        import boto3
    except ModuleNotFoundError:
        return None
    region: str | None = boto3.session.Session().region_name
    return region


def from_settings(settings: Settings) -> EcsBackend:
    """The backend with clients for the environment's AWS credentials and region."""
    import boto3

    return EcsBackend.from_session(boto3.session.Session(), settings)
