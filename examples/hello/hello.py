from trellis import App

app = App()


@app.get("/")
async def hello() -> str:
    return "Hello, World!"


app.run()
