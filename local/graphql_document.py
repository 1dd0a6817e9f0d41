"""Operations and selection sets of a parsed GraphQL document, as AppSync reads them.

Shared by the HTTP endpoint (`local.appsync`: `info.selectionSetList`, `queryDepthLimit`, which
operation runs) and the real-time hub (`local.appsync_realtime`: which operation a `start` holds,
the fields a subscriber may read, a mutation result cut to a subscriber's selection), so that
fragments are expanded, and the operation picked, the same way on both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
)


def operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the one named `name`, else the only one (None when ambiguous)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        return next((o for o in operations if o.name and o.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


def fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    """The document's named fragments by name."""
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def selected_fields(selection_set: Any, fragments: Mapping[str, FragmentDefinitionNode]) -> Iterator[FieldNode]:
    """The fields of one selection set in document order, inline fragments and fragment spreads
    expanded in place (a spread of an unknown fragment selects nothing; documents are validated,
    so there are no fragment cycles)."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from selected_fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from selected_fields(fragment.selection_set, fragments)


def response_name(node: FieldNode) -> str:
    """The key a field's value has in the response: its alias, else its name."""
    return node.alias.value if node.alias else node.name.value


def selection_paths(field_nodes: Any, fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """AppSync's `info.selectionSetList`: every selected field path under the resolved field
    (`a`, `a/b`, ...), without `__typename`, each once."""
    paths: list[str] = []

    def walk(selection_set: Any, prefix: str) -> None:
        for node in selected_fields(selection_set, fragments):
            if node.name.value == "__typename":
                continue
            path = f"{prefix}{node.name.value}"
            paths.append(path)
            walk(node.selection_set, path + "/")

    for node in field_nodes:
        walk(node.selection_set, "")
    return list(dict.fromkeys(paths))


def project(value: Any, selection: FieldNode, fragments: Mapping[str, FragmentDefinitionNode], type_name: str) -> Any:
    """`value` (a mutation result) restricted to a subscription's selection set, `__typename` as
    `type_name` at the top (nested objects carry no type name locally)."""
    if selection.selection_set is None or value is None:
        return value
    if isinstance(value, list):
        return [project(item, selection, fragments, type_name) for item in value]
    out: dict[str, Any] = {}
    for node in selected_fields(selection.selection_set, fragments):
        name = node.name.value
        out[response_name(node)] = type_name if name == "__typename" else project(value.get(name), node, fragments, "")
    return out


def query_depth(document: DocumentNode) -> int:
    """The deepest field nesting of any operation (a top-level field is depth 1), through fragments,
    as AppSync counts it for `queryDepthLimit`. The document is validated (no fragment cycles).

    Each fragment's depth is computed once: a chain of fragments that each spread the next twice
    would otherwise cost an exponential walk."""
    named = fragments(document)
    memo: dict[str, int] = {}

    def depth(selection_set: Any) -> int:
        best = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                best = max(best, 1 + depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                best = max(best, depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in named:
                name = selection.name.value
                if name not in memo:
                    memo[name] = depth(named[name].selection_set)
                best = max(best, memo[name])
        return best

    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return max((depth(o.selection_set) for o in operations), default=0)
