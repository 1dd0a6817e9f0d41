"""local.persistence in process, on the embedded AWS: what a stack stored comes back in the tables
and buckets of the next start, snapshots are written atomically and only when something changed,
and a state folder serves one stack at a time. (The whole stack restarted and killed: test_local_restarts.py.)"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import embedded
from local.iam_enforcement import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from local.persistence import SNAPSHOT, LocalState, StateError, _Changes, write_atomically

TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucketV2:BucketV2"


@pytest.fixture(scope="module")
def aws() -> Iterator[embedded.EmbeddedAws]:
    shared = embedded.acquire()
    yield shared
    embedded.release(shared)


def _client(aws: embedded.EmbeddedAws, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name="us-east-1",
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,  # the local admin: every request is authorized
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
    )


def _create(aws: embedded.EmbeddedAws, table: str, bucket: str) -> None:
    _client(aws, "dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    _client(aws, "s3").create_bucket(Bucket=bucket)


def _drop(aws: embedded.EmbeddedAws, table: str, bucket: str) -> None:
    """What a restart does to moto's memory, for these two only (the process's AWS is shared)."""
    s3 = _client(aws, "s3")
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)
    _client(aws, "dynamodb").delete_table(TableName=table)


def _stream_records(table: str) -> int:
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends["123456789012"]["us-east-1"].get_table(table).stream_shard.items)


def test_tables_and_objects_come_back_after_a_restart_without_stream_records(aws, tmp_path: Path):
    table, bucket = f"t-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    _create(aws, table, bucket)
    state = LocalState(tmp_path, "us-east-1")
    state.names["appsync-key:key"] = "da2-kept"
    state.created(TABLE, table, {"name": table})
    state.created(BUCKET, bucket, {"bucket": bucket})
    state.start(writer=False)
    ddb, s3 = _client(aws, "dynamodb"), _client(aws, "s3")
    items = [
        {
            "pk": {"S": "a"},
            "sk": {"N": "1"},
            "m": {"M": {"x": {"L": [{"N": "1"}, {"S": "y"}]}}},
            "b": {"B": b"\x00\xff"},
        },
        {"pk": {"S": "a"}, "sk": {"N": "2"}, "flag": {"BOOL": True}, "nothing": {"NULL": True}},
    ]
    for item in items:
        ddb.put_item(TableName=table, Item=item)
    s3.put_object(Bucket=bucket, Key="payloads/t/1/context.json", Body=b'{"big": 1}', ContentType="application/json")
    s3.put_object(Bucket=bucket, Key="same-body", Body=b'{"big": 1}')
    state.close(save=True)
    snapshot = json.loads((tmp_path / SNAPSHOT).read_text())
    assert len(snapshot["dynamodb"][table]) == 2 and set(snapshot["s3"][bucket]) == {
        "payloads/t/1/context.json",
        "same-body",
    }
    assert len(os.listdir(tmp_path / "objects")) == 1  # one blob for one body

    _drop(aws, table, bucket)
    _create(aws, table, bucket)
    before = _stream_records(table)
    again = LocalState(tmp_path, "us-east-1")
    assert again.names == {"appsync-key:key": "da2-kept"}
    again.created(TABLE, table, {"name": table})
    again.created(BUCKET, bucket, {"bucket": bucket})

    got = ddb.query(TableName=table, KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}})
    assert got["Items"] == [{**items[0], "b": {"B": b"\x00\xff"}}, items[1]]
    obj = s3.get_object(Bucket=bucket, Key="payloads/t/1/context.json")
    assert obj["Body"].read() == b'{"big": 1}' and obj["ContentType"] == "application/json"
    assert again.restored_items[table] == snapshot["dynamodb"][table]
    assert _stream_records(table) == before  # old changes are not published again
    again.close()
    _drop(aws, table, bucket)


def _reported(state: LocalState, count: int) -> None:
    """Until the embedded AWS has told `state` of `count` changes (it does so right after answering)."""
    for _ in range(1000):
        if state._changes.count >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{state._changes.count} changes reported, expected {count}")


def test_a_snapshot_is_written_only_after_a_change(aws, tmp_path: Path):
    table, bucket = f"t-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    _create(aws, table, bucket)
    state = LocalState(tmp_path, "us-east-1")
    state.created(TABLE, table, {"name": table})
    state.created(BUCKET, bucket, {"bucket": bucket})
    assert state.save() is True  # the first one: nothing written yet
    assert state.save() is False  # nothing changed since
    _client(aws, "dynamodb").get_item(TableName=table, Key={"pk": {"S": "x"}, "sk": {"N": "1"}})
    _client(aws, "s3").list_objects_v2(Bucket=bucket)
    assert state.save() is False  # reads change nothing
    state.start(writer=False)  # from here the embedded AWS reports its requests (after answering them)
    _client(aws, "dynamodb").put_item(TableName=table, Item={"pk": {"S": "x"}, "sk": {"N": "1"}})
    _reported(state, 1)
    assert state.save() is True
    _client(aws, "s3").put_object(Bucket=bucket, Key="k", Body=b"v")
    _reported(state, 2)
    assert state.save() is True
    assert state.save() is False
    # UpdateItem changes the item object in place: the snapshot has the new value, not a kept text
    _client(aws, "dynamodb").update_item(
        TableName=table,
        Key={"pk": {"S": "x"}, "sk": {"N": "1"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "changed"}},
    )
    _reported(state, 3)
    assert state.save() is True
    (item,) = json.loads((tmp_path / SNAPSHOT).read_text())["dynamodb"][table]
    assert item == {"pk": {"S": "x"}, "sk": {"N": "1"}, "v": {"S": "changed"}}
    state.close()
    _drop(aws, table, bucket)


def test_which_requests_count_as_changes():
    changes = _Changes()
    s3_auth = "AWS4-HMAC-SHA256 Credential=t/20260101/us-east-1/s3/aws4_request, SignedHeaders=host"
    for environ in (
        {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"},
        {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Query"},
        {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactGetItems"},
        {"HTTP_X_AMZ_TARGET": "AWSStepFunctions.StartExecution", "REQUEST_METHOD": "POST"},
        {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": s3_auth},
    ):
        changes.observe(environ)
    assert changes.count == 0
    for environ in (
        {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems"},
        {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"},
        {"REQUEST_METHOD": "PUT", "HTTP_AUTHORIZATION": s3_auth},
        {"REQUEST_METHOD": "DELETE", "HTTP_AUTHORIZATION": s3_auth},
    ):
        changes.observe(environ)
    assert changes.count == 4


def test_an_interrupted_write_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "snapshot.json"
    write_atomically(path, b'{"format": 1}')

    def crash(*args: Any) -> None:
        raise OSError("killed between the write and the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(path, b'{"format": 1, "half')
    assert path.read_bytes() == b'{"format": 1}'
    monkeypatch.undo()
    assert list(tmp_path.glob(".*.tmp"))  # what the crash left behind
    LocalState(tmp_path, "us-east-1").close()
    assert not list(tmp_path.glob(".*.tmp"))  # the next start clears it


def test_one_stack_per_state_folder(tmp_path: Path):
    first = LocalState(tmp_path, "us-east-1")
    with pytest.raises(StateError) as raised:
        LocalState(tmp_path, "us-east-1")
    assert f"pid {os.getpid()}" in str(raised.value)
    first.close()
    LocalState(tmp_path, "us-east-1").close()  # free again once the first one closed


def test_an_unreadable_snapshot_is_reported_and_fresh_starts_empty(tmp_path: Path):
    (tmp_path / SNAPSHOT).write_text("not json")
    with pytest.raises(StateError) as raised:
        LocalState(tmp_path, "us-east-1")
    assert "FRESH=1" in str(raised.value)
    fresh = LocalState(tmp_path, "us-east-1", fresh=True)
    assert fresh.names == {} and not (tmp_path / SNAPSHOT).exists()
    fresh.close()


def test_a_user_pools_users_come_back_and_still_sign_in(aws, tmp_path: Path):
    """The users an operator created (tenant, password, `sub`) survive a restart, as the pool id does."""
    idp = _client(aws, "cognito-idp")
    pool_id = idp.create_user_pool(
        PoolName=f"p-{uuid.uuid4().hex[:6]}",
        Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="c", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    state = LocalState(tmp_path, "us-east-1")
    state.created("aws:cognito/userPool:UserPool", pool_id, {})
    state.start(writer=False)
    attributes = [{"Name": "custom:tenant", "Value": "acme"}]
    idp.admin_create_user(UserPoolId=pool_id, Username="ann", UserAttributes=attributes, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="ann", Password="Passw0rd-Local", Permanent=True)
    before = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pool_id, Username="ann")["UserAttributes"]}
    _reported(state, 2)
    state.close(save=True)

    from moto.cognitoidp.models import cognitoidp_backends

    cognitoidp_backends["123456789012"]["us-east-1"].user_pools[pool_id].users.clear()  # what a restart does
    again = LocalState(tmp_path, "us-east-1")
    again.created("aws:cognito/userPool:UserPool", pool_id, {})
    after = idp.admin_get_user(UserPoolId=pool_id, Username="ann")["UserAttributes"]
    assert {a["Name"]: a["Value"] for a in after} == before and before["custom:tenant"] == "acme"
    signed_in = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ann", "PASSWORD": "Passw0rd-Local"},
    )
    assert signed_in["AuthenticationResult"]["IdToken"]
    again.close()
    idp.delete_user_pool(UserPoolId=pool_id)


def test_the_state_folder_and_its_files_are_the_owners_only(tmp_path: Path):
    """A snapshot holds every task's input and output, the API key and the users: 0700 folders
    (also one an older version made 0755) and 0600 files."""
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    state = LocalState(folder, "us-east-1")
    try:
        state.save(force=True)
    finally:
        state.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "objects").stat().st_mode) == 0o700
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {SNAPSHOT, "lock"}
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == {path.name: 0o600 for path in files}
