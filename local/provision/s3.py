"""S3 buckets, created in moto with the provider's outputs (domain names, region)."""

from __future__ import annotations

from local.provision.context import Args, Context, auto_name


def bucket(ctx: Context, args: Args) -> tuple[str, dict]:
    i = args.inputs
    name = i.get("bucket") or ctx.stable(f"s3:{args.name}", lambda: auto_name(args.name, lower=True))
    s3 = ctx.client("s3")
    if ctx.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ctx.region})
    return name, {
        **i,
        "bucket": name,
        "arn": f"arn:aws:s3:::{name}",
        "region": ctx.region,
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
    }


HANDLERS = {"aws:s3/bucket:Bucket": bucket, "aws:s3/bucketV2:BucketV2": bucket}
