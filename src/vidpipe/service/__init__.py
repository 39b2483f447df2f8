"""Run a pipeline as a service: REST API, Prometheus /metrics and a browser console with live
video (docs/service.md).

    svc = vidpipe.service.Service(pipeline, "127.0.0.1:8080").start()
    print(svc.url, svc.token)
"""
from .server import Service, parse_address

__all__ = ["Service", "parse_address"]
