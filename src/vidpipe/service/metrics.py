"""/metrics: Prometheus text made at scrape time from what the pipeline already counts (no
per-frame work beyond the console's probe). Names and labels: docs/service.md."""
from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

from .monitor import LATENCY_BUCKETS, gpu_memory


class PipelineCollector:
    def __init__(self, service: Any):
        self.s = service

    def collect(self):
        p, mon = self.s.pipeline, self.s.monitor
        sources = {row["source_id"]: row for row in p.streams.info()}
        hists = mon.histograms()
        labels = ["source_id", "sensor_id"]

        def lab(sid: int) -> list[str]:
            return [str(sid), str(sources.get(sid, {}).get("sensor_id", sid))]
        frames = CounterMetricFamily("vidpipe_stream_frames", "Frames of the stream through the pipeline (at the "
                                     "console's tap, after inference)", labels=labels)
        fps = GaugeMetricFamily("vidpipe_stream_fps", "Frames per second over the last 5 s", labels=labels)
        lat = HistogramMetricFamily("vidpipe_stream_latency_seconds", "From the source making a frame to the frame "
                                    "reaching the tap (glass to output)", labels=labels)
        for sid, (hist, total, n) in sorted(hists.items()):
            frames.add_metric(lab(sid), n)
            fps.add_metric(lab(sid), mon.stream_stats(sid)["fps"])
            cum, buckets = 0, []
            for bound, c in zip([*map(str, LATENCY_BUCKETS), "+Inf"], hist):
                cum += c
                buckets.append((bound, cum))
            lat.add_metric(lab(sid), buckets, total)
        dropped = CounterMetricFamily("vidpipe_stream_dropped_frames", "Frames a live stream dropped because "
                                      "the pipeline was behind", labels=labels)
        reconnects = CounterMetricFamily("vidpipe_stream_reconnects", "Times a network stream was lost and "
                                         "reconnected", labels=labels)
        up = GaugeMetricFamily("vidpipe_stream_up", "1 while the stream is part of the pipeline", labels=labels)
        for sid, row in sorted(sources.items()):
            dropped.add_metric(lab(sid), row["dropped"])
            reconnects.add_metric(lab(sid), row["reconnects"])
            up.add_metric(lab(sid), 1)
        yield from (frames, fps, lat, dropped, reconnects, up)

        busy = CounterMetricFamily("vidpipe_element_busy_seconds", "Time the element spent processing",
                                   labels=["element", "factory"])
        efr = CounterMetricFamily("vidpipe_element_frames", "Frames the element processed",
                                  labels=["element", "factory"])
        batches = CounterMetricFamily("vidpipe_element_batches", "Batches the element processed",
                                      labels=["element", "factory"])
        bsize = GaugeMetricFamily("vidpipe_element_batch_size", "Mean frames per batch so far",
                                  labels=["element", "factory"])
        depth = GaugeMetricFamily("vidpipe_element_queue_depth", "Batches waiting at the element's input",
                                  labels=["element", "factory", "pad"])
        infer = CounterMetricFamily("vidpipe_inference_seconds", "Time inference elements spent (preprocess, "
                                    "model, parse)", labels=["element"])
        cpu = CounterMetricFamily("vidpipe_element_cpu_seconds", "CPU time of the element's thread",
                                  labels=["element", "factory"])
        for el in list(p.elements):
            ls = [el.name, el.factory_name]
            st = el.stats
            busy.add_metric(ls, st.get("busy_s", 0.0))
            cpu.add_metric(ls, p.cpu_seconds(el))
            efr.add_metric(ls, st.get("frames", 0))
            batches.add_metric(ls, st.get("batches", 0))
            bsize.add_metric(ls, st.get("frames", 0) / st["batches"] if st.get("batches") else 0.0)
            for pad in list(el.sink_pads.values()):
                q = getattr(pad, "queue", None)
                depth.add_metric([*ls, pad.name], q.qsize() if q is not None else 0)
            if el.factory_name == "infer":
                infer.add_metric([el.name], st.get("busy_s", 0.0))
        yield from (busy, cpu, efr, batches, bsize, depth, infer)

        msgs = CounterMetricFamily("vidpipe_messages", "Broker messages by outcome (published: sent, "
                                   "acknowledged: the broker confirmed, retried, dropped: by the outbox bound)",
                                   labels=["element", "outcome"])
        queued = GaugeMetricFamily("vidpipe_messages_queued", "Messages waiting in the outbox", labels=["element"])
        connected = GaugeMetricFamily("vidpipe_broker_connected", "1 while the broker is connected",
                                      labels=["element"])
        any_broker = False
        for el in list(p.elements):
            c = getattr(el, "counters", None)
            if el.factory_name != "msgbroker" or c is None:
                continue
            any_broker = True
            for k in ("published", "acknowledged", "retried", "dropped"):
                msgs.add_metric([el.name, k], c[k])
            queued.add_metric([el.name], c["queued"])
            connected.add_metric([el.name], 1 if el.connected else 0)
        if any_broker:
            yield from (msgs, queued, connected)

        state = GaugeMetricFamily("vidpipe_pipeline_state", "1 for the pipeline's current state", labels=["state"])
        for name in ("ready", "playing", "paused", "stopping", "stopped"):
            state.add_metric([name], 1 if p.state == name else 0)
        yield state
        viewers = GaugeMetricFamily("vidpipe_console_viewers", "Open live views in browsers")
        viewers.add_metric([], sum(mon.viewers.values()))
        yield viewers
        enc = CounterMetricFamily("vidpipe_console_jpeg_seconds", "Time spent drawing and JPEG-encoding live views")
        enc.add_metric([], mon.encode_s)
        yield enc
        gpu = gpu_memory()
        if gpu:
            g = GaugeMetricFamily("vidpipe_gpu_memory_bytes", "GPU memory held by this process's CUDA allocator",
                                  labels=["device", "kind"])
            for dev, allocated, reserved in gpu:
                g.add_metric([dev, "allocated"], allocated)
                g.add_metric([dev, "reserved"], reserved)
            yield g


def make_registry(service: Any) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PipelineCollector(service))
    return reg
