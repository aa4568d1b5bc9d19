"""The Store API (`/store/items`, `/store/items/search`, `/store/namespaces`) as langgraph-sdk's
StoreClient calls it, on LangGraph's own store (PostgreSQL with pgvector, or SQLite).

Each principal has its own space: the namespace a client names is stored under
`("users", <principal>, ...)` (`core.principal.user_namespace`) and answered with those two
labels taken off, so a namespace is never shared between principals, ids reused by two users
never collide, and no crafted namespace reaches another principal's items (there is no label
that climbs out). Another principal's item is simply not there: GET answers `null`, as for a
missing item. The graphs write the user's memories into the same space, so
`search_items(["memories"])` shows what main_agent remembered.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from langgraph.store.base import BaseStore, Item, SearchItem
from langgraph.store.base.embed import get_text_at_path
from pydantic import Field, field_validator, model_validator

from agent_service.api.deps import get_services, principal_of, require_role
from agent_service.api.errors import ApiError
from agent_service.api.models import MAX_OFFSET
from agent_service.core.principal import user_labels, user_namespace
from agent_service.core.request_body import Body

router = APIRouter(tags=["store"], dependencies=[Depends(require_role("user"))])

# Bounds that keep every stored row under PostgreSQL's B-tree entry limit (2704 bytes for the
# (prefix, key[, field_name]) primary keys of `store` and `store_vectors`) whatever the script:
# namespace <= 512 bytes (+ the user's root), key <= 1024 bytes, an index path <= 512 bytes.
MAX_LABEL_CHARS = 128
MAX_DEPTH = 10
MAX_NAMESPACE_BYTES = 512
MAX_KEY_BYTES = 1024
MAX_INDEX_FIELDS = 32
MAX_INDEX_FIELD_CHARS = 128
# Texts one put may embed. A path with a wildcard (`items[*]`, `a.*`) yields one text per
# element, so 32 paths alone do not bound the model's work: a 1 MiB body of short strings
# under `t[*]` would be ~200,000 MiniLM passes (minutes of CPU) from a single request.
# 16 texts of 256 tokens are ~1 s of one core for the local model (64 were 4.5 s).
MAX_EMBEDDED_TEXTS = 16
MAX_QUERY_CHARS = 2000
MAX_SEARCH_LIMIT = 1000
# Minutes; a century bounds the timestamp arithmetic. At least one: LangGraph's PostgreSQL
# store keeps `ttl_minutes` in an INT column (a refresh extends by the rounded value) and
# writes the first deadline as f"{ttl * 60} seconds", which a tiny float turns into exponent
# notation PostgreSQL refuses (a 500); langgraph-sdk's put_item types ttl as int minutes.
MIN_TTL_MINUTES = 1
MAX_TTL_MINUTES = 100 * 365 * 24 * 60
_SEMANTIC_OFF = (
    "semantic search is off on this server (STORE_EMBEDDINGS=none, or the embedded SQLite on "
    "a Python that cannot load sqlite-vec)"
)
FILTER_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})


def namespace_problem(labels: list[str] | tuple[str, ...], *, empty_ok: bool) -> str | None:
    """Why a namespace a client sent cannot be used, or None."""
    if not labels and not empty_ok:
        return "needs at least one label"
    if len(labels) > MAX_DEPTH:
        return f"has {len(labels)} labels, at most {MAX_DEPTH} are allowed"
    for index, label in enumerate(labels):
        if not isinstance(label, str):
            return f"label {index} is not a string"
        if not label:
            return f"label {index} is empty"
        if len(label) > MAX_LABEL_CHARS:
            return f"label {index} is longer than {MAX_LABEL_CHARS} characters"
        if "." in label:
            return f"label {index} contains '.', which separates labels"
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in label):
            return f"label {index} contains a control character"
    if len(".".join(labels).encode()) > MAX_NAMESPACE_BYTES:
        return f"is longer than {MAX_NAMESPACE_BYTES} bytes (UTF-8, labels joined by '.')"
    return None


def _check_namespace(value: list[str] | None, name: str, *, empty_ok: bool) -> None:
    if value is None:
        return
    problem = namespace_problem(value, empty_ok=empty_ok)
    if problem is not None:
        raise ValueError(f"{name} {problem}")


def _check_key(key: str) -> str:
    if not key:
        raise ValueError("key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"key is longer than {MAX_KEY_BYTES} bytes (UTF-8)")
    if "\x00" in key:
        raise ValueError("key contains a NUL character")
    return key


class PutItem(Body):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    # None: the store's fields (STORE_EMBEDDINGS); false: not searchable by meaning; a list:
    # these JSON paths of the value are embedded.
    index: (
        Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=MAX_INDEX_FIELDS)]
        | bool
        | None
    ) = None
    ttl: float | None = Field(default=None, ge=MIN_TTL_MINUTES, le=MAX_TTL_MINUTES)

    @model_validator(mode="after")
    def _valid(self) -> PutItem:
        _check_namespace(self.namespace, "namespace", empty_ok=False)
        _check_key(self.key)
        if self.index is True:
            raise ValueError("index must be false, null or a list of field paths")
        if isinstance(self.index, list):
            for path in self.index:
                if len(path) > MAX_INDEX_FIELD_CHARS:
                    raise ValueError(
                        f"index path is longer than {MAX_INDEX_FIELD_CHARS} characters"
                    )
            texts = sum(len(get_text_at_path(self.value, path)) for path in self.index)
            if texts > MAX_EMBEDDED_TEXTS:
                raise ValueError(
                    f"index selects {texts} texts of the value to embed, at most "
                    f"{MAX_EMBEDDED_TEXTS} are allowed"
                )
        return self


class DeleteItem(Body):
    namespace: list[str] | None = None
    key: str

    @model_validator(mode="after")
    def _valid(self) -> DeleteItem:
        _check_namespace(self.namespace or [], "namespace", empty_ok=False)
        _check_key(self.key)
        return self


def _check_filter(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    for field, condition in value.items():
        if not field or len(field) > MAX_INDEX_FIELD_CHARS:
            raise ValueError(f"filter field names are 1-{MAX_INDEX_FIELD_CHARS} characters")
        # LangGraph's stores read every key of an object condition as an operator (the
        # PostgreSQL store raises on any other: a 500), so an object is matched with $eq.
        if isinstance(condition, dict):
            unknown = sorted(set(condition) - FILTER_OPERATORS)
            if unknown:
                raise ValueError(
                    f"filter on {field[:40]!r} uses unknown operators {unknown}; supported: "
                    f"{sorted(FILTER_OPERATORS)} (match an object with {{'$eq': {{...}}}})"
                )
    return value


class SearchItems(Body):
    namespace_prefix: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=MAX_SEARCH_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)
    query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_CHARS)
    refresh_ttl: bool | None = None

    _filter = field_validator("filter")(_check_filter)

    @model_validator(mode="after")
    def _valid(self) -> SearchItems:
        _check_namespace(self.namespace_prefix, "namespace_prefix", empty_ok=True)
        return self


class ListNamespaces(Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(default=None, ge=1, le=MAX_DEPTH, strict=True)
    limit: int = Field(default=100, ge=1, le=MAX_SEARCH_LIMIT, strict=True)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, strict=True)

    @model_validator(mode="after")
    def _valid(self) -> ListNamespaces:
        _check_namespace(self.prefix, "prefix", empty_ok=True)
        _check_namespace(self.suffix, "suffix", empty_ok=True)
        return self


def _store(request: Request) -> BaseStore:
    return get_services(request).persistence.store


def _item_json(principal: str, item: Item) -> dict[str, Any] | None:
    labels = user_labels(principal, item.namespace)
    if labels is None:
        return None  # not reachable through the prefix; kept as a second fence
    body: dict[str, Any] = {
        "namespace": list(labels),
        "key": item.key,
        "value": item.value,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }
    if isinstance(item, SearchItem):
        body["score"] = item.score
    return body


def _invalid(detail: str, field: str) -> ApiError:
    return ApiError(
        422,
        "validation_error",
        f"invalid request: {field}: {detail}",
        errors=[{"field": field, "message": detail}],
    )


@router.put("/store/items", status_code=204)
async def put_item(request: Request, body: PutItem) -> Response:
    principal = principal_of(request)
    store = _store(request)
    index = body.index if body.index is not True else None
    if isinstance(index, list) and getattr(store, "index_config", None) is None:
        raise _invalid(_SEMANTIC_OFF, "index")
    await store.aput(
        user_namespace(principal, *body.namespace),
        body.key,
        body.value,
        index=index,
        ttl=body.ttl,
    )
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(
    request: Request,
    key: Annotated[str, Query(min_length=1)],
    namespace: Annotated[str, Query()] = "",
    refresh_ttl: Annotated[bool | None, Query()] = None,
) -> dict[str, Any] | None:
    """The item, or `null` when the caller has no such item (LangGraph's server answers the
    same)."""
    labels = namespace.split(".") if namespace else []
    problem = namespace_problem(labels, empty_ok=False)
    if problem is not None:
        raise _invalid(f"namespace {problem}", "namespace")
    try:
        _check_key(key)
    except ValueError as exc:
        raise _invalid(str(exc), "key") from exc
    principal = principal_of(request)
    item = await _store(request).aget(
        user_namespace(principal, *labels), key, refresh_ttl=refresh_ttl
    )
    return None if item is None else _item_json(principal, item)


@router.delete("/store/items", status_code=204)
async def delete_item(request: Request, body: DeleteItem) -> Response:
    """Deleting what is not there succeeds, as in LangGraph's server."""
    principal = principal_of(request)
    await _store(request).adelete(user_namespace(principal, *(body.namespace or [])), body.key)
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(request: Request, body: SearchItems) -> dict[str, Any]:
    principal = principal_of(request)
    store = _store(request)
    if body.query is not None and getattr(store, "index_config", None) is None:
        raise _invalid(_SEMANTIC_OFF, "query")
    items = await store.asearch(
        user_namespace(principal, *body.namespace_prefix),
        query=body.query,
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        refresh_ttl=body.refresh_ttl,
    )
    found = [_item_json(principal, item) for item in items]
    return {"items": [item for item in found if item is not None]}


@router.post("/store/namespaces")
async def list_namespaces(request: Request, body: ListNamespaces) -> dict[str, Any]:
    principal = principal_of(request)
    suffix = tuple(body.suffix or ())
    store_of = _store(request)
    namespaces = await store_of.alist_namespaces(
        prefix=user_namespace(principal, *(body.prefix or ())),
        suffix=suffix or None,
        # The user's root takes two labels of the stored depth.
        max_depth=None if body.max_depth is None else body.max_depth + 2,
        limit=body.limit,
        offset=body.offset,
    )
    shown = []
    for namespace in namespaces:
        labels = user_labels(principal, namespace)
        if labels and await _suffix_is_the_users(store_of, principal, labels, suffix, body):
            shown.append(list(labels))
    return {"namespaces": shown}


async def _suffix_is_the_users(
    store: BaseStore,
    principal: str,
    labels: tuple[str, ...],
    suffix: tuple[str, ...],
    body: ListNamespaces,
) -> bool:
    """Whether a namespace the store matched on `suffix` matched within the user's labels: a
    suffix longer than them matched into the root `("users", <principal>)`. A namespace cut
    at `max_depth` ends with the cut, not with the suffix; the suffix is then checked on the
    full namespaces under it (only when it is longer than the cut and could reach the root)."""
    if not suffix:
        return True
    cut = body.max_depth is not None and len(labels) == body.max_depth
    if not cut:
        return labels[-len(suffix) :] == suffix
    if len(suffix) <= len(labels):
        return True  # the full namespace has at least len(labels) labels of the user's
    full = await store.alist_namespaces(
        prefix=user_namespace(principal, *labels), suffix=suffix, limit=MAX_SEARCH_LIMIT
    )
    return any(
        (own := user_labels(principal, ns)) is not None and len(own) >= len(suffix) for ns in full
    )
