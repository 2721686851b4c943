"""A run's dataset inputs: checked, deduplicated, and kept in the ``inputs`` list of its
``meta.yaml`` (DESIGN §3).

MLflow identifies a dataset by its name and digest and records one input a run per dataset:
logging the same dataset to a run again (even with another context) changes nothing, and its
first tags stay. The same rule applies here, on live and on ended runs, so a script logs the
same inputs to either store. The stored form is the entities' ``to_dictionary``: each entry
``{"dataset": {name, digest, source_type, source, schema, profile}, "tags": {key: value}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gittrack.entities import Dataset, DatasetInput, InputTag
from gittrack.errors import InvalidInputError
from gittrack.store.validation import check_length, check_text

# MLflow's limits (``mlflow.utils.validation``), so what one store takes the other takes too.
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_SIZE = 65535
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_PROFILE_SIZE = 16777215
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500
MAX_DATASETS_PER_BATCH = 1000
DATASET_CONTEXT_TAG = "mlflow.data.context"

_FIELDS = (
    ("name", MAX_DATASET_NAME_SIZE, True),
    ("digest", MAX_DATASET_DIGEST_SIZE, True),
    ("source_type", MAX_DATASET_SOURCE_SIZE, True),
    ("source", MAX_DATASET_SOURCE_SIZE, True),
    ("schema", MAX_DATASET_SCHEMA_SIZE, False),
    ("profile", MAX_DATASET_PROFILE_SIZE, False),
)


def check_dataset_inputs(dataset_inputs: Sequence[DatasetInput] | None) -> list[dict[str, Any]]:
    """Check dataset inputs and return them as stored entries, duplicates dropped.

    :param dataset_inputs: ``DatasetInput`` entities (``gittrack.data`` datasets become one
        through ``to_entity``).
    :returns: the entries to store, in order, the first of each (name, digest) kept.
    :raises InvalidInputError: a field missing, not a string or over MLflow's size limit, a
        bad tag, or more than 1000 inputs in one call; nothing is written then.
    """
    inputs = list(dataset_inputs or [])
    if len(inputs) > MAX_DATASETS_PER_BATCH:
        raise InvalidInputError(
            f"{len(inputs)} dataset inputs in one call; at most {MAX_DATASETS_PER_BATCH} are allowed"
        )
    entries = [_checked_input(item) for item in inputs]
    return merge_inputs([], entries)


def _checked_input(item: object) -> dict[str, Any]:
    if not isinstance(item, DatasetInput) or not isinstance(item.dataset, Dataset):
        raise InvalidInputError(
            f"a dataset input must be a DatasetInput holding a Dataset, not {type(item).__name__}"
        )
    dataset = {
        name: _checked_field(item.dataset, name, limit, required)
        for name, limit, required in _FIELDS
    }
    tags = {}
    for tag in item.tags or []:
        if not isinstance(tag, InputTag):
            raise InvalidInputError(f"an input tag must be an InputTag, not {type(tag).__name__}")
        key = _checked_text(tag.key, "input tag key", MAX_INPUT_TAG_KEY_SIZE)
        tags[key] = _checked_text(tag.value, f"input tag {key!r} value", MAX_INPUT_TAG_VALUE_SIZE)
    return {"dataset": dataset, "tags": tags}


def _checked_field(dataset: Dataset, name: str, limit: int, required: bool) -> str | None:
    value = getattr(dataset, name)
    if value is None and not required:
        return None
    if value is None or value == "":
        raise InvalidInputError(f"dataset {name} is required (dataset {dataset.name!r})")
    return _checked_text(value, f"dataset {name}", limit)


def _checked_text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} {value!r} must be a string, not {type(value).__name__}")
    check_length(value, what, limit)
    check_text(value, what)
    return value


def merge_inputs(
    stored: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``stored`` followed by the entries of ``new`` whose dataset (name, digest) is not there
    yet: MLflow's deduplication. Also the merge rule of two clones' ``inputs`` lists."""
    merged = list(stored)
    seen = {_identity(entry) for entry in merged}
    for entry in new:
        identity = _identity(entry)
        if identity not in seen:
            seen.add(identity)
            merged.append(entry)
    return merged


def _identity(entry: dict[str, Any]) -> tuple[str, str]:
    dataset = entry["dataset"]
    return dataset["name"], dataset["digest"]


def search_triples(entries: Iterable[dict[str, Any]]) -> list[list[str | None]]:
    """(name, digest, context) of each input: what ``dataset.*`` filters compare."""
    return [
        [
            e["dataset"]["name"],
            e["dataset"]["digest"],
            (e.get("tags") or {}).get(DATASET_CONTEXT_TAG),
        ]
        for e in entries
    ]
