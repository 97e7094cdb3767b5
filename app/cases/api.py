"""The message board feed (第三条, 第九条): ``POST /api/v1/messages`` registers one message.

The route is PUBLIC to the session machinery (no cookie, no CSRF: ``/api/`` is excluded) and
checks its own bearer token (``app.cases.tokens``). Whatever a token delivers is registered in the
token's workspace, the centre, through the same validation as the form. Errors are the app's JSON
errors (``app.web.errors``): 401 without a valid token, 409 for a message already registered,
422 naming the field at fault.

Order of checks: a body that is not a JSON object is refused (400) before the token is looked at,
because Litestar decodes the body before resolving dependencies; everything else needs the token.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import OpenAPIMediaType
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import JSONBody
from litestar.serialization import encode_json
from msgspec import Meta
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.cases import services
from app.cases.attachments import add_attachment
from app.cases.tokens import resolve_token
from app.db import system_session
from app.errors import Conflict, InvalidInput, MinpanError, NotSignedIn
from app.permissions import PUBLIC
from app.tenants.scope import TenantContext, bind_tenant
from app.web.errors import handle
from app.web.ratelimit import limited

SECURITY_SCHEME = "bearerToken"


class TokenRefused(NotSignedIn):
    title = "访问令牌无效"
    default_message = "缺少访问令牌：请在 Authorization 头中提供 Bearer 令牌。"


class NotJson(MinpanError):
    status_code = 400
    default_message = "请求体须为一个 JSON 对象（Content-Type: application/json）。"


class AttachmentPayload(msgspec.Struct, kw_only=True):
    filename: Annotated[str, Meta(description="文件名", examples=["现场照片.jpg"])]
    content_base64: Annotated[
        str, Meta(description="文件内容（Base64）：PDF、PNG/JPEG、Word、Excel 或纯文本，单个不超过 8 MB")
    ]


class MessagePayload(msgspec.Struct, kw_only=True):
    """One message as the message board delivers it (第三条); the form's fields, in English."""

    board: Annotated[
        str, Meta(description="来源板块：mayor（市长板块）或 chairman（主席板块）", examples=["mayor"])
    ]
    source_id: Annotated[
        str,
        Meta(description="留言板上的留言编号，不超过 64 位；同一编号只登记一次", examples=["TL-2026-112001"]),
    ]
    title: Annotated[str, Meta(description="留言标题，不超过 200 字", examples=["小区冬季供暖温度不达标"])]
    body: Annotated[str, Meta(description="留言内容", examples=["我家所在小区室内温度长期低于 16 度……"])]
    posted_at: Annotated[
        str,
        Meta(
            description="留言时间（通辽时间）：2026-11-20 09:30、2026-11-20T09:30 或 2026-11-20",
            examples=["2026-11-20 09:30"],
        ),
    ]
    category: Annotated[
        str,
        Meta(
            description="类别：consult 咨询、suggest 建议、complain 投诉、help 求助、other 其他",
            examples=["complain"],
        ),
    ]
    topic: Annotated[str, Meta(description="领域，不超过 60 字", examples=["城乡建设"])] = ""
    region: Annotated[str, Meta(description="地区，不超过 60 字", examples=["科尔沁区"])] = ""
    citizen_name: Annotated[str, Meta(description="网民姓名（仅工作人员可见）", examples=["王先生"])] = ""
    citizen_phone: Annotated[
        str, Meta(description="联系电话（仅工作人员可见）", examples=["13847510000"])
    ] = ""
    citizen_email: Annotated[str, Meta(description="电子邮箱（仅工作人员可见）", examples=[""])] = ""
    attachments: Annotated[
        list[AttachmentPayload], Meta(description="留言附件；任何一个不合格则整条留言不登记")
    ] = msgspec.field(default_factory=list)


class Registered(msgspec.Struct):
    id: int
    source_id: str
    state: str


class ApiError(msgspec.Struct):
    status: int
    error: str
    detail: str
    field: str | None = None


@dataclass(frozen=True)
class FeedClient:
    token_id: int
    name: str
    workspace_id: int


def provide_feed(request: Request[Any, Any, Any], db: NamedDependency[Session]) -> FeedClient:
    """The bearer token's client; binds the request's session to the token's workspace."""
    if request.content_type[0] != MediaType.JSON:
        raise NotJson()  # malformed, like a body that is not JSON: refused before the token is read
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenRefused()
    # Like a session cookie, the token is resolved by trusted code in its own short transaction.
    with system_session() as lookup:
        token = resolve_token(lookup, value.strip())
        client = FeedClient(token.id, token.name, token.workspace_id) if token else None
    if client is None:
        raise TokenRefused("访问令牌无效或已被吊销。")
    bind_tenant(db, TenantContext.for_workspace(client.workspace_id, None))  # before its first query
    return client


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    response = handle(request, exc)
    response.headers["WWW-Authenticate"] = 'Bearer realm="minpan"'
    return response


_MISSING = re.compile(r"missing required field `(\w+)`")


def _invalid_body(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A field missing or of the wrong type: 422 naming it. No JSON object at all: 400."""
    errors = exc.extra if isinstance(exc, ValidationException) and isinstance(exc.extra, list) else []
    for error in errors:
        if not isinstance(error, dict):
            continue
        message = str(error.get("message", ""))
        missing = _MISSING.search(message)
        name = missing.group(1) if missing else str(error.get("key") or "")
        if name in MessagePayload.__struct_fields__:
            problem = "缺少此字段" if missing else message
            return handle(request, InvalidInput(f"字段 {name} 有误：{problem}。", field=name))
    return handle(request, NotJson())


def _duplicate(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    response = handle(request, exc)
    body = dict(response.content)
    body["field"] = "source_id"
    return Response(body, status_code=response.status_code, media_type=MediaType.JSON)


class MessageFeedController(Controller):
    path = "/api/v1"
    dependencies = {"feed": Provide(provide_feed, sync_to_thread=True)}  # noqa: RUF012
    exception_handlers = {  # noqa: RUF012
        TokenRefused: _refused,
        ValidationException: _invalid_body,
        Conflict: _duplicate,
    }

    @post(
        "/messages",
        opt={**PUBLIC, **limited("intake")},  # per address and token
        sync_to_thread=True,
        status_code=201,
        summary="登记一条留言",
        description="留言板转来的一条留言登记为运维中心的待交办留言（第三条、第九条）。"
        "需要 Authorization: Bearer <令牌>（由运维中心用 minpan api-token create 生成）。",
        response_description="已登记，状态为待交办（received）",
        security=[{SECURITY_SCHEME: []}],
        responses={
            400: ResponseSpec(ApiError, description="请求体不是 JSON 对象", generate_examples=False),
            401: ResponseSpec(
                ApiError, description="缺少访问令牌，或令牌无效、已吊销", generate_examples=False
            ),
            409: ResponseSpec(
                ApiError, description="该留言编号已登记（field 为 source_id）", generate_examples=False
            ),
            422: ResponseSpec(ApiError, description="字段有误，field 指明哪一个", generate_examples=False),
        },
    )
    def receive(
        self, db: NamedDependency[Session], feed: NamedDependency[FeedClient], data: JSONBody[MessagePayload]
    ) -> Registered:
        msg = services.MessageInput.from_form(msgspec.structs.asdict(data))
        try:
            case = services.register_from_feed(db, feed.workspace_id, msg)
        except IntegrityError as exc:  # the same message arrived twice at the same moment
            raise Conflict(f"留言编号 {msg.source_id} 已登记，不能重复登记。") from exc
        for item in data.attachments:  # all in the request's transaction: one bad file, nothing registered
            try:
                content = base64.b64decode(item.content_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidInput(
                    f"附件 {item.filename} 的内容不是有效的 Base64。", field="attachments"
                ) from exc
            try:
                add_attachment(db, None, case, item.filename, content)
            except InvalidInput as exc:
                raise InvalidInput(f"附件 {item.filename}：{exc.message}", field="attachments") from exc
        return Registered(id=case.id, source_id=case.source_id, state=case.state)


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="民盼通办 留言接收接口",
        version="1.0",
        description="人民网地方领导留言板的留言推送到运维中心（第三条、第九条）。",
        path="/api/schema",
        render_plugins=[JsonRenderPlugin()],
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(type="http", scheme="bearer", description="API 令牌")
            }
        ),
    )


@cache
def feed_schema() -> bytes:
    """The OpenAPI document of the feed alone, made by Litestar from an app holding only this API.

    The portal itself keeps OpenAPI off: Litestar 2.25's schema router always adds a catch-all
    ``/api/schema/{path:str}`` 404 page, a route that declares nothing useful and that the route
    walk (public routes answer 200 or 400) refuses. So the document is generated once and served
    by the one PUBLIC route below.
    """
    from litestar import Litestar

    from app.web.deps import DEPENDENCIES

    schema_app = Litestar(
        route_handlers=[MessageFeedController], dependencies=DEPENDENCIES, openapi_config=_openapi_config()
    )
    return encode_json(schema_app.openapi_schema.to_schema())


@get(
    "/api/schema/openapi.json",
    opt=PUBLIC,
    include_in_schema=False,
    sync_to_thread=False,
    media_type=OpenAPIMediaType.OPENAPI_JSON,
)
def feed_openapi() -> Response[bytes]:
    return Response(feed_schema(), media_type=OpenAPIMediaType.OPENAPI_JSON)
