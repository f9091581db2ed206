"""The development inspector: what each request did (SQL, templates, headers, session, timing).

```py
from trellis import App
from trellis.contrib.inspector import Inspector

app = App(debug=True)
if app.debug:                      # it refuses to be installed otherwise
    app.install(Inspector())       # pages at /_inspector, a toolbar on every HTML page
```

Debug mode only: ``Inspector.setup`` raises ``ConfigurationError`` when the app is not in
debug mode, so its pages can never be served in production.
"""

from trellis.contrib.inspector.plugin import Inspector as Inspector
from trellis.contrib.inspector.records import QueryRecord as QueryRecord
from trellis.contrib.inspector.records import RequestRecord as RequestRecord
from trellis.contrib.inspector.records import TemplateRecord as TemplateRecord

__all__ = ["Inspector", "QueryRecord", "RequestRecord", "TemplateRecord"]
