"""{{name}}: a web service. `pip install -r requirements.txt && flask --app app run`."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "Hello from {{name}}!\n"


@app.get("/healthz")
def healthz():
    return "ok"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
