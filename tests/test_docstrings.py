"""Every public fluent function and ``Client`` method documents its arguments and return value
(the API reference in docs/api/ is generated from these docstrings)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import pytest

import gittrack.fluent
from gittrack.client import Client

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


def _client_methods() -> list[tuple[str, Callable]]:
    found = []
    for name, value in vars(Client).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(value, property):
            value = value.fget
        if inspect.isfunction(value):
            found.append((name, value))
    return sorted(found)


CLIENT = _client_methods()


def test_the_client_has_the_methods_mlflow_scripts_call() -> None:
    assert len(CLIENT) > 60


@pytest.mark.parametrize(("name", "method"), CLIENT, ids=[n for n, _ in CLIENT])
def test_each_client_method_documents_its_arguments_and_result(name, method) -> None:
    assert _problems(method) == []
