"""Who is asking: the signed-in person, their posts and their current workspace."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.permissions import Permission, Role, allows


@dataclass(frozen=True)
class Post:
    """A workspace in which the person holds at least one role."""

    workspace_id: int
    slug: str
    name: str
    short_name: str
    kind: str
    roles: tuple[str, ...]

    @property
    def kind_label(self) -> str:
        from app.tenants.models import WORKSPACE_KIND_LABELS, WorkspaceKind

        return WORKSPACE_KIND_LABELS[WorkspaceKind(self.kind)]

    @property
    def role_labels(self) -> list[str]:
        return [Role(r).label for r in self.roles if r in Role.__members__.values()]


@dataclass(frozen=True)
class CurrentUser:
    user_id: int
    username: str
    display_name: str
    session_id: str
    must_change_password: bool
    posts: tuple[Post, ...]
    workspace: Post | None
    ip: str = ""
    _cache: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def roles(self) -> tuple[str, ...]:
        return self.workspace.roles if self.workspace else ()

    @property
    def workspace_id(self) -> int | None:
        return self.workspace.workspace_id if self.workspace else None

    def can(self, permission: Permission) -> bool:
        if self.workspace is None:
            return False
        cached = self._cache.get(permission.value)
        if cached is None:
            cached = allows(self.workspace.roles, self.workspace.kind, permission)
            self._cache[permission.value] = cached
        return cached

    def has_role(self, role: Role) -> bool:
        return role.value in self.roles
