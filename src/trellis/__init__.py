"""Trellis: one Python web framework from a single file to a full stack.

The public face: everything here is stable API. Other names live in their modules
(``trellis.middleware``, ``trellis.testing``, ``trellis.config`` ...).
"""

from trellis.app import App as App
from trellis.background import BackgroundTasks as BackgroundTasks
from trellis.datastructures import URL as URL
from trellis.datastructures import Headers as Headers
from trellis.datastructures import QueryParams as QueryParams
from trellis.exceptions import BadRequestError as BadRequestError
from trellis.exceptions import ConfigurationError as ConfigurationError
from trellis.exceptions import ForbiddenError as ForbiddenError
from trellis.exceptions import HTTPError as HTTPError
from trellis.exceptions import NotFoundError as NotFoundError
from trellis.exceptions import RequestValidationError as RequestValidationError
from trellis.exceptions import UnauthorizedError as UnauthorizedError
from trellis.handlers.params import Body as Body
from trellis.handlers.params import Cookie as Cookie
from trellis.handlers.params import Depends as Depends
from trellis.handlers.params import File as File
from trellis.handlers.params import Form as Form
from trellis.handlers.params import Header as Header
from trellis.handlers.params import Path as Path
from trellis.handlers.params import Query as Query
from trellis.handlers.views import View as View
from trellis.http.request import Request as Request
from trellis.http.response import HTMLResponse as HTMLResponse
from trellis.http.response import JSONResponse as JSONResponse
from trellis.http.response import PlainTextResponse as PlainTextResponse
from trellis.http.response import RedirectResponse as RedirectResponse
from trellis.http.response import Response as Response
from trellis.http.response import StreamingResponse as StreamingResponse
from trellis.routing.router import Router as Router

__version__ = "0.1.0.dev0"

__all__ = [
    "URL",
    "App",
    "BackgroundTasks",
    "BadRequestError",
    "Body",
    "ConfigurationError",
    "Cookie",
    "Depends",
    "File",
    "ForbiddenError",
    "Form",
    "HTMLResponse",
    "HTTPError",
    "Header",
    "Headers",
    "JSONResponse",
    "NotFoundError",
    "Path",
    "PlainTextResponse",
    "Query",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Response",
    "Router",
    "StreamingResponse",
    "UnauthorizedError",
    "View",
    "__version__",
]
