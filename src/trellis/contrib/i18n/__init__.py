"""The i18n battery: translations (Babel catalogs), locale selection and localized formatting.

```python
from trellis import App
from trellis.contrib.i18n import I18n, format_currency
from trellis.i18n import gettext as _
from trellis.testing import TestClient

app = App()
app.install(I18n(default_locale="en", locales=("en", "fr"), timezone="Europe/Paris"))


@app.get("/price")
async def price() -> dict[str, str]:
    return {"label": _("Price"), "value": format_currency(12.5, "EUR")}


with TestClient(app) as client:
    assert client.get("/price").json() == {"label": "Price", "value": "€12.50"}
    french = client.get("/price", headers={"accept-language": "fr"}).json()
    assert french["value"] == "12,50\u00a0€"  # no catalog here: the label stays "Price"
```

Messages are marked with ``trellis.i18n`` (``gettext``, ``ngettext``, ``pgettext``,
``lazy_gettext``) in Python and ``{{ _("...") }}`` / ``{% trans %}`` in templates, collected
with ``trellis i18n extract``, translated in ``.po`` files and compiled with ``trellis i18n
compile``. Needs the ``i18n`` extra: ``pip install 'trellis[i18n]'`` (Babel).
"""

from trellis.contrib.i18n.formatting import (
    format_currency as format_currency,
)
from trellis.contrib.i18n.formatting import (
    format_date as format_date,
)
from trellis.contrib.i18n.formatting import (
    format_datetime as format_datetime,
)
from trellis.contrib.i18n.formatting import (
    format_decimal as format_decimal,
)
from trellis.contrib.i18n.formatting import (
    format_number as format_number,
)
from trellis.contrib.i18n.formatting import (
    format_percent as format_percent,
)
from trellis.contrib.i18n.formatting import (
    format_time as format_time,
)
from trellis.contrib.i18n.formatting import (
    format_timedelta as format_timedelta,
)
from trellis.contrib.i18n.formatting import (
    get_timezone as get_timezone,
)
from trellis.contrib.i18n.formatting import (
    to_user_timezone as to_user_timezone,
)
from trellis.contrib.i18n.formatting import (
    to_utc as to_utc,
)
from trellis.contrib.i18n.plugin import I18n as I18n
from trellis.i18n import (
    get_locale as get_locale,
)
from trellis.i18n import (
    gettext as gettext,
)
from trellis.i18n import (
    lazy_gettext as lazy_gettext,
)
from trellis.i18n import (
    ngettext as ngettext,
)
from trellis.i18n import (
    npgettext as npgettext,
)
from trellis.i18n import (
    pgettext as pgettext,
)

__all__ = [
    "I18n",
    "format_currency",
    "format_date",
    "format_datetime",
    "format_decimal",
    "format_number",
    "format_percent",
    "format_time",
    "format_timedelta",
    "get_locale",
    "get_timezone",
    "gettext",
    "lazy_gettext",
    "ngettext",
    "npgettext",
    "pgettext",
    "to_user_timezone",
    "to_utc",
]
