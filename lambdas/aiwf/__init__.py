"""AI workflow runtime: the Lambda deployment package (no Pulumi, no infra imports)."""
