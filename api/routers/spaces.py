"""Search spaces: the shipped ones, and ``hwnas.space/1`` definitions each tenant registers.

A registered definition is kept by content hash for good: a job pins the hash of
its space at submit, so registering other content under the name later changes
what new jobs get, never what an old job runs on or exports.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Depends, Path, Response, status

from api.auth import CallerDep, current_caller
from api.deps import SessionFactory
from api.problems import COMMON_ERRORS, Problem, field_error, problem_responses
from api.schemas import SearchSpaceDetail, SearchSpacePublic, SearchSpaceRegistered, SearchSpaceVersion
from nas import service
from search_spaces import SPACES, SearchSpace, SpaceDefinitionError
from search_spaces.definition import MAX_DEFINITION_BYTES, NAME_PATTERN
from storage import spaces as spaces_q
from storage.db import session_scope

router = APIRouter(prefix="/v1/search-spaces", tags=["catalog"], dependencies=[Depends(current_caller)],
                   responses={**COMMON_ERRORS, **problem_responses(404)})
SpaceName = Annotated[str, Path(pattern=NAME_PATTERN.pattern, description="search space name")]


def space_public(space: SearchSpace, source: str) -> SearchSpacePublic:
    return SearchSpacePublic(name=space.name, description=space.description, size=space.size,
                             choices=[list(c) for c in space.choices], example=space.sample(np.random.default_rng(0)),
                             content_hash=space.content_hash, source=source)


@router.get("", response_model=list[SearchSpacePublic], operation_id="list_search_spaces")
def list_search_spaces(factory: SessionFactory, caller: CallerDep) -> list[SearchSpacePublic]:
    """The shipped spaces, then the caller's registered ones (each name's current definition)."""
    with session_scope(factory) as s:
        rows = [(r.content_hash, r.definition) for r in spaces_q.list_current(s, caller.tenant_id)]
    return [*(space_public(sp, "shipped") for _, sp in sorted(SPACES.items())),
            *(space_public(service.parsed_space(h, d), "registered") for h, d in rows)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SearchSpaceRegistered,
             operation_id="register_search_space",
             responses={200: {"description": "This definition already was the current one of its name",
                              "model": SearchSpaceRegistered}, **problem_responses(400, 409, 413)})
def register_search_space(
        definition: Annotated[dict[str, Any], Body(description="A search space definition (hwnas.space/1)")],
        response: Response, factory: SessionFactory, caller: CallerDep) -> SearchSpaceRegistered:
    """Register a definition under its ``name`` for the caller's tenant (201), or find it unchanged (200).

    A definition that does not parse is a 422 listing every problem with its JSON
    path (``$.stages[1].stride``). Jobs submitted afterwards naming the space use
    this definition; earlier jobs keep the one they pinned.
    """
    size = len(json.dumps(definition))
    if size > MAX_DEFINITION_BYTES:
        raise Problem(413, "Definition too large", f"the definition is {size} bytes; at most {MAX_DEFINITION_BYTES}")
    try:
        space, version, changed = service.register_space(factory, definition, tenant_id=caller.tenant_id)
    except SpaceDefinitionError as exc:
        raise Problem(422, "Invalid search space definition", "; ".join(f"{p}: {m}" for p, m in exc.errors),
                      [field_error(p, m) for p, m in exc.errors]) from None
    except service.SpaceNameTaken as exc:
        raise Problem(409, "Search space name taken", str(exc), [field_error("$.name", str(exc))]) from None
    if not changed:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/search-spaces/{space.name}"
    return SearchSpaceRegistered(name=space.name, content_hash=space.content_hash, version=version,
                                 size=space.size, signatures=len(space.all_op_signatures()))


@router.get("/{name}", response_model=SearchSpaceDetail, operation_id="get_search_space")
def get_search_space(name: SpaceName, factory: SessionFactory, caller: CallerDep) -> SearchSpaceDetail:
    """A space with its definition and op signatures; a registered one also lists its versions."""
    shipped = SPACES.get(name)
    if shipped is not None:
        return SearchSpaceDetail(**space_public(shipped, "shipped").model_dump(), definition=shipped.definition(),
                                 signatures=shipped.all_op_signatures(), versions=[])
    with session_scope(factory) as s:
        rows = spaces_q.versions(s, caller.tenant_id, name)
        versions = [SearchSpaceVersion(version=r.version, content_hash=r.content_hash, registered_at=r.registered_at)
                    for r in rows]
        current = max(rows, key=lambda r: r.version) if rows else None
        found = (current.content_hash, current.definition) if current is not None else None
    if found is None:
        raise Problem(404, "Search space not found", f"no search space {name!r}")
    space = service.parsed_space(*found)
    return SearchSpaceDetail(**space_public(space, "registered").model_dump(), definition=found[1],
                             signatures=space.all_op_signatures(), versions=sorted(versions, key=lambda v: v.version))
