"""State that survives restarts: the stack's tables, payload objects and generated names under `.local/`.

moto keeps everything in memory, so a stopped stack forgot every flow, task and history, and its
API key changed. Here the stack's data is written to `.local/state/<stage>/` and put back the next
time the stack starts:

- `snapshot.json`: the names the stack generated (table, bucket and state machine names, the API
  key, the user pool's id; `local.provision.context.Context.stable`), every item of the stack's
  DynamoDB tables, the users of its Cognito user pools and the list of its S3 objects; each
  object's bytes in `objects/<sha256>` (written once, shared by identical bodies, removed when
  no snapshot names them).
- Writes are **atomic**: a temporary file in the same folder, flushed and fsynced, then
  `os.replace`d over the old one (and the folder fsynced), blobs before the snapshot naming
  them. A crash (SIGKILL, power) leaves the previous snapshot or the new one, never half of one.
- A writer thread saves a snapshot **every second when something changed**: the embedded AWS
  tells it of every request that may change a table or a bucket (`local.moto_glue.server`), so an
  idle stack writes nothing and a crash loses at most the last second. The stack writes a last
  one when it stops.
- Restoring happens as each table or bucket is created while the program runs (so the flow
  registration that runs later sees the stored flows), straight into moto's tables without
  stream records: what was published before the restart is not published again.
- One stack at a time owns a folder (an exclusive `flock` on `lock`, released by the kernel even
  when the process is killed).

Step Functions executions are not saved (the engine's threads cannot be); the stack restarts the
tasks that had not ended instead (`local.stack`, `aiwf.restart`).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from local.moto_glue import server as moto_server_glue
from local.moto_glue.dynamodb import dynamodb_lock
from local.registry import ACCOUNT_ID

log = logging.getLogger("local.state")

FORMAT = 1
SNAPSHOT = "snapshot.json"
OBJECTS = "objects"
LOCK = "lock"
FLUSH_INTERVAL_SECONDS = 1.0
TABLE_TYPES = frozenset({"aws:dynamodb/table:Table"})
BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
POOL_TYPES = frozenset({"aws:cognito/userPool:UserPool"})
_COGNITO_TARGET = "AWSCognitoIdentityProviderService."
_COGNITO_READS = ("Describe", "List", "Get", "AdminGet", "InitiateAuth", "AdminInitiateAuth")
# DynamoDB operations that never change a table (everything else counts as a change).
_DYNAMODB_READS = ("Get", "Query", "Scan", "BatchGet", "Describe", "List", "TransactGet")


class StateError(Exception):
    """The state folder cannot be used (in use by another stack, or not a snapshot this code wrote)."""


def write_atomically(path: Path, data: bytes) -> None:
    """`path` holds `data` or what it held before, whatever happens meanwhile (crash included)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    # The owner's only: a snapshot holds every task's input and output, the API key and users.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def private_folder(directory: Path) -> None:
    """`directory`, made if missing, readable by its owner only (0700, also when it existed
    before: a state folder of an older version was 0755)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _wire_form(value: Any) -> Any:
    """Binary attribute values as DynamoDB's JSON carries them (base64), the form moto reads back."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _items(table: Any) -> Any:
    """A moto table's item objects, in no order (moto's `all_items` sorts them: most of the cost)."""
    for stored in table.items.values():
        if table.range_key_attr:
            yield from stored.values()
        else:
            yield stored


class _Changes:
    """A count of the embedded AWS requests that may have changed a table or a bucket."""

    def __init__(self) -> None:
        self.count = 0

    def observe(self, environ: dict[str, Any]) -> None:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            if not target.partition(".")[2].startswith(_DYNAMODB_READS):
                self.count += 1  # two racing increments may count as one: still a change
        elif target.startswith(_COGNITO_TARGET):
            if not target.removeprefix(_COGNITO_TARGET).startswith(_COGNITO_READS):
                self.count += 1
        elif environ.get("REQUEST_METHOD") not in ("GET", "HEAD") and "/s3/aws4_request" in environ.get(
            "HTTP_AUTHORIZATION", ""
        ):
            self.count += 1


class LocalState:
    """The persisted state of one stage: load it, put it back as resources appear, save it while running."""

    def __init__(self, directory: str | Path, region: str, fresh: bool = False) -> None:
        self.directory = Path(directory)
        self.region = region
        self.names: dict[str, str] = {}
        self.restored_items: dict[str, list[dict[str, Any]]] = {}  # table -> items put back at start
        self._stored: dict[str, Any] = {"dynamodb": {}, "s3": {}, "cognito": {}}
        self._tables: set[str] = set()
        self._pools: set[str] = set()
        self._buckets: set[str] = set()
        self._changes = _Changes()
        self._saved_at = -1
        self._saved_names: dict[str, str] = {}
        self._blob_names: dict[tuple[str, str, str], str] = {}  # (bucket, key, etag) -> sha256
        # Each table's items as JSON text, by item object (kept alive here, so an id is not reused)
        # and the table's count of in-place updates they were made at: only new items are serialized.
        self._item_texts: dict[str, tuple[int, dict[int, tuple[Any, str]]]] = {}
        self._lock_file: Any = None
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._open(fresh)

    # -- start ------------------------------------------------------------------------------------

    def _open(self, fresh: bool) -> None:
        private_folder(self.directory)
        # held as long as the stack runs
        self._lock_file = os.fdopen(os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "?"
            self._lock_file.close()
            self._lock_file = None
            raise StateError(
                f"{self.directory} is in use by another local stack (pid {holder}): stop it first"
            ) from None
        self._lock_file.truncate(0)
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()
        if fresh:
            (self.directory / SNAPSHOT).unlink(missing_ok=True)
            shutil.rmtree(self.directory / OBJECTS, ignore_errors=True)
            log.info("starting empty (fresh): %s cleared", self.directory)
        private_folder(self.directory / OBJECTS)
        for folder in (self.directory, self.directory / OBJECTS):  # a write a crash cut short
            for stale in folder.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        path = self.directory / SNAPSHOT
        if not path.exists():
            return
        try:
            stored = json.loads(path.read_bytes())
            if not isinstance(stored, dict) or stored.get("format") != FORMAT:
                raise ValueError(f"format {stored.get('format') if isinstance(stored, dict) else '?'}")
        except ValueError as exc:
            self.close()
            raise StateError(
                f"{path} is not a snapshot this stack can read ({exc}): start empty with make dev FRESH=1"
            ) from exc
        self.names = dict(stored.get("names") or {})
        self._saved_names = dict(self.names)
        self._stored = {
            "dynamodb": stored.get("dynamodb") or {},
            "s3": stored.get("s3") or {},
            "cognito": stored.get("cognito") or {},
        }
        tables, items = len(self._stored["dynamodb"]), sum(map(len, self._stored["dynamodb"].values()))
        log.info("state from %s: %d items in %d tables, %d objects", path, items, tables, self._object_count())

    def _object_count(self) -> int:
        return sum(len(objects) for objects in self._stored["s3"].values())

    def created(self, resource_type: str, resource_id: str, outputs: dict[str, Any]) -> None:
        """A resource of the program now exists in moto: put back what it held (tables and buckets)."""
        if resource_type in TABLE_TYPES:
            name = outputs.get("name") or resource_id
            self._tables.add(name)
            items = self._stored["dynamodb"].get(name)
            if items:
                self._restore_table(name, items)
        elif resource_type in BUCKET_TYPES:
            name = outputs.get("bucket") or resource_id
            self._buckets.add(name)
            objects = self._stored["s3"].get(name)
            if objects:
                self._restore_bucket(name, objects)
        elif resource_type in POOL_TYPES:
            self._pools.add(resource_id)
            users = self._stored["cognito"].get(resource_id)
            if users:
                self._restore_pool(resource_id, users)

    def _restore_pool(self, pool_id: str, users: list[dict[str, Any]]) -> None:
        """The pool's users as they were: name, `sub` (what tokens and tasks know them by),
        password, status, attributes (the tenant among them)."""
        from moto.cognitoidp.models import CognitoIdpUser, cognitoidp_backends

        pool = cognitoidp_backends[ACCOUNT_ID][self.region].user_pools[pool_id]
        for stored in users:
            user = CognitoIdpUser(pool_id, stored["username"], stored["password"], stored["status"], [])
            user.id, user.enabled = stored["sub"], stored["enabled"]
            user.update_attributes([*stored["attributes"], {"Name": "sub", "Value": stored["sub"]}])
            pool.users[user.username] = user
        log.debug("user pool %s: %d users restored", pool_id, len(users))

    def _restore_table(self, name: str, items: list[dict[str, Any]]) -> None:
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[ACCOUNT_ID][self.region].get_table(name)
        restored = []
        with dynamodb_lock():
            shard, table.stream_shard = table.stream_shard, None  # no stream records for old changes
            try:
                for item in items:
                    try:
                        table.put_item(item, overwrite=True)
                        restored.append(item)
                    except Exception as exc:  # a key schema changed since: that item cannot come back
                        log.warning("table %s: an item could not be restored (%s)", name, exc)
            finally:
                table.stream_shard = shard
        self.restored_items[name] = restored
        log.debug("table %s: %d items restored", name, len(restored))

    def _restore_bucket(self, name: str, objects: dict[str, dict[str, Any]]) -> None:
        from moto.s3.models import s3_backends

        backend = s3_backends[ACCOUNT_ID]["aws"]
        for key, meta in objects.items():
            blob = self.directory / OBJECTS / meta["sha256"]
            try:
                body = blob.read_bytes()
            except OSError:
                log.warning("bucket %s: object %s is missing from %s", name, key, blob.parent)
                continue
            fake = backend.put_object(name, key, body, disable_notification=True)
            if meta.get("contentType"):
                fake.set_metadata({"Content-Type": meta["contentType"]})

    def start(self, writer: bool = True) -> None:
        """Follow the embedded AWS's changes and (`writer`) save a snapshot every second while
        something changes, until `close`. Without the writer, `save` is called by hand (tests)."""
        moto_server_glue.observe_requests(self._changes.observe)
        self._started = True
        if writer:
            self._thread = threading.Thread(target=self._run, name="local-state", daemon=True)
            self._thread.start()

    # -- save -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_SECONDS):
            try:
                self.save()
            except Exception:  # a failed save is retried at the next tick; the stack goes on
                log.exception("saving the local state failed")

    def save(self, force: bool = False) -> bool:
        """Write a snapshot if anything changed since the last one (or `force`); True if written."""
        with self._write_lock:
            count = self._changes.count
            if not force and count == self._saved_at and self.names == self._saved_names:
                return False
            started = time.monotonic()
            names = dict(self.names)
            tables = self._capture_tables()
            buckets = self._capture_buckets()
            head = {
                "format": FORMAT,
                "savedAt": time.time(),
                "names": names,
                "s3": buckets,
                "cognito": self._capture_pools(),
            }
            # The items are JSON texts already: the document is put together around them.
            items = ",".join(f"{json.dumps(name)}:[{','.join(texts)}]" for name, texts in tables.items())
            data = f'{json.dumps(head, separators=(",", ":"))[:-1]},"dynamodb":{{{items}}}}}'.encode()
            write_atomically(self.directory / SNAPSHOT, data)
            self._saved_at, self._saved_names = count, names
            self._remove_unnamed_blobs(buckets)
            log.debug("state saved: %d bytes in %.0f ms", len(data), (time.monotonic() - started) * 1000)
            return True

    def _capture_tables(self) -> dict[str, list[str]]:
        """Every item of the stack's tables as JSON text, in one consistent cut (under the DynamoDB
        lock). An item object seen before, in a table without in-place updates since, is not
        serialized again: a busy stack with 20,000 items pays for its new items only."""
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[ACCOUNT_ID][self.region]
        captured: dict[str, list[str]] = {}
        with dynamodb_lock():
            for name in sorted(self._tables):
                table = backend.tables.get(name)
                if table is None:
                    continue
                updates = getattr(table, "aiwf_updates", 0)
                seen_updates, seen = self._item_texts.get(name, (updates, {}))
                if seen_updates != updates:
                    seen = {}  # an item changed in place: serialize them all again
                texts: dict[int, tuple[Any, str]] = {}
                for item in _items(table):
                    known = seen.get(id(item))
                    if known is None or known[0] is not item:
                        attributes = item.to_json()["Attributes"]
                        known = (item, json.dumps(attributes, separators=(",", ":"), default=_wire_form))
                    texts[id(item)] = known
                self._item_texts[name] = (updates, texts)
                captured[name] = [text for _, text in texts.values()]
        return captured

    def _capture_pools(self) -> dict[str, list[dict[str, Any]]]:
        from moto.cognitoidp.models import cognitoidp_backends

        pools = cognitoidp_backends[ACCOUNT_ID][self.region].user_pools
        captured: dict[str, list[dict[str, Any]]] = {}
        for pool_id in sorted(self._pools):
            pool = pools.get(pool_id)
            if pool is None:
                continue
            captured[pool_id] = [
                {
                    "username": user.username,
                    "sub": user.id,
                    "password": user.password,
                    "status": user.status,
                    "enabled": user.enabled,
                    "attributes": [a for a in user.attributes if a["Name"] != "sub"],
                }
                for user in list(pool.users.values())
            ]
        return captured

    def _capture_buckets(self) -> dict[str, dict[str, dict[str, Any]]]:
        from moto.s3.models import s3_backends

        backend = s3_backends[ACCOUNT_ID]["aws"]
        captured: dict[str, dict[str, dict[str, Any]]] = {}
        for name in sorted(self._buckets):
            bucket = backend.buckets.get(name)
            if bucket is None:
                continue
            objects: dict[str, dict[str, Any]] = {}
            for key, fake in list(bucket.keys.items()):
                sha = self._blob(name, key, fake)
                content_type = fake.metadata.get("Content-Type")  # a case-insensitive dict
                objects[key] = {"sha256": sha, "contentType": content_type}
            captured[name] = objects
        return captured

    def _blob(self, bucket: str, key: str, fake: Any) -> str:
        """The object's blob name, written (atomically) the first time its body is seen."""
        cache_key = (bucket, key, fake.etag)
        sha = self._blob_names.get(cache_key)
        if sha is None:
            body = fake.value
            sha = hashlib.sha256(body).hexdigest()
            path = self.directory / OBJECTS / sha
            if not path.exists():
                write_atomically(path, body)
            self._blob_names[cache_key] = sha
        return sha

    def _remove_unnamed_blobs(self, buckets: dict[str, dict[str, dict[str, Any]]]) -> None:
        named = {meta["sha256"] for objects in buckets.values() for meta in objects.values()}
        for path in (self.directory / OBJECTS).iterdir():
            if path.name not in named and not path.name.startswith("."):
                path.unlink(missing_ok=True)
        self._blob_names = {k: v for k, v in self._blob_names.items() if v in named}

    # -- stop -------------------------------------------------------------------------------------

    def close(self, save: bool = False) -> None:
        """Stop the writer thread (after a last snapshot when `save`) and give the folder up. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        moto_server_glue.unobserve_requests(self._changes.observe)
        if save and self._started:  # never a snapshot of a start-up cut short (tables not all there)
            try:
                self.save()
            except Exception:
                log.exception("saving the local state at stop failed; the last snapshot stays")
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
