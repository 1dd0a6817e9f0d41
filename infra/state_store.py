"""DynamoDB tables (tasks with their stream, history, flows) and the payload bucket, and who may use them.

The store owns its names and its access (`state_access.py`). The names (tables, indexes, keys, the
variables the runtime reads) come from `schema/state_store.json`, which the runtime reads too, so
infra and `lambdas` agree without importing each other. The access comes as named profiles: a component
asks `store.access("read", "payloads-read")` and hands the result to its `Function`, instead of
restating table names and DynamoDB actions. Prod keeps data: point-in-time recovery and
retain-on-delete come from the stage config.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .iam import Access, Statement
from .state_access import (
    ANY,
    FLOW_INDEXES,
    FLOWS,
    HISTORY,
    PAYLOAD_OBJECTS,
    PROFILES,
    TASK_INDEXES,
    TASK_STREAMS,
    TASKS,
    profile_environment,
    store_schema,
)


class StateStore(pulumi.ComponentResource):
    tasks: aws.dynamodb.Table
    history: aws.dynamodb.Table
    flows: aws.dynamodb.Table
    payloads: aws.s3.Bucket

    def __init__(self, name: str, config: StageConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aiwf:state:StateStore", name, None, opts)
        self._payload_threshold_bytes = config.payload_threshold_bytes
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=config.retain_on_delete)
        common = {
            "billing_mode": "PAY_PER_REQUEST",
            "server_side_encryption": aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            "point_in_time_recovery": aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=config.point_in_time_recovery),
            "deletion_protection_enabled": config.retain_on_delete,
        }
        tables = store_schema()["tables"]
        self.tasks = self._table(name, config, "tasks", tables["tasks"], common, keep)
        self.history = self._table(name, config, "history", tables["history"], common, keep)
        self.flows = self._table(name, config, "flows", tables["flows"], common, keep)
        self.payloads = aws.s3.Bucket(
            f"{name}-payloads",
            bucket_prefix=config.name("payloads-"),
            force_destroy=not config.retain_on_delete,
            opts=keep,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-payloads-encryption",
            bucket=self.payloads.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-payloads-private",
            bucket=self.payloads.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "tasksTable": self.tasks.name,
                "historyTable": self.history.name,
                "flowsTable": self.flows.name,
                "payloadBucket": self.payloads.bucket,
            }
        )

    @staticmethod
    def _table(
        name: str,
        config: StageConfig,
        table: str,
        schema: dict[str, Any],
        common: dict[str, Any],
        opts: pulumi.ResourceOptions,
    ) -> aws.dynamodb.Table:
        """One table as `schema/state_store.json` describes it: key, attributes, indexes, stream."""
        hash_key, *range_key = schema["key"]
        indexes = schema.get("indexes", {})
        stream = schema.get("streamViewType")
        return aws.dynamodb.Table(
            f"{name}-{table}",
            name=config.name(table),
            hash_key=hash_key,
            range_key=range_key[0] if range_key else None,
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=attribute, type=kind)
                for attribute, kind in schema["attributes"].items()
            ],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index, hash_key=keys["partitionKey"], range_key=keys["sortKey"], projection_type="ALL"
                )
                for index, keys in indexes.items()
            ]
            or None,
            # The old image lets the publisher skip updates that change no state (same seq).
            stream_enabled=True if stream else None,
            stream_view_type=stream,
            **common,
            opts=opts,
        )

    def access(self, *profiles: str) -> Access:
        """The environment and statements of `profiles` (see PROFILES), for a `FunctionArgs.access`."""
        unknown = sorted(set(profiles) - set(PROFILES))
        if unknown or not profiles:
            raise ValueError(f"state store profiles {unknown or 'missing'}: name some of {sorted(PROFILES)}")
        chosen = tuple(dict.fromkeys(profiles))
        statements = tuple(
            Statement(grant.actions, tuple(arn for kind in grant.on for arn in self._arns(kind)), sid=grant.sid)
            for profile in chosen
            for grant in PROFILES[profile]
        )
        values = self._environment_values()
        environment = {variable: values[variable] for profile in chosen for variable in profile_environment(profile)}
        return Access(environment=environment, statements=statements)

    def _environment_values(self) -> dict[str, pulumi.Input[str]]:
        payloads = store_schema()["payloads"]
        tables = store_schema()["tables"]
        return {
            tables["tasks"]["environment"]: self.tasks.name,
            tables["history"]["environment"]: self.history.name,
            tables["flows"]["environment"]: self.flows.name,
            payloads["environment"]: self.payloads.bucket,
            payloads["thresholdEnvironment"]: str(self._payload_threshold_bytes),
        }

    def _arns(self, kind: str) -> tuple[pulumi.Input[str], ...]:
        """The ARNs one resource kind stands for: each declared index by name, the bucket's key prefix."""
        if kind == ANY:
            return ("*",)
        if kind in (TASK_INDEXES, FLOW_INDEXES):
            table = {TASK_INDEXES: self.tasks, FLOW_INDEXES: self.flows}[kind]
            names = store_schema()["tables"][kind.split("/")[0]]["indexes"]
            return tuple(table.arn.apply(lambda arn, index=index: f"{arn}/index/{index}") for index in names)
        if kind == TASK_STREAMS:
            # A label with colons ends each stream ARN; a re-enabled stream gets a new one.
            return (self.tasks.arn.apply(lambda arn: f"{arn}/stream/*"),)
        if kind == PAYLOAD_OBJECTS:
            prefix = store_schema()["payloads"]["keyPrefix"]
            return (self.payloads.arn.apply(lambda arn: f"{arn}/{prefix}*"),)
        return ({TASKS: self.tasks, HISTORY: self.history, FLOWS: self.flows}[kind].arn,)
