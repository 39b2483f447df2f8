"""The REST API's OpenAPI 3.1 schema (served at /api/v1/openapi.json; a test checks that every
route of the app is in it and nothing else)."""
from __future__ import annotations

from typing import Any

ERROR = {"description": "a JSON error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
WRITE = {"401": {**ERROR, "description": "no bearer token"}, "403": {**ERROR, "description": "wrong token"}}


def _op(summary: str, *, body: dict | None = None, ok: str = "200", write: bool = False, errors: tuple = (),
        content: str = "application/json", params: tuple = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {ok: {"description": "OK", "content": {content: {}}}}}
    if params:
        op["parameters"] = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"},
                             "description": d} for n, d in params]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if write:
        op["security"] = [{"bearer": []}]
        op["responses"].update(WRITE)
    for code in errors:
        op["responses"][str(code)] = ERROR
    return op


STREAM_ID = ("id", "source id, sensor id or element name")


def schema() -> dict[str, Any]:
    num = {"type": "number", "minimum": 0}
    return {
        "openapi": "3.1.0",
        "info": {"title": "vidpipe service", "version": "1",
                 "description": "Control and watch a running vidpipe pipeline. Reads are open; every write needs "
                                "Authorization: Bearer TOKEN."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"},
                                                                   "status": {"type": "integer"}}}}},
        "paths": {
            "/metrics": {"get": _op("Prometheus metrics (text exposition format)", content="text/plain")},
            "/video/{id}.mjpg": {"get": _op("Live view: MJPEG (multipart/x-mixed-replace), boxes drawn; each part "
                                            "has X-Capture-Time (Unix time the frame was made)", params=(STREAM_ID,),
                                            content="multipart/x-mixed-replace", errors=(404,))},
            "/video/{id}.jpg": {"get": _op("The latest frame as one JPEG", params=(STREAM_ID,), content="image/jpeg",
                                           errors=(404, 503))},
            "/api/v1/openapi.json": {"get": _op("This schema")},
            "/api/v1/pipeline": {"get": _op("Pipeline name, state, uptime, streams, elements, errors")},
            "/api/v1/pipeline/state": {"put": _op(
                "Play, pause or stop (stop: end of stream, outputs finalised)", write=True, errors=(400, 415),
                body={"type": "object", "required": ["state"],
                      "properties": {"state": {"enum": ["playing", "paused", "stopped"]}}})},
            "/api/v1/streams": {
                "get": _op("Streams: source_id, sensor_id, uri, state, fps, latency_ms, latency_p95_ms, frames, "
                           "dropped, reconnects"),
                "post": _op("Add a stream", ok="201", write=True, errors=(400, 415), body={
                    "type": "object", "required": ["uri"],
                    "properties": {"uri": {"type": "string"}, "sensor_id": {"type": "string"},
                                   "options": {"type": "object", "description": "urisrc properties"}}})},
            "/api/v1/streams/{id}": {
                "get": _op("One stream", params=(STREAM_ID,), errors=(404,)),
                "delete": _op("Remove a stream (its frames in flight finish)", params=(STREAM_ID,), write=True,
                              errors=(400,))},
            "/api/v1/streams/{id}/recording": {
                "post": _op("Start (or extend) a smart-record clip of the stream", ok="201", params=(STREAM_ID,),
                            write=True, errors=(400, 404, 415), body={
                                "type": "object", "properties": {"start_before": num, "duration": num,
                                                                 "annotated": {"type": "boolean"}}}),
                "delete": _op("Stop the stream's clip now", params=(STREAM_ID,), write=True, errors=(404,))},
            "/api/v1/elements": {"get": _op("Elements with their properties, stats and what may change live")},
            "/api/v1/elements/{name}": {
                "get": _op("One element", params=(("name", "element name"),), errors=(404,)),
                "patch": _op("Change live properties, e.g. {\"threshold\": 0.5}, {\"interval\": 2}, "
                             "{\"enabled\": false}", params=(("name", "element name"),), write=True,
                             errors=(400, 404, 415), body={"type": "object"})},
            "/api/v1/events": {"get": _op("Recent events (streams, errors, recordings, commands, messages); "
                                          "?after=ID&limit=N")},
            "/api/v1/history": {"get": _op("FPS and latency per stream every 2 s over the last 5 minutes")},
        },
    }
