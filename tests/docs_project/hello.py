from trellis import App

app = App()


@app.get("/")
def hello() -> str:
    return "Hello, world!"


@app.get("/users/{id:int}")
def user(id: int) -> dict[str, int]:
    return {"id": id}


app.run()
