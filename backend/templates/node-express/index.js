// {{name}}: a web service. `npm install && npm start`, then open http://127.0.0.1:3000/.
const express = require("express");

const app = express();
app.get("/", (_req, res) => res.send("Hello from {{name}}!\n"));
app.get("/healthz", (_req, res) => res.send("ok"));

const port = Number(process.env.PORT || 3000);
app.listen(port, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${port}`));
