"""Every public fluent function and ``Client`` method documents its arguments and return value
(the API reference in docs/api/ is generated from these docstrings)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest

import gittrack.fluent

SKIPPED_PARAMETERS = {"self", "cls"}


def _public_functions(module) -> Iterator[tuple[str, Callable]]:
    for name, value in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ == module.__name__:
            yield name, value


def _problems(function: Callable) -> list[str]:
    doc = inspect.getdoc(function) or ""
    if not doc:
        return ["no docstring"]
    problems = []
    signature = inspect.signature(function)
    named = [
        p.name
        for p in signature.parameters.values()
        if p.name not in SKIPPED_PARAMETERS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if named:
        if "Args:" not in doc:
            problems.append("no Args: section")
        else:
            args = doc.split("Args:", 1)[1]
            problems += [f"argument {n!r} not described" for n in named if f"{n}:" not in args]
    returns = signature.return_annotation
    if returns not in (None, "None", inspect.Signature.empty) and "Returns:" not in doc:
        problems.append("no Returns: section")
    return problems


FLUENT = sorted(_public_functions(gittrack.fluent))


@pytest.mark.parametrize(("name", "function"), FLUENT, ids=[n for n, _ in FLUENT])
def test_each_fluent_function_documents_its_arguments_and_result(name, function) -> None:
    assert _problems(function) == []
