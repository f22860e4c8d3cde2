"""Circle's OpenAPI spec from ../shared/reference, for checking that test payloads have real shapes.

`validate(name, instance)` checks against a component schema, `validate_operation(...)` against an
operation's request or response schema; both skip the test (with the reason) if the spec is absent.
Also builds payment intent payloads shaped like Circle's.
"""

from __future__ import annotations

import functools
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT4

from sandbox.reference import reference_dir

#: Where the spec lives relative to a directory that holds `shared/` (the repo's parent).
SPEC_RELATIVE = Path("shared/reference/circle-openapi.json")
#: Set this to the spec's path to use another copy.
SPEC_ENV = "ITINERABOT_CIRCLE_SPEC"
_SPEC_URI = "urn:circle-openapi"


def find_spec() -> Path | None:
    """The spec file: $ITINERABOT_CIRCLE_SPEC, else the shared reference folder's copy."""
    override = os.environ.get(SPEC_ENV)
    if override:
        return Path(override) if Path(override).is_file() else None
    try:
        candidate = reference_dir() / SPEC_RELATIVE.name
    except FileNotFoundError:
        return None
    return candidate if candidate.is_file() else None


@functools.cache
def _load() -> dict[str, Any] | None:
    path = find_spec()
    if path is None:
        return None
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def load_spec() -> dict[str, Any]:
    """The parsed spec; fails the calling test if it cannot be found (a shape check that
    silently skips would prove nothing)."""
    spec = _load()
    if spec is None:
        pytest.fail(
            f"Circle OpenAPI spec not found: expected {SPEC_RELATIVE.name} in the shared"
            f" reference folder ($ITINERABOT_REFERENCE_DIR), or a path in ${SPEC_ENV}"
        )
    return spec


def _validator(pointer: str) -> Any:
    spec = load_spec()
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, DRAFT4.create_resource(spec))
    return jsonschema.Draft4Validator(
        {"$ref": f"{_SPEC_URI}#{pointer}"},
        registry=registry,
        format_checker=jsonschema.FormatChecker(),
    )


def _check(pointer: str, instance: Any) -> None:
    errors = sorted(_validator(pointer).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        lines = "\n".join(f"  at {list(e.path)}: {e.message}" for e in errors)
        raise AssertionError(f"does not validate against {pointer}:\n{lines}")


def validate(schema_name: str, instance: Any) -> None:
    """Assert `instance` validates against `components/schemas/<schema_name>` ($refs resolved)."""
    _check(f"/components/schemas/{schema_name}", instance)


def validate_operation(
    path: str, method: str, instance: Any, *, response: int | None = None
) -> None:
    """Assert `instance` fits an operation's JSON request body, or its `response` status body."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    where = f"responses/{response}" if response is not None else "requestBody"
    _check(f"/paths/{escaped}/{method}/{where}/content/application~1json/schema", instance)


def operation_examples(path: str, method: str, status: int) -> dict[str, Any]:
    """The named example bodies the spec gives for one response."""
    content = load_spec()["paths"][path][method]["responses"][str(status)]["content"]
    examples: dict[str, Any] = content["application/json"]["examples"]
    return {name: example["value"] for name, example in examples.items()}


INTENT_ID = "8755d0ea-14f9-4259-b092-de23c14b6568"
ADDRESS = "0x8381470ED67C3802402dbbFa0058E8871F017A6F"


def timeline_entry(status: str, time: str, context: str | None = None) -> dict[str, str]:
    """One Circle timeline entry."""
    entry = {"status": status, "time": time}
    if context is not None:
        entry["context"] = context
    return entry


def payment_intent(
    *,
    intent_id: str = INTENT_ID,
    amount: Decimal | str = "10.00",
    amount_paid: Decimal | str | None = "0.00",
    chain: str = "ETH",
    address: str | None = None,
    timeline: list[dict[str, str]] | None = None,
    payment_ids: list[str] | None = None,
    expires_on: str | None = None,
) -> dict[str, Any]:
    """A transient payment intent object shaped like Circle's (the inside of `data`)."""
    method: dict[str, str] = {"type": "blockchain", "chain": chain}
    if address is not None:
        method["address"] = address
    intent: dict[str, Any] = {
        "id": intent_id,
        "amount": {"amount": str(amount), "currency": "USD"},
        "settlementCurrency": "USD",
        "paymentMethods": [method],
        "paymentIds": payment_ids or [],
        "timeline": timeline
        if timeline is not None
        else [timeline_entry("created", "2022-07-21T20:13:35.579331Z")],
        "createDate": "2022-07-21T20:13:35.578678Z",
        "updateDate": "2022-07-21T20:19:24.859052Z",
    }
    if amount_paid is not None:
        intent["amountPaid"] = {"amount": str(amount_paid), "currency": "USD"}
    if expires_on is not None:
        intent["expiresOn"] = expires_on
    return intent
