from trellis import App

app = App()


@app.get("/")
async def hello() -> str:
    return "Hello, notes!"


if __name__ == "__main__":
    app.run()
