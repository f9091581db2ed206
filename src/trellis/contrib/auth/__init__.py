"""The auth battery: users, sign-in, tokens, JWTs and permissions.

```python
from trellis import App
from trellis.contrib.auth import Auth, CurrentUser, requires
from trellis.contrib.db import Database
from trellis.testing import TestClient

app = App()
app.install(Database("sqlite://"))
auth = app.install(Auth())


@app.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    return {"email": user.email}


@app.post("/articles/{id:int}/publish", dependencies=[requires("articles.publish")])
async def publish(id: int) -> None: ...


with TestClient(app) as client:
    assert client.get("/me").status_code == 401  # signed in: {"email": ...}
    assert client.post("/articles/1/publish").status_code == 401
```

Needs the ``auth`` extra: ``pip install 'trellis[auth]'`` (argon2-cffi, PyJWT, Authlib).
"""

from trellis.contrib.auth.dependencies import (
    CurrentUser,
    LoginRequiredError,
    OptionalUser,
    current_user,
    optional_user,
)
from trellis.contrib.auth.hashing import PasswordHasher
from trellis.contrib.auth.jwt import JWTConfig
from trellis.contrib.auth.login import auth_of, login, logout
from trellis.contrib.auth.models import AuthToken, Group, OAuthAccount, Permission, User
from trellis.contrib.auth.permissions import get_access, requires, user_has_perm
from trellis.contrib.auth.plugin import Auth

__all__ = [
    "Auth",
    "AuthToken",
    "CurrentUser",
    "Group",
    "JWTConfig",
    "LoginRequiredError",
    "OAuthAccount",
    "OptionalUser",
    "PasswordHasher",
    "Permission",
    "User",
    "auth_of",
    "current_user",
    "get_access",
    "login",
    "logout",
    "optional_user",
    "requires",
    "user_has_perm",
]
