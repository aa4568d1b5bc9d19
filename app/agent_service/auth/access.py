"""What an authenticated principal may do: its roles and the graphs it may run.

Roles (PRINCIPAL_ROLES, next to API_KEYS):
- `user`: threads, runs and its own GDPR export/delete, on the graphs of its allow-list;
- `approver`: resumes an approval interrupt (main_agent's refunds, support_agent's
  escalations), also on another principal's thread that is waiting for one;
- `admin`: exports or deletes any user's data.
A principal not listed in PRINCIPAL_ROLES is a `user`; ADMIN_PRINCIPALS adds `admin`.
PRINCIPAL_GRAPHS limits a principal to the listed graphs; a principal not listed may run every
graph. Every refusal is a `Forbidden` whose sentence names the missing role or graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

Role = Literal["user", "approver", "admin"]
ROLES: tuple[Role, ...] = ("user", "approver", "admin")
DEFAULT_ROLES: frozenset[Role] = frozenset({"user"})


class Forbidden(Exception):
    """The principal is authenticated but lacks a role or a graph (HTTP 403)."""


class AccessPolicy:
    def __init__(
        self,
        roles: Mapping[str, Iterable[Role]],
        graphs: Mapping[str, Iterable[str]],
        *,
        admins: Iterable[str] = (),
        approval_graphs: Iterable[str] = (),
    ) -> None:
        self._roles = {principal: frozenset(granted) for principal, granted in roles.items()}
        for admin in admins:
            self._roles[admin] = self._roles.get(admin, DEFAULT_ROLES) | {"admin"}
        self._graphs = {principal: frozenset(allowed) for principal, allowed in graphs.items()}
        self.approval_graphs = frozenset(approval_graphs)

    def roles_of(self, principal: str) -> frozenset[Role]:
        return self._roles.get(principal, DEFAULT_ROLES)

    def has(self, principal: str, role: Role) -> bool:
        return role in self.roles_of(principal)

    def require(self, principal: str, *any_of: Role, action: str) -> None:
        if any(self.has(principal, role) for role in any_of):
            return
        needed = " or ".join(repr(role) for role in any_of)
        held = sorted(self.roles_of(principal))
        raise Forbidden(
            f"{action} needs role {needed}; principal {principal!r} has roles {held} "
            "(PRINCIPAL_ROLES)"
        )

    def may_run(self, principal: str, graph_id: str) -> bool:
        allowed = self._graphs.get(principal)
        return allowed is None or graph_id in allowed

    def require_graph(self, principal: str, graph_id: str) -> None:
        if not self.may_run(principal, graph_id):
            raise Forbidden(
                f"principal {principal!r} may not use graph {graph_id!r} (PRINCIPAL_GRAPHS)"
            )

    def unknown_graphs(self, known: Iterable[str]) -> dict[str, list[str]]:
        """Graphs named in the allow-lists that the service does not serve, by principal."""
        served = set(known)
        return {
            principal: sorted(allowed - served)
            for principal, allowed in self._graphs.items()
            if allowed - served
        }
