"""OpenAI-shaped errors: {"error": {"message", "type", "param", "code"}} with the right status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("lethe.http")


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def detector_unavailable() -> APIError:
    return APIError(503, "The gateway cannot check this request right now; retry later.",
                    type="service_unavailable", code="detector_unavailable", headers={"Retry-After": "5"})


def detection_too_large(reason: object) -> APIError:
    # Refused rather than served unchecked, whatever the tenant's on_detector_error says.
    return APIError(400, f"This conversation is too large to check for forget targets: {reason}.", param="messages",
                    code="detection_limit_exceeded")


def client_gone() -> APIError:
    # Nobody reads it; the status (nginx's "client closed request") keeps a client that left out of
    # the server's 5xx count and its log free of a traceback.
    return APIError(499, "The client closed the request before the answer was ready.", code="client_closed_request")


def error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


_STATUS_ERRORS = {
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        param = ".".join(loc) or None
        if first.get("type") == "json_invalid":
            message = "We could not parse the JSON body of your request."
        else:
            message = f"Invalid value for '{param}': {first.get('msg', 'invalid')}" if param else first.get("msg", "Invalid request")
        return error_response(bad_request(message, param=param, code="invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        type_, code = _STATUS_ERRORS.get(exc.status_code, ("invalid_request_error", None))
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "Unknown route."
        return error_response(APIError(exc.status_code, message, type=type_, code=code))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(APIError(500, "The server had an error while processing your request.", type="server_error"))
