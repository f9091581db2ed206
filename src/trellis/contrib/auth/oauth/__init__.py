"""Log in with another site: OAuth 2 and OpenID Connect providers for the auth battery.

```python
from trellis.contrib.auth import Auth
from trellis.contrib.auth.oauth import GitHub, Google

app.install(Auth(oauth=[GitHub("id", "secret"), Google("id", "secret")]))
# GET /auth/oauth/github/login?next=/account  -> GitHub -> /auth/oauth/github/callback
```

The routes live in ``trellis.contrib.auth.oauth.routes`` (``Auth`` includes them), the rules
that tie a provider's account to a ``User`` in ``trellis.contrib.auth.oauth.linking``.
Needs the ``auth`` extra (Authlib).
"""

from trellis.contrib.auth.oauth.client import OAuthLoginError
from trellis.contrib.auth.oauth.providers import (
    GitHub,
    Google,
    OAuthIdentity,
    OAuthProvider,
    OIDCProvider,
)

__all__ = [
    "GitHub",
    "Google",
    "OAuthIdentity",
    "OAuthLoginError",
    "OAuthProvider",
    "OIDCProvider",
]
