"""OpenAPI: the API's description, and interactive docs pages that work offline.

``APIDocs`` serves the OpenAPI document (``/openapi.json``) and the Swagger UI (``/docs``) and
ReDoc (``/redoc``) pages, whose scripts and stylesheets ship inside the package:

```python
from trellis import App
from trellis.openapi import APIDocs
from trellis.testing import TestClient

app = App()
app.install(APIDocs())

with TestClient(app) as client:
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")
    assert client.get("/docs").status_code == client.get("/redoc").status_code == 200
```
"""

from trellis.openapi.docs import APIDocs as APIDocs
from trellis.openapi.docs import assets_version as assets_version
from trellis.openapi.docs import docs_assets as docs_assets
from trellis.openapi.docs import oauth2_redirect_html as oauth2_redirect_html
from trellis.openapi.docs import redoc_html as redoc_html
from trellis.openapi.docs import swagger_ui_html as swagger_ui_html

__all__ = [
    "APIDocs",
    "assets_version",
    "docs_assets",
    "oauth2_redirect_html",
    "redoc_html",
    "swagger_ui_html",
]
