"""Django (ASGI, async views, no middleware) with the ORM on PostgreSQL over psycopg 3.

/db is ``await World.objects.aget(id=...)``; /fortunes is ``[f async for f in
Fortune.objects.all()]`` plus an unsaved ``Fortune(id=0, ...)``, sorted in Python and rendered
by a Django template (autoescape on) loaded once.

Connections: under ASGI every request runs its sync ORM work in a new asgiref thread
(``ThreadSensitiveContext``) and Django's connections are per thread, so persistent connections
(``CONN_MAX_AGE``, what TFB's WSGI django entry uses) would open a new connection per request and
leave the old ones to the garbage collector. (tried: with ``CONN_MAX_AGE=None`` and 16
wrk connections the app had 87 server connections after 2 s, then PostgreSQL's
max_connections = 100 was exhausted and requests failed). Django's docs say to use the backend's
pool under ASGI instead: ``OPTIONS["pool"]`` (Django >= 5.1, psycopg_pool) with min_size =
max_size = BENCH_POOL_SIZE and ``CONN_MAX_AGE = 0`` (required with the pool).
"""

from operator import attrgetter
from random import randint
from urllib.parse import unquote, urlsplit

import django
from dbcommon import ADDITIONAL_FORTUNE, DATABASE_URL, POOL_SIZE, TEMPLATES
from django.conf import settings

_url = urlsplit(DATABASE_URL)
_database = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": _url.path.lstrip("/"),
    "USER": unquote(_url.username or ""),
    "PASSWORD": unquote(_url.password or ""),
    "HOST": _url.hostname or "",
    "PORT": str(_url.port or ""),
}
_database.update(
    CONN_MAX_AGE=0,
    OPTIONS={"pool": {"min_size": POOL_SIZE, "max_size": POOL_SIZE, "timeout": 30}},
)

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={"default": _database},
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [str(TEMPLATES)],
            "OPTIONS": {"autoescape": True},
        }
    ],
    USE_TZ=True,
)
django.setup()

from django.db import models  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.template import loader  # noqa: E402
from django.urls import path  # noqa: E402


class World(models.Model):
    randomnumber = models.IntegerField()

    class Meta:
        app_label = "bench"
        db_table = "world"


class Fortune(models.Model):
    message = models.CharField(max_length=2048)

    class Meta:
        app_label = "bench"
        db_table = "fortune"


template = loader.get_template("fortune.html")
sort_key = attrgetter("message")


async def db(request):
    world = await World.objects.aget(id=randint(1, 10000))
    return JsonResponse({"id": world.id, "randomNumber": world.randomnumber})


async def fortunes(request):
    rows = [f async for f in Fortune.objects.all()]
    rows.append(Fortune(id=0, message=ADDITIONAL_FORTUNE))
    rows.sort(key=sort_key)
    return HttpResponse(template.render({"fortunes": rows}))


urlpatterns = [path("db", db), path("fortunes", fortunes)]

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
