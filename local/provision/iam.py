"""IAM roles, inline policies and attachments, created in moto (policies are recorded, not evaluated)."""

from __future__ import annotations

import json
import logging
from typing import Any

from local.provision.context import Args, Context, auto_name, random_id

log = logging.getLogger("local.mocks")


def role(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("name") or auto_name(args.name)
    policy = i.get("assumeRolePolicy") or "{}"
    request = {
        "RoleName": name,
        "AssumeRolePolicyDocument": policy if isinstance(policy, str) else json.dumps(policy),
        "Path": i.get("path", "/"),
    }
    if i.get("description"):
        request["Description"] = i["description"]
    created = ctx.client("iam").create_role(**request)["Role"]
    for inline in i.get("inlinePolicies") or []:
        if inline.get("name") and inline.get("policy"):
            ctx.client("iam").put_role_policy(RoleName=name, PolicyName=inline["name"], PolicyDocument=inline["policy"])
    for policy_arn in i.get("managedPolicyArns") or []:
        attach(ctx, name, policy_arn)
    return name, {
        **i,
        "name": name,
        "arn": created["Arn"],
        "uniqueId": created["RoleId"],
        "createDate": created["CreateDate"].isoformat(),
    }


def role_policy(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    role = str(i["role"]).rsplit("/", 1)[-1]  # a name, or an ARN when the program passed role.arn
    name = i.get("name") or auto_name(args.name)
    policy = i["policy"] if isinstance(i["policy"], str) else json.dumps(i["policy"])
    ctx.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=policy)
    return f"{role}:{name}", {**i, "name": name, "role": role}


def attach(ctx: Context, role: str, policy_arn: str) -> None:
    """Attach a managed policy; moto knows only some AWS-managed ones, and a miss is harmless locally."""
    try:
        ctx.client("iam").attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    except Exception as exc:  # moto only knows some AWS-managed policies; harmless locally
        log.debug("could not attach %s to %s in moto: %s", policy_arn, role, exc)


def role_policy_attachment(ctx: Context, args: Args) -> tuple[str, dict]:
    role = str(args.inputs["role"]).rsplit("/", 1)[-1]
    attach(ctx, role, args.inputs["policyArn"])
    return f"{role}-{random_id(8)}", dict(args.inputs)


def policy_document(args: dict) -> str:
    """The `aws.iam.get_policy_document` data source, rendered like the provider renders it."""
    statements = []
    for s in args.get("statements") or []:
        out: dict[str, Any] = {}
        if s.get("sid"):
            out["Sid"] = s["sid"]
        out["Effect"] = s.get("effect", "Allow")
        for src, dst in (
            ("actions", "Action"),
            ("notActions", "NotAction"),
            ("resources", "Resource"),
            ("notResources", "NotResource"),
        ):
            values = s.get(src)
            if values:
                out[dst] = values[0] if len(values) == 1 else sorted(values, reverse=True)
        for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if s.get(src):
                out[dst] = {
                    p["type"]: p["identifiers"][0] if len(p["identifiers"]) == 1 else p["identifiers"] for p in s[src]
                }
        if s.get("conditions"):
            cond: dict[str, dict] = {}
            for c in s["conditions"]:
                vals = c["values"]
                cond.setdefault(c["test"], {})[c["variable"]] = vals[0] if len(vals) == 1 else vals
            out["Condition"] = cond
        statements.append(out)
    return json.dumps({"Version": args.get("version", "2012-10-17"), "Statement": statements}, indent=2)


HANDLERS = {
    "aws:iam/role:Role": role,
    "aws:iam/rolePolicy:RolePolicy": role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": role_policy_attachment,
}
