"""Who may call the server, and how: what a careful service checks before it reads a request.

- **Host**: a server bound to loopback answers only requests whose `Host` header names loopback
  (`localhost`, `127.0.0.1`, `[::1]`) or a host allowed with `--allowed-hosts`, so that a web page
  whose name was made to resolve to 127.0.0.1 (DNS rebinding) cannot read its answers (400).
- **Content type**: the API takes `application/json` bodies only (415): a web page can send a
  `text/plain` or form body to any address without asking, but not a JSON one.
- **Origin**: a request a browser sends from another site's page (its `Origin` names another host)
  is refused (403) unless that origin is allowed with `--cors-origins`, which also answers the
  browser's CORS preflight for it. Cross-origin access is off by default.
- **API key**: with `--api-key` (or `$KERAS_QA_API_KEY`, read by `python -m keras_qa.serve`) every
  API call must carry `Authorization: Bearer <key>` (401); the web page asks for the key, and
  `huggingface_hub.InferenceClient(token=...)` sends it.
- **Read timeout**: a request whose body does not arrive within `read_timeout` seconds gets 408 and
  its connection is closed, so that slow clients cannot hold connections open (slowloris).
"""

import dataclasses
import hmac
import ipaddress

from keras_qa.serving.requests import RequestError

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
JSON_TYPES = ("application/json",)


@dataclasses.dataclass(frozen=True)
class Access:
    """What the server lets in.

    Args:
        allowed_hosts: host names a request's `Host` header may name (without the port); None
            allows any (a server bound beyond loopback, behind its own proxy or firewall).
        cors_origins: origins (`https://app.example`) whose pages may call the API.
        api_key: the key every API call must send as a bearer token; None for none.
        read_timeout: seconds a request's body may take to arrive.
    """

    allowed_hosts: tuple | None = LOOPBACK_HOSTS
    cors_origins: tuple = ()
    api_key: str | None = None
    read_timeout: float = 30.0

    def check_host(self, headers):
        """A `RequestError` (400) for a `Host` header that is not allowed."""
        if self.allowed_hosts is None:
            return
        host = host_name(headers.get("host", ""))
        if host not in self.allowed_hosts:
            raise RequestError(
                400,
                f"the Host header {headers.get('host', '')!r} is not one this server answers "
                f"(--allowed-hosts: {', '.join(self.allowed_hosts)})",
            )

    def check_api_call(self, headers):
        """A `RequestError` for an API call that is not JSON (415), comes from a page of another
        origin (403) or lacks the API key (401)."""
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            raise RequestError(
                415, f"the body must be JSON (Content-Type: application/json), not {content_type!r}"
            )
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin, headers.get("host", "")):
            raise RequestError(
                403, f"requests from pages of {origin} are not allowed (see --cors-origins)"
            )
        if self.api_key is not None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), self.api_key.encode()
            ):
                raise RequestError(
                    401,
                    "this server needs its API key: send Authorization: Bearer <key>",
                    {"WWW-Authenticate": "Bearer"},
                )

    def origin_allowed(self, origin, host):
        """The server's own pages (the origin names the `Host` the request was sent to) and the
        origins allowed for CORS."""
        own = origin.split("://", 1)[-1].rstrip("/").lower() == host.strip().lower()
        return own or origin.rstrip("/") in self.cors_origins


class HostGuard:
    """ASGI middleware: every HTTP request's `Host` checked before the application sees it."""

    def __init__(self, app, access):
        self.app, self.access = app, access

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {
                key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
            }
            try:
                self.access.check_host(headers)
            except RequestError as error:
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def host_name(host):
    """The name of a `Host` header without its port: `[::1]:8000` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(address):
    """Whether the address a server binds to can be reached only from this machine."""
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False
