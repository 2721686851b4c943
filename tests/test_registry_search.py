"""Registry searches speak the run filter language and share the runs' pager.

``search_registered_models`` and ``search_model_versions`` parse their filters with
``query.filter_parser`` (OR, parentheses, IN everywhere), page with ``query.paging`` (one token
format for runs, experiments, models and versions), and raise only ``GittrackError``s. Where
MLflow's sqlite store accepts the same filter, it returns the same items in the same order.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from gittrack import Client
from gittrack.errors import CorruptDataWarning, GittrackError, InvalidInputError
from gittrack.query.filter_parser import FilterSyntaxError
from gittrack.query.paging import decode_page_token

from .hostile_branch import put_file

RUN_A = "a" * 32
RUN_B = "b" * 32
MODELS = (("iris-rf", "a"), ("iris-lr", "b"), ("churn", "a"), ("Iris-x", "c"))
VERSIONS = (
    ("iris-rf", RUN_A, "rf"),
    ("churn", RUN_B, "churn"),
    ("iris-rf", RUN_B, "rf"),
    ("iris-lr", RUN_A, "lr"),
)


def _populate(client: Any) -> None:
    """The same registry in gittrack or MLflow: four models, four versions."""
    for name, team in MODELS:
        client.create_registered_model(name, tags={"team": team})
    for name, run_id, kind in VERSIONS:
        client.create_model_version(
            name, f"s3://bucket/{name}/model", run_id=run_id, tags={"kind": kind}
        )


@pytest.fixture
def client(repo: Path) -> Client:
    client = Client()
    _populate(client)
    return client


def _models(client: Any, filter_string: str, **kwargs: Any) -> list[str]:
    return [m.name for m in client.search_registered_models(filter_string, **kwargs)]


def _versions(
    client: Any, filter_string: str, order_by: list[str] | None = None
) -> list[tuple[str, str]]:
    found = client.search_model_versions(
        filter_string, order_by=order_by or ["name ASC", "version_number DESC"]
    )
    return [(v.name, str(v.version)) for v in found]


# --------------------------------------------------------------------------- the language


def test_models_are_found_with_or_parentheses_and_in(client: Client) -> None:
    assert _models(client, "name = 'churn' OR name = 'iris-lr'") == ["churn", "iris-lr"]
    assert _models(client, "name IN ('churn', 'Iris-x')") == ["Iris-x", "churn"]
    assert _models(client, "(name LIKE 'iris%' OR name = 'churn') AND tags.team = 'a'") == [
        "churn",
        "iris-rf",
    ]
    assert _models(client, "tags.team NOT IN ('a', 'b')") == ["Iris-x"]


def test_model_versions_are_found_with_or_parentheses_and_in(client: Client) -> None:
    assert _versions(client, "name = 'churn' OR tags.kind = 'lr'") == [
        ("churn", "1"),
        ("iris-lr", "1"),
    ]
    assert _versions(client, f"run_id IN ('{RUN_B}') AND (name = 'iris-rf' OR name = 'x')") == [
        ("iris-rf", "2")
    ]


def test_version_number_compares_as_a_number_written_bare_or_quoted(client: Client) -> None:
    assert _versions(client, "version_number > 1") == [("iris-rf", "2")]
    assert _versions(client, "version_number = '2'") == [("iris-rf", "2")]
    assert _versions(client, "version_number <= 1 AND name LIKE 'iris%'") == [
        ("iris-lr", "1"),
        ("iris-rf", "1"),
    ]


def test_a_version_without_a_run_matches_no_run_id_comparison(client: Client) -> None:
    client.create_registered_model("solo")
    client.create_model_version("solo", "s3://bucket/solo/model")
    assert ("solo", "1") not in _versions(client, f"run_id != '{RUN_A}'")
    assert ("solo", "1") in _versions(client, "name = 'solo'")


def test_a_filter_that_pins_the_model_names_reads_only_those_models(
    repo: Path, client: Client
) -> None:
    put_file(repo, ".tracking/models/churn/versions/1.yaml", b"name: [unclosed\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptDataWarning)
        assert _versions(client, "name IN ('iris-rf', 'iris-lr') AND version_number > 0") == [
            ("iris-lr", "1"),
            ("iris-rf", "2"),
            ("iris-rf", "1"),
        ]
        assert _versions(client, "name = 'iris-lr' OR name = 'iris-x'") == [("iris-lr", "1")]
    with pytest.warns(CorruptDataWarning, match="churn"):
        assert ("churn", "1") not in _versions(client, "name = 'churn' OR tags.kind = 'rf'")


@pytest.mark.parametrize(
    ("search", "filter_string", "message"),
    [
        ("models", "colour = 'red'", "unknown field 'colour'"),
        ("versions", "name = 'a' OR", "expected a field"),
        ("versions", "version_number > 'two'", "'version_number' is a number"),
        ("versions", "run_id < 'x'", "comparator '<' is not valid"),
        ("models", "name = 'a' AND (tags.x = 'y'", "expected '\\)' to close"),
        ("models", "name == 'a'", "'==' is not a comparator"),
    ],
)
def test_a_bad_registry_filter_is_a_syntax_error_naming_the_position(
    client: Client, search: str, filter_string: str, message: str
) -> None:
    run = client.search_registered_models if search == "models" else client.search_model_versions
    with pytest.raises(FilterSyntaxError, match=message) as caught:
        run(filter_string)
    assert "at position" in str(caught.value)
    assert isinstance(caught.value, GittrackError)


def test_a_bad_order_by_is_invalid_input(client: Client) -> None:
    with pytest.raises(InvalidInputError, match="cannot order by 'colour'"):
        client.search_registered_models(order_by=["colour ASC"])
    with pytest.raises(InvalidInputError, match="FIELD"):
        client.search_model_versions(order_by=["name UP"])


# --------------------------------------------------------------------------- the pager


@pytest.mark.parametrize("search", ["models", "versions", "experiments", "runs"])
def test_every_search_pages_with_one_token_format(client: Client, search: str) -> None:
    for name in ("e1", "e2", "e3"):
        client.create_experiment(name)
    for _ in range(4):
        client.set_terminated(client.create_run("0").info.run_id)
    run = {
        "models": lambda **kw: client.search_registered_models(**kw),
        "versions": lambda **kw: client.search_model_versions(**kw),
        "experiments": lambda **kw: client.search_experiments(**kw),
        "runs": lambda **kw: client.search_runs(["0"], **kw),
    }[search]
    everything = list(run(max_results=1000))
    seen, token, offsets = [], None, []
    while True:
        page = run(max_results=3, page_token=token)
        seen += list(page)
        token = page.token
        if token is None:
            break
        offsets.append(decode_page_token(token))
    assert seen == everything and len(everything) >= 4
    assert offsets == list(range(3, len(everything), 3))


def test_a_page_token_no_search_returned_is_invalid_input_naming_it(client: Client) -> None:
    searches = {
        "models": client.search_registered_models,
        "versions": client.search_model_versions,
        "experiments": lambda **kw: client.search_experiments(**kw),
        "runs": lambda **kw: client.search_runs(["0"], **kw),
    }
    for token in ("abc", "-5", "9" * 40, "eyJvZmZzZXQiOiAtMX0="):  # the last: offset -1
        for search in searches.values():
            with pytest.raises(InvalidInputError, match=f"page token '{token[:40]}'"):
                search(page_token=token)


# --------------------------------------------------------------------------- against MLflow


@pytest.fixture
def mlflow_client(tmp_path: Path) -> Any:
    mlflow = pytest.importorskip("mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    client = mlflow.MlflowClient()
    _populate(client)
    return client


MODEL_FILTERS = [
    "",
    "name = 'churn'",
    "name != 'churn'",
    "name IN ('churn', 'iris-lr')",
    "name LIKE 'iris%'",
    "name ILIKE 'iris%'",
    "name LIKE '_ris-__'",
    "tags.team = 'a'",
    "tags.team LIKE 'a%' AND name LIKE '%rf'",
    "tags.team != 'a'",
]
VERSION_FILTERS = [
    "",
    "name = 'iris-rf'",
    "name IN ('churn', 'iris-lr')",
    f"run_id = '{RUN_B}'",
    f"run_id IN ('{RUN_A}')",
    "source_path LIKE '%/iris-%'",
    "source_path ILIKE 'S3://BUCKET/CHURN/%'",
    "tags.kind = 'rf'",
    "tags.kind LIKE 'r%' AND version_number > 1",
    "version_number = 1",
    "version_number != 1",
    "name LIKE 'iris%' AND tags.kind != 'rf'",
]


def test_model_searches_return_what_mlflow_returns_in_the_same_order(
    client: Client, mlflow_client: Any
) -> None:
    for filter_string in MODEL_FILTERS:
        for order_by in (None, ["name DESC"]):
            ours = _models(client, filter_string, order_by=order_by)
            theirs = _models(mlflow_client, filter_string, order_by=order_by)
            assert ours == theirs, (filter_string, order_by)


def test_version_searches_return_what_mlflow_returns_in_the_same_order(
    client: Client, mlflow_client: Any
) -> None:
    for filter_string in VERSION_FILTERS:
        for order_by in (None, ["version_number ASC", "name DESC"]):
            ours = _versions(client, filter_string, order_by)
            theirs = _versions(mlflow_client, filter_string, order_by)
            assert ours == theirs, (filter_string, order_by)


def test_an_or_of_names_returns_what_mlflow_returns_for_the_same_names_in_a_list(
    client: Client, mlflow_client: Any
) -> None:
    ours = _models(client, "name = 'churn' OR name = 'iris-lr' OR name = 'nope'")
    assert ours == _models(mlflow_client, "name IN ('churn', 'iris-lr', 'nope')")
    ours_versions = _versions(client, "name = 'churn' OR (name = 'iris-rf' AND tags.kind = 'rf')")
    assert ours_versions == _versions(mlflow_client, "name IN ('churn', 'iris-rf')")


def test_a_registry_page_token_is_the_one_mlflow_gives_for_the_same_page(
    client: Client, mlflow_client: Any
) -> None:
    ours = client.search_registered_models(max_results=2)
    theirs = mlflow_client.search_registered_models(max_results=2)
    theirs_token = theirs.token.decode() if isinstance(theirs.token, bytes) else theirs.token
    assert ours.token == theirs_token
    following = client.search_registered_models(max_results=2, page_token=theirs.token)
    assert [m.name for m in following] == [
        m.name for m in mlflow_client.search_registered_models(max_results=2, page_token=ours.token)
    ]
