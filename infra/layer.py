"""The dependency layer: lambdas/requirements.txt built for the Lambda platform by `make layer`."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .config import StageConfig
from .functions import RUNTIME
from .packaging import LAYER_DIR


class DependencyLayer(pulumi.ComponentResource):
    arn: pulumi.Output[str]

    def __init__(self, name: str, config: StageConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aiwf:functions:DependencyLayer", name, None, opts)
        layer = aws.lambda_.LayerVersion(
            name,
            layer_name=config.name("deps"),
            description="Third-party runtime dependencies pinned in lambdas/requirements.txt",
            code=pulumi.FileArchive(str(LAYER_DIR)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=["x86_64"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = layer.arn
        self.register_outputs({"arn": self.arn})
