"""The Pulumi mocks of the local stack: each declared resource goes to its service's provisioner.

`pulumi.runtime.set_mocks` hands every resource registration of the real program to
`LocalAwsMocks.new_resource` with resolved, camelCased inputs; this class only dispatches by
resource type to `local.provision` (one module per AWS service), records every resource in the
registry, and answers the provider's data-source calls (caller identity, region, partition as
`local.pulumi_mocks` answers them, and `iam.get_policy_document`). `local.pulumi_mocks.run_program`
runs the program under it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pulumi

from local.provision import PROVISIONERS, Context, generic
from local.provision.iam import policy_document
from local.pulumi_mocks import provider_call_answer
from local.registry import Registry

log = logging.getLogger("local.mocks")


class LocalAwsMocks(pulumi.runtime.Mocks):
    """Create resources in moto and answer with provider-like outputs; record what the servers need."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        base_url: str,
        registry: Registry | None = None,
        names: dict[str, str] | None = None,
        on_created: Callable[[str, str, dict], None] | None = None,
    ) -> None:
        """`names`: generated names to keep (`Context.stable`); `on_created(type, id, outputs)` is told
        of each resource once it exists (how `local.persistence` puts a table's items back)."""
        self.ctx = Context(endpoint_url, region, base_url, registry or Registry())
        if names is not None:
            self.ctx.names = names
        self.on_created = on_created
        # (start, end, resource type) of every provisioner call: where start-up time goes (stack.py).
        self.calls: list[tuple[float, float, str]] = []
        self.region = region
        self.registry = self.ctx.registry

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if not args.custom:  # a ComponentResource: nothing to create
            return f"{args.name}_id", dict(args.inputs)
        provisioner = PROVISIONERS.get(args.typ)
        started = time.monotonic()
        try:
            if provisioner is None:
                log.debug("%s has no local implementation; answering with its inputs", args.typ)
                resource_id, outputs = generic(self.ctx, args)
            else:
                resource_id, outputs = provisioner(self.ctx, args)
        except Exception:
            log.exception("creating %s %r locally failed", args.typ, args.name)
            raise
        with self.ctx.lock:
            self.registry.resources.append((args.typ, args.name, resource_id))
            self.calls.append((started, time.monotonic(), args.typ))
        if self.on_created is not None:
            self.on_created(args.typ, resource_id, outputs)
        log.info("  + %-40s %s", args.typ.split(":")[-1] if provisioner else args.typ, resource_id)
        return resource_id, outputs

    def busy_seconds(self, types: frozenset[str] | None = None) -> float:
        """How long at least one provisioner call (of `types`, or any) was running: the union of
        their intervals (they run on many threads at once)."""
        spans = sorted((start, end) for start, end, typ in self.calls if types is None or typ in types)
        total, reach = 0.0, float("-inf")
        for start, end in spans:
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:  # type: ignore[override]
        token = args.token
        answer = provider_call_answer(token, self.region)
        if answer is not None:
            return answer
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            document = policy_document(args.args)
            return {"json": document, "minifiedJson": document, "id": str(abs(hash(document)))}
        log.debug("no local answer for call %s; returning its arguments", token)
        return dict(args.args)
