"""``main:app`` and ``main:create_app()``, as in a FastAPI project."""

from trellis import App


def create_app() -> App:
    app = App()

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"hello": "world"}

    return app


app = create_app()
