"""Domain exceptions. Each is mapped once, in app.web.errors, to a Chinese page or htmx fragment."""

from __future__ import annotations


class MinpanError(Exception):
    status_code = 400
    title = "请求有误"
    default_message = "请求有误，请检查后重试。"
    field: str | None = None  # the form field at fault, when there is one

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class NotSignedIn(MinpanError):
    status_code = 401
    title = "请先登录"
    default_message = "请先登录后再访问该页面。"


class PasswordChangeRequired(MinpanError):
    status_code = 401
    title = "请先修改密码"
    default_message = "首次登录或密码被重置后，须先设置新密码。"


class Forbidden(MinpanError):
    status_code = 403
    title = "无权访问"
    default_message = "您在当前工作区没有执行此操作的权限。"


class NotFound(MinpanError):
    # A missing object and another workspace's object look exactly alike (tenant isolation).
    status_code = 404
    title = "未找到"
    default_message = "您访问的页面或记录不存在。"


class Conflict(MinpanError):
    status_code = 409
    title = "操作冲突"
    default_message = "该记录已被他人处理，请刷新后重试。"


class InvalidInput(MinpanError):
    status_code = 422
    title = "填写有误"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
