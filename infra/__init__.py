"""Pulumi components of the AI workflow backend, and the pure builders (ASL, OpenAPI) beside them."""
