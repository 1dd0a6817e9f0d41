"""DynamoDB tables (tasks with their stream, history, flows) and the payload bucket.

Prod keeps data: point-in-time recovery and retain-on-delete come from the stage config.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .config import StageConfig

_TASK_INDEXES = {"byStartedAt": "listKey", "byStatus": "status", "byFlow": "flowId"}


class StateStore(pulumi.ComponentResource):
    tasks: aws.dynamodb.Table
    history: aws.dynamodb.Table
    flows: aws.dynamodb.Table
    payloads: aws.s3.Bucket

    def __init__(self, name: str, config: StageConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aiwf:state:StateStore", name, None, opts)
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=config.retain_on_delete)
        common = {
            "billing_mode": "PAY_PER_REQUEST",
            "server_side_encryption": aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            "point_in_time_recovery": aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=config.point_in_time_recovery),
            "deletion_protection_enabled": config.retain_on_delete,
        }
        self.tasks = aws.dynamodb.Table(
            f"{name}-tasks",
            name=config.name("tasks"),
            hash_key="taskId",
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=attribute, type="S")
                for attribute in ("taskId", "listKey", "status", "flowId", "sortKey")
            ],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index, hash_key=partition, range_key="sortKey", projection_type="ALL"
                )
                for index, partition in _TASK_INDEXES.items()
            ],
            stream_enabled=True,
            # The old image lets the publisher skip updates that change no state (same seq).
            stream_view_type="NEW_AND_OLD_IMAGES",
            **common,
            opts=keep,
        )
        self.history = aws.dynamodb.Table(
            f"{name}-history",
            name=config.name("history"),
            hash_key="taskId",
            range_key="seq",
            attributes=[
                aws.dynamodb.TableAttributeArgs(name="taskId", type="S"),
                aws.dynamodb.TableAttributeArgs(name="seq", type="N"),
            ],
            **common,
            opts=keep,
        )
        self.flows = aws.dynamodb.Table(
            f"{name}-flows",
            name=config.name("flows"),
            hash_key="flowId",
            range_key="version",
            attributes=[
                aws.dynamodb.TableAttributeArgs(name="flowId", type="S"),
                aws.dynamodb.TableAttributeArgs(name="version", type="N"),
            ],
            **common,
            opts=keep,
        )
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

    def environment(self, payload_threshold_bytes: int) -> dict[str, pulumi.Input[str]]:
        """The variables the runtime reads (lambdas/aiwf/settings.py)."""
        return {
            "TASKS_TABLE": self.tasks.name,
            "HISTORY_TABLE": self.history.name,
            "FLOWS_TABLE": self.flows.name,
            "PAYLOAD_BUCKET": self.payloads.bucket,
            "PAYLOAD_THRESHOLD_BYTES": str(payload_threshold_bytes),
        }

    def table_arns(self, *tables: aws.dynamodb.Table) -> tuple[pulumi.Input[str], ...]:
        """Each table's ARN and its indexes' ARNs."""
        return tuple(arn for table in tables for arn in (table.arn, table.arn.apply(lambda a: f"{a}/index/*")))

    def payload_objects(self) -> pulumi.Output[str]:
        return self.payloads.arn.apply(lambda arn: f"{arn}/*")
