"""A correct Vertex AI custom-container model server, with the Python standard library only.

What Vertex requires of a BatchPredictionJob container, and how this file meets it:
- listen on 0.0.0.0 (not 127.0.0.1) at AIP_HTTP_PORT (default 8080), in the foreground;
- answer GET AIP_HEALTH_ROUTE with 200 once the model is loaded;
- answer POST AIP_PREDICT_ROUTE {"instances": [...], "parameters": {...}} with
  {"predictions": [...]}: one prediction per instance, in the same order;
- read the model from AIP_STORAGE_URI when the job has an artifact.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("AIP_HTTP_PORT", "8080"))
HEALTH_ROUTE = os.environ.get("AIP_HEALTH_ROUTE", "/health")
PREDICT_ROUTE = os.environ.get("AIP_PREDICT_ROUTE", "/predict")


def load_model():
    """A stand-in model: y = weight * x + bias, from AIP_STORAGE_URI/model.json when given."""
    model = {"weight": 2.0, "bias": 0.0}
    storage = os.environ.get("AIP_STORAGE_URI", "")
    if storage.startswith("gs://"):
        storage = "/gcs/" + storage[len("gs://"):]  # Cloud Storage FUSE path of the same object
    if storage and os.path.exists(os.path.join(storage, "model.json")):
        with open(os.path.join(storage, "model.json"), encoding="utf-8") as f:
            model.update(json.load(f))
    return model


MODEL = load_model()


def predict(instance, parameters):
    x = instance["x"] if isinstance(instance, dict) else instance[0]
    y = MODEL["weight"] * float(x) + MODEL["bias"]
    threshold = (parameters or {}).get("threshold")
    return {"y": y} if threshold is None else {"y": y, "above": y > threshold}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Vertex sends many requests per connection

    def reply(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == HEALTH_ROUTE:
            return self.reply(200, {"status": "healthy"})
        self.reply(404, {"error": f"no route {self.path}"})

    def do_POST(self):
        if self.path != PREDICT_ROUTE:
            return self.reply(404, {"error": f"no route {self.path}"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            instances = body["instances"]
            predictions = [predict(i, body.get("parameters")) for i in instances]
        except (ValueError, KeyError, TypeError, IndexError) as error:
            return self.reply(400, {"error": f"bad request: {error}"})
        self.reply(200, {"predictions": predictions})

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))


if __name__ == "__main__":
    print(f"serving on 0.0.0.0:{PORT} (health {HEALTH_ROUTE}, predict {PREDICT_ROUTE})", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
