"""Acme OCR, the made-up vendor of the README's "Write a provider" guide (examples/provider_guide.lua).

  POST /v1/jobs        Authorization: Token <key>; JSON {image: base64, lang: en|zh}
                       -> 200 {id, status: "queued"}
  GET  /v1/jobs/<id>   -> {id, status: queued|running|done|failed, progress, blocks?, error?}
Errors: {error: {code, message}} with 400 BAD_IMAGE, 401 BAD_KEY, 402 NO_CREDIT, 404 NO_JOB,
429 BUSY. A job is queued, then running, then done (one step per poll); an image without a known
magic number fails with BAD_IMAGE once it runs. Text follows the `TEXT:` convention (ocrtext.py).
Settings: api_key (default "acme-key"), credits (default unlimited: -1).
"""
import base64
import binascii
import json
import uuid

import emu
import ocrtext


class Acme(emu.Emulator):
    name = "acme"

    def __init__(self):
        super().__init__()
        self.route("POST", "/v1/jobs", self.create)
        self.route("GET", "/v1/jobs/", self.poll)

    def reset_state(self):
        self.jobs = {}
        self.used = 0

    @staticmethod
    def error(status, code, message):
        return emu.Response.json({"error": {"code": code, "message": message}}, status)

    def authorised(self, req):
        return req.headers.get("authorization") == "Token " + self.settings.get("api_key", "acme-key")

    def create(self, req):
        if not self.authorised(req):
            return self.error(401, "BAD_KEY", "unknown API key")
        if not req.headers.get("content-type", "").startswith("application/json"):
            return self.error(400, "BAD_REQUEST", "JSON body expected")
        try:
            body = json.loads(req.body)
            image = base64.b64decode(body["image"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return self.error(400, "BAD_REQUEST", "image must be base64")
        if set(body) - {"image", "lang"} or body.get("lang", "en") not in ("en", "zh"):
            return self.error(400, "BAD_REQUEST", "unknown field or lang")
        credits = self.settings.get("credits", -1)
        if 0 <= credits <= self.used:
            return self.error(402, "NO_CREDIT", "out of credits")
        self.used += 1
        job_id = uuid.uuid4().hex
        self.jobs[job_id] = {"polls": 0, "image": image}
        return emu.Response.json({"id": job_id, "status": "queued"})

    def poll(self, req):
        if not self.authorised(req):
            return self.error(401, "BAD_KEY", "unknown API key")
        job = self.jobs.get(req.path[len("/v1/jobs/"):])
        if job is None:
            return self.error(404, "NO_JOB", "no such job")
        job["polls"] += 1
        answer = {"id": req.path.rsplit("/", 1)[1], "progress": min(100, job["polls"] * 40)}
        if job["polls"] == 1:
            answer["status"] = "queued"
        elif job["polls"] == 2:
            answer["status"] = "running"
        elif ocrtext.detect_format(job["image"]) is None:
            answer.update(status="failed", error={"code": "BAD_IMAGE", "message": "not an image"})
        else:
            lines = ocrtext.lines_of(ocrtext.text_of(job["image"]))
            answer.update(status="done", progress=100, blocks=[
                {"text": t, "conf": 0.9, "bbox": [10, 10 + 40 * i, 16 * len(t), 32]}
                for i, t in enumerate(lines)])
        return emu.Response.json(answer)


if __name__ == "__main__":
    emu.serve(Acme())
