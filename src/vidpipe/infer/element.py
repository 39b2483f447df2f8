"""infer: runs a model on whole frames (primary) or object crops (secondary) - nvinfer's role."""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from typing import Any

import numpy as np

from ..core.element import Element
from ..core.meta import Batch, Classification, Label, TensorMeta
from ..core.props import Prop
from ..core.registry import register
from ..core.tensors import transfers
from ..errors import ModelError
from .backends import Backend, create_backend
from .cluster import dbscan, nms
from .config import InferConfig, load_infer_config
from .labels import load_labels
from .parsers import Detections, ParseContext, Parser, get_parser, parser_names
from .parsers.base import dims
from .parsers.custom import FunctionParser, load_function
from .preprocess import Preprocessor, Transform

log = logging.getLogger("vidpipe")
TORCH_IN_FLIGHT = 2  # batches on a CUDA device at once by default (launched, not yet completed)
# The graphed front end replays a larger batch in chunks of this many frames, one graph each
# (the graph-chunk property): 64 x 1080p streams ran 15-20% faster in chunks of 16 than in one
# graph of 64, with NVDEC in the worker process and in this one (benchmarks/RESULTS.md, runs T, U)
GRAPH_CHUNK = 16


def detect_parser(outputs: list, cfg: InferConfig) -> str:
    """Pick a built-in parser from the output tensors' layout."""
    if cfg.network_type == 1:
        return "classifier"
    shapes = [dims(o) for o in outputs]
    if len(outputs) == 4 and sum(len(s) == 3 and s[-1] == 4 for s in shapes) == 1 and any(len(s) == 1 for s in shapes):
        return "ssd-tflite"
    if len(outputs) == 2 and all(len(s) == 4 for s in shapes):
        return "detectnet_v2"
    if len(outputs) >= 4 and len(outputs) % 2 == 0 and all(len(s) == 3 for s in shapes) \
            and len({s[2] for s in shapes}) == 2:
        return "nanodet"
    if len(outputs) == 1 and len(shapes[0]) == 3:
        _, a, b = shapes[0]
        if b in (6, 7):
            return "yolo-e2e"
        if 0 < a < b:
            return "yolov8"
        nc = cfg.num_detected_classes
        if nc and b == 5 + nc:
            return "yolov5"
        if nc and b == 4 + nc:
            return "yolov8"
    if len(outputs) == 1 and len(shapes[0]) in (2, 4):
        return "classifier"
    listed = "; ".join(map(str, outputs))
    raise ModelError(f"cannot tell which parser fits this model's outputs ({listed}); set parser= to one "
                     f"of {', '.join(parser_names())}, or to your own 'module:function'")


@register("infer", aliases={"nvinfer": {}, "pgie": {}, "sgie": {"process_mode": 2}})
class Infer(Element):
    """Runs a detector or classifier. Reads DeepStream nvinfer config files or vidpipe YAML;
    element properties override the file."""

    description = "inference: ONNX Runtime / LiteRT, primary or secondary"
    config_file_path = Prop(str, "", "nvinfer INI (.txt) or vidpipe YAML inference config")
    config = Prop(object, None, "an InferConfig, or a config file path (same as config-file-path)", nullable=True)
    model = Prop(str, "", "model file (.onnx, .tflite); overrides the config")
    labels = Prop(str, "", "label file; overrides the config")
    parser = Prop(str, "", "output parser name or module:function; overrides the config")
    parse_func = Prop(object, None, "Python parse function fn(outputs, ctx) (see FunctionParser)", nullable=True)
    batch_size = Prop(int, 0, "frames per inference call (0: from the config)", minimum=0)
    interval = Prop(int, -1, "batches to skip between inferences (-1: from the config)", minimum=-1)
    unique_id = Prop(int, 0, "gie-unique-id (0: from the config)", minimum=0)
    process_mode = Prop(int, 0, "1 primary, 2 secondary (0: from the config)", choices=[0, 1, 2])
    threshold = Prop(float, -1.0, "pre-cluster threshold for every class (-1: from the config)")
    output_tensor_meta = Prop(int, -1, "attach raw output tensors as meta (1/0; -1: from the config)",
                              choices=[-1, 0, 1])
    device = Prop(str, "", "cpu or cuda:N (empty: from the config)")
    num_threads = Prop(int, 0, "CPU threads for the backend (0: from the config / all cores)", minimum=0)
    backend = Prop(str, "", "auto, onnxruntime, litert or torch (empty: from the config; auto picks torch "
                   "for ONNX models on cuda)")
    workers = Prop(int, 0, "batches in flight at once (0: one per CPU core, max 4); results stay in order",
                   minimum=0, maximum=16)
    graph_chunk = Prop(int, GRAPH_CHUNK, "on CUDA with NVDEC frames: the most frames one CUDA graph replay "
                       "takes; a larger batch replays in chunks of this many (0: the whole batch)", minimum=0)

    def __init__(self, name: str | None = None, **props: Any):
        super().__init__(name, **props)
        self.cfg: InferConfig | None = None
        self.model_backend: Backend | None = None
        self.pre: Preprocessor | None = None
        self.out_parser: Parser | None = None
        self.label_map: dict[int, str] = {}
        self._batches = 0
        self._cache: dict[tuple[int, int], tuple[int, Classification]] = {}
        self.calls = 0  # model invocations (items, not batches)
        self.on_torch = False
        self._front = None  # the graphed front end (torch on CUDA, NVDEC frames)
        self.selection_fallbacks = 0  # batches the graphed NMS handed to the exact one
        self.selection_flags = [0, 0]  # frames over the graphed NMS's candidates, frames it left unsettled
        self._staging: list = []      # events free for the next replay of the graphed front end

    # -- setup -------------------------------------------------------------------------------
    def resolved_config(self) -> InferConfig:
        if isinstance(self.config, str):
            cfg = load_infer_config(self.config)
        elif self.config is not None:
            cfg = replace(self.config)
        elif self.config_file_path:
            cfg = load_infer_config(self.config_file_path)
        else:
            cfg = InferConfig()
        over = {"model_file": self.model and os.path.abspath(self.model),
                "labelfile_path": self.labels and os.path.abspath(self.labels), "parser": self.parser,
                "batch_size": self.batch_size, "gie_unique_id": self.unique_id,
                "process_mode": self.process_mode, "device": self.device,
                "num_threads": self.num_threads, "backend": self.backend}
        for k, v in over.items():
            if v:
                setattr(cfg, k, v)
        if self.interval >= 0:
            cfg.interval = self.interval
        if self.output_tensor_meta >= 0:
            cfg.output_tensor_meta = bool(self.output_tensor_meta)
        if self.threshold >= 0:
            cfg.class_attrs_all = replace(cfg.class_attrs_all, pre_cluster_threshold=self.threshold)
            cfg.class_attrs = {k: replace(v, pre_cluster_threshold=self.threshold) for k, v in cfg.class_attrs.items()}
        return cfg

    live_properties = ("threshold", "interval")

    def live_changed(self, name: str) -> None:
        """threshold: every class's pre-cluster threshold now (CPU and GPU paths); interval: the
        batches skipped between inferences from the next batch on."""
        cfg = self.cfg
        if cfg is None:
            return
        if name == "interval" and self.interval >= 0:
            cfg.interval = self.interval
        if name == "threshold" and self.threshold >= 0:
            t = self.threshold
            cfg.class_attrs_all = replace(cfg.class_attrs_all, pre_cluster_threshold=t)
            cfg.class_attrs = {k: replace(v, pre_cluster_threshold=t) for k, v in cfg.class_attrs.items()}
            self._thr[:] = t
            self.ctx.min_score = t
            if getattr(self, "_thr_t", None) is not None:
                self._thr_t.fill_(t)          # in place: a captured CUDA graph keeps reading this tensor

    def start(self) -> None:
        cfg = self.cfg = self.resolved_config()
        where = f"{self.name}" + (f" ({cfg.source})" if cfg.source else "")
        if cfg.device.startswith("cuda") and cfg.backend in ("auto", "litert") and cfg.model_file.endswith(".tflite"):
            log.warning("%s: LiteRT runs on the CPU; device=%s ignored", where, cfg.device)
        if cfg.device != "cpu":
            from ..gpu import normalize_device, require_cuda
            cfg.device = normalize_device(cfg.device)
            require_cuda(cfg.device, self.name)
        precision = "fp16" if cfg.network_mode in (1, 2) else "fp32"
        if cfg.network_mode == 1 and cfg.device != "cpu":
            log.info("%s: network-mode=1 (INT8) runs in FP16 on the torch backend", where)
        self.model_backend = be = create_backend(cfg.model_file, backend=cfg.backend, device=cfg.device,
                                                 num_threads=cfg.num_threads, precision=precision,
                                                 max_batch=max(cfg.batch_size, 64))
        self.on_torch = be.name == "torch"
        if self.on_torch:
            from .preprocess_torch import TorchPreprocessor
            be.prepare(max(cfg.batch_size, self._upstream_batch()))  # type: ignore[attr-defined]
            self.pre = TorchPreprocessor(be.inputs[0], cfg, be.device, be.dtype)  # type: ignore[attr-defined]
        else:
            self.pre = Preprocessor(be.inputs[0], cfg)
            if cfg.device != "cpu":
                log.warning("%s: the %s backend takes host arrays: frames are copied from %s for it",
                            where, be.name, cfg.device)
        self.label_map = load_labels(cfg.labelfile_path)
        if self.parse_func is not None:
            self.out_parser = FunctionParser(self.parse_func)
        elif cfg.parser and cfg.parser != "auto" and cfg.parser not in parser_names():
            base = os.path.dirname(os.path.abspath(cfg.source)) if cfg.source else ""
            self.out_parser = FunctionParser(load_function(cfg.parser, base), cfg.parser)
        else:
            name = detect_parser(be.outputs, cfg) if cfg.parser in ("", "auto") else cfg.parser
            self.out_parser = get_parser(name)
        nc = cfg.num_detected_classes
        thresholds = [cfg.class_attrs_all.pre_cluster_threshold, *(a.pre_cluster_threshold for a in cfg.class_attrs.values())]
        self.ctx = ParseContext(self.pre.width, self.pre.height, nc, min(thresholds))
        try:
            self.out_parser.check(be.outputs, self.ctx)
        except ModelError as e:
            raise ModelError(f"{where}: {cfg.model_file}: {e}") from None
        n_cls = max([nc, *cfg.class_attrs.keys(), *self.label_map.keys(), 0]) + 1
        self._thr = np.full(n_cls, cfg.class_attrs_all.pre_cluster_threshold, np.float32)
        for cid, a in cfg.class_attrs.items():
            self._thr[cid] = a.pre_cluster_threshold
        self._filtered = np.asarray(sorted(set(cfg.filter_out_class_ids)), np.int64)
        self._attrs = {k: np.asarray([getattr(cfg.attrs_for(c), k) for c in range(n_cls + 1)])
                       for k in ("post_cluster_threshold", "detected_min_w", "detected_min_h", "detected_max_w",
                                 "detected_max_h", "roi_top_offset", "roi_bottom_offset", "topk")}
        self._labels = np.asarray([self.label_map.get(c, str(c)) for c in range(n_cls)] + [None], object)
        self.is_classifier = self.out_parser.kind == "classifier"
        self._front = None
        if self.on_torch:
            import torch

            from .frontend_torch import GraphedFrontEnd
            from .parsers.pytorch import has_candidates
            dev = be.device  # type: ignore[attr-defined]
            self._thr_t = torch.as_tensor(self._thr, device=dev)
            self._filtered_t = torch.as_tensor(self._filtered, device=dev)
            mode = cfg.cluster_mode if cfg.cluster_mode != -1 else (4 if self.out_parser.clusters else 2)
            a = cfg.class_attrs_all
            per_class_iou = any(v.nms_iou_threshold != a.nms_iou_threshold for v in cfg.class_attrs.values())
            # thresholds and NMS on the device; otherwise the outputs go to the host parsers
            self._device_nms = (not self.is_classifier and not cfg.output_tensor_meta and has_candidates(self.out_parser)
                                and mode not in (1, 3) and not (mode in (0, 2) and per_class_iou))
            self._nms_iou = a.nms_iou_threshold if mode in (0, 2) else None
            if self._device_nms and cfg.process_mode != 2 and dev.type == "cuda" and GraphedFrontEnd.fits(be):
                from functools import partial

                from .parsers.pytorch import select_fixed
                sel = partial(select_fixed, thresholds=self._thr_t, filtered=self._filtered_t, nms_iou=self._nms_iou)
                # batches of more than GRAPH_CHUNK frames replay in chunks, one graph each; one graph
                # per chunk in flight: a batch completes before the launch `slots` after it
                batch = self._upstream_batch()
                chunk = min(batch, self.graph_chunk or batch)
                self._front = GraphedFrontEnd(self.pre, be, self.out_parser, self.ctx, chunk, sel,
                                              slots=self._torch_in_flight() * -(-batch // chunk))
        log.info("%s: %s via %s, parser %s, %s", where, os.path.basename(cfg.model_file), be.name,
                 self.out_parser.name, be.describe())

    def negotiate(self) -> None:
        """Captures the graphed front end for the frame size the NVDEC sources upstream announce
        (all of one size, none scaled by the muxer): no other thread runs yet."""
        if self._front is None:
            return
        sizes = self._upstream_nv12_sizes()
        if sizes is not None and len(sizes) == 1:
            w, h = sizes.pop()
            self._front.capture((h * 3 // 2, w))

    def _upstream_nv12_sizes(self) -> set[tuple[int, int]] | None:
        """The (width, height) of the NVDEC sources feeding the nearest muxer upstream; None when
        some source is not NVDEC, or the muxer scales, or there is no muxer."""
        pad, seen = self.sink_pad, 0
        while pad is not None and pad.peer is not None and seen < 64:
            el = pad.peer.element
            if el.factory_name == "streammux":
                if getattr(el, "width", 0) or getattr(el, "height", 0):
                    return None
                sizes = set()
                for sp in el.sink_pads.values():
                    src = sp.peer.element if sp.peer is not None else None
                    if getattr(src, "decoder", "") != "nvdec":
                        return None
                    sizes.add((int(src.reader.width), int(src.reader.height)))
                return sizes
            pad = getattr(el, "sink_pad", None) if len(getattr(el, "sink_pads", {})) == 1 else None
            seen += 1
        return None

    def _upstream_batch(self) -> int:
        """The batch size of the nearest streammux upstream (1 when there is none)."""
        pad, seen = self.sink_pad, 0
        while pad is not None and pad.peer is not None and seen < 64:
            el = pad.peer.element
            if el.factory_name == "streammux":
                return int(getattr(el, "batch_size", 1))
            pad = getattr(el, "sink_pad", None) if len(getattr(el, "sink_pads", {})) == 1 else None
            seen += 1
        return 1

    # -- running -----------------------------------------------------------------------------
    def _run_model(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Runs any number of items, in chunks of the model's fixed batch (padded) if it has one."""
        be = self.model_backend
        assert be is not None
        self.calls += len(x)
        if self.on_torch:
            return be.run_torch(x)  # type: ignore[attr-defined]
        limit = be.max_batch
        if limit is None:
            return be.run(x)
        parts = []
        for i in range(0, len(x), limit):
            chunk = x[i:i + limit]
            n = len(chunk)
            if n < limit:
                chunk = np.concatenate([chunk, np.zeros((limit - n, *x.shape[1:]), x.dtype)])
            parts.append({k: v[:n] for k, v in be.run(chunk).items()})
        return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _run(self) -> None:
        """Keeps up to `workers` batches in inference at once (the backends release the GIL),
        and pushes results and events downstream in arrival order."""
        import time
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        from ..core.events import EOS

        cfg = self.cfg
        assert cfg is not None
        n = self._torch_in_flight() if self.on_torch else self.workers or min(os.cpu_count() or 1, 4)
        if n <= 1 or cfg.process_mode == 2:
            return super()._run()
        if self.model_backend is not None and hasattr(self.model_backend, "concurrent_calls") and not self.on_torch:
            self.model_backend.concurrent_calls = n
        pad = self.sink_pad
        pending: deque = deque()
        pool = ThreadPoolExecutor(1 if self.on_torch else n, thread_name_prefix=f"vidpipe:{self.name}")
        pool_cpu: dict[int, float] = {}  # the pool's threads' CPU time, for stats["completion_cpu_s"]

        def timed(fn, *args):
            try:
                return fn(*args)
            finally:
                pool_cpu[threading.get_ident()] = time.thread_time()

        def submit(batch: Batch):
            if not self.on_torch:
                return pool.submit(timed, self.process, batch, self._take_turn())
            launch, finish = self._streams
            return pool.submit(timed, self._complete_on, finish, batch, self._launch_on(launch, batch))

        def drain(limit: int) -> None:
            while len(pending) > limit or (pending and (pending[0][0] is None or pending[0][0].done())):
                fut, item, t0 = pending.popleft()
                if fut is None:
                    self.push(item)
                    continue
                out = fut.result()  # re-raises a worker's exception here
                self.stats["busy_s"] += time.perf_counter() - t0
                self.stats["batches"] += 1
                self.stats["frames"] += len(out.frames)
                self.push(out)
        try:
            while True:
                item = pad.get()
                if isinstance(item, Batch):
                    if self.failed:
                        continue
                    if self.bypass:                      # enabled=false: passed on as it came, in order
                        pending.append((None, item, 0.0))
                        drain(n - 1)
                        continue
                    pending.append((submit(item), item, time.perf_counter()))
                    drain(n - 1)
                elif isinstance(item, EOS):
                    drain(0)
                    self.push(item)
                    return
                else:
                    pending.append((None, item, 0.0))
                    drain(n - 1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.stats["completion_cpu_s"] = sum(pool_cpu.values())

    def _take_turn(self) -> bool:
        """Whether the next batch is inferred (interval counts batches, in arrival order)."""
        self._batches += 1
        cfg = self.cfg
        assert cfg is not None
        return not (cfg.interval and (self._batches - 1) % (cfg.interval + 1))

    def process(self, batch: Batch, infer_this: bool | None = None) -> Batch:
        cfg = self.cfg
        assert cfg is not None
        if cfg.process_mode == 2:
            self._secondary(batch)
            return batch
        return self._complete(batch, self._launch(batch, infer_this))

    def _launch(self, batch: Batch, infer_this: bool | None = None) -> tuple | None:
        """The first half of a batch's inference, up to the model's outputs (or, from the graphed
        front end, candidate boxes and the kept boxes' tables on their way to the host, per chunk
        of the batch): (outputs, candidates, transforms, selected), one of the first two None; on
        a GPU launched, not waited for. None when this batch is not inferred."""
        if infer_this is None:
            infer_this = self._take_turn()
        frames = batch.frames
        if not infer_this or not frames:
            return None
        assert self.pre is not None
        if self.on_torch and all(not f.has_rgb for f in frames):  # NVDEC frames: input from the NV12 batch
            nv12s = [f.nv12 for f in frames]
            got = self._graphed(nv12s)
            if got is not None:  # candidates (and the kept boxes) per chunk, from the captured graphs
                cands, selected, transforms = got
                return None, cands, transforms, self._replayed(selected)
            x, transforms = self.pre.from_nv12(nv12s)  # type: ignore[attr-defined]
        else:
            x, transforms = self.pre([f.image if self.on_torch else f.to_numpy() for f in frames])
        return self._run_model(x), None, transforms, None

    def _graphed(self, nv12s: list) -> tuple | None:
        """The graphed front end over a batch's NV12 frames, in chunks of its batch: (candidates
        per chunk, (host buffer, table shape) per chunk, transforms), or None where the eager path
        must run (no graph for these frames). A frame's outputs depend on its place in its chunk
        only, not on how many frames its batch has."""
        front = self._front
        if front is None or not nv12s or not front.takes(nv12s):
            return None
        c = front.batch
        if -(-len(nv12s) // c) * self._torch_in_flight() > front.slots:  # would overwrite a batch in flight
            return None
        parts = [front(nv12s[i:i + c]) for i in range(0, len(nv12s), c)]
        if any(p is None for p in parts):
            return None
        return ([p[0] for p in parts], [p[1] for p in parts],
                [t for p in parts for t in p[2]][:len(nv12s)])  # each chunk's, its padding's cut

    def _torch_in_flight(self) -> int:
        """Batches a torch backend keeps in flight: on CUDA launched ahead while earlier ones
        complete (workers=1: serial)."""
        return min(self.workers or TORCH_IN_FLIGHT, 4) if self._cuda_streams() else 1

    def _cuda_streams(self) -> bool:
        """On CUDA, two streams: one makes inputs and runs the model, one completes batches."""
        be = self.model_backend
        dev = getattr(be, "device", None)
        if getattr(dev, "type", "") != "cuda":
            return False
        if getattr(self, "_streams", None) is None:
            from ..gpu import streams
            self._streams = streams.take(dev, 2)
        return True

    def _launch_on(self, stream, batch: Batch) -> tuple | None:
        """_launch on `stream` (after what the decoders queued on the default stream); the
        outputs are copied off the CUDA graph's buffers, which the next batch overwrites."""
        import torch
        with torch.cuda.stream(stream):
            stream.wait_stream(torch.cuda.default_stream(stream.device))
            launched = self._launch(batch, self._take_turn())
            if launched is None:
                return None
            outputs, cand, transforms, selected = launched
            if outputs is not None:
                outputs = {k: v.clone() for k, v in outputs.items()}
                return outputs, cand, transforms, selected, stream.record_event()
            # from the graphed front end: its slots' buffers outlive this batch's completion, and
            # the event recorded after the last replay says when they (and the host copies) are ready
            return outputs, cand, transforms, selected, selected[1]

    def _complete_on(self, stream, batch: Batch, launched: tuple | None) -> Batch:
        import torch
        if launched is None:
            return batch
        outputs, cand, transforms, selected, ready = launched
        with torch.cuda.stream(stream):
            stream.wait_event(ready)
            if outputs is not None:  # clones made on the launch stream, read on this one
                for v in outputs.values():
                    v.record_stream(stream)
            return self._complete(batch, (outputs, cand, transforms, selected))

    def _complete(self, batch: Batch, launched: tuple | None) -> Batch:
        """The second half: outputs -> objects (and tensor / classifier meta) on the batch."""
        if launched is None:
            return batch
        cfg = self.cfg
        assert cfg is not None
        outputs, cand, transforms, selected = launched
        frames = batch.frames
        if self.on_torch:
            from ..core.tensors import to_host
            from .parsers.pytorch import candidates
            if self._device_nms:
                self._device_objects(batch, cand or [candidates(self.out_parser, outputs, self.ctx)], transforms,
                                     selected)
                return batch
            outputs = {k: to_host(v.float() if v.is_floating_point() else v) for k, v in outputs.items()}
        found = []
        for i, f in enumerate(frames):
            f.meta.inferred_by.append(cfg.gie_unique_id)
            if cfg.output_tensor_meta:
                t = transforms[i]
                f.meta.tensor_meta.append(TensorMeta(
                    cfg.gie_unique_id, {k: v[i] for k, v in outputs.items()},
                    (self.pre.width, self.pre.height), (t.scale_x, t.scale_y), (t.pad_x, t.pad_y)))
            if self.is_classifier:
                probs = self.out_parser.parse(outputs, i, self.ctx)  # type: ignore[union-attr]
                f.meta.user_meta.setdefault("classifications", []).append(self._classification(probs))
                continue
            found.append(self._select(self.out_parser.parse(outputs, i, self.ctx)))  # type: ignore[union-attr]
        if found:
            self._add_objects(batch, *Detections.stack(found), transforms, list(range(len(frames))))
        return batch

    def _device_objects(self, batch: Batch, cands: list, transforms: list[Transform], selected=None) -> None:
        """Detectors with a torch parser: thresholds and NMS on the device, one small copy of the
        kept boxes to the host, objects attached. `cands`: candidates per chunk of the batch (one
        chunk unless the graphed front end replayed it in several). `selected`: from the graphed
        front end, (per chunk, its table of kept boxes on its way to the host, as (host buffer,
        table shape); an event after the last replay), see _replayed; `select` runs for a chunk
        without a table, or whose table says a frame was beyond it."""
        from .parsers.pytorch import select
        cfg = self.cfg
        assert cfg is not None
        tables: list = [None] * len(cands)
        if selected is not None:
            tables, copied = selected
            copied.synchronize()  # releases the GIL while the copies finish
            self._staging.append(copied)
        parts, first = [], 0
        for cand, table in zip(cands, tables):
            got = self._read_selected(*table) if table is not None and table[0] is not None else None
            fi, xyxy, scores, classes = got or select(*cand, self._thr_t, self._filtered_t, self._nms_iou)
            parts.append((fi + first, xyxy, scores, classes))
            first += len(cand[0])  # the chunk's frames, its padding included
        fi, xyxy, scores, classes = parts[0] if len(parts) == 1 else (np.concatenate(c) for c in zip(*parts))
        if len(fi) and fi[-1] >= len(batch.frames):  # a partial batch through the graph: its padding goes
            keep = fi < len(batch.frames)
            fi, xyxy, scores, classes = fi[keep], xyxy[keep], scores[keep], classes[keep]
        for f in batch.frames:
            f.meta.inferred_by.append(cfg.gie_unique_id)
        self._add_objects(batch, fi, Detections(xyxy, scores, classes), transforms, list(range(len(batch.frames))))

    def _read_selected(self, host, shape: tuple) -> tuple | None:
        """A graph's table of kept boxes, copied to the host: (frame index, xyxy, score, class), or
        None where it says a frame had more candidates than it holds or was not settled."""
        from .parsers.pytorch import read_table
        flat = host.numpy()
        transfers.d2h(flat.nbytes)
        over, unsettled = flat[-2:].tolist()
        if over or unsettled:
            self.selection_fallbacks += 1
            self.selection_flags[0] += int(over)
            self.selection_flags[1] += int(unsettled)
            if self.selection_fallbacks == 1:
                log.info("%s: %d frame(s) with more candidates than the graphed NMS holds, %d not settled in "
                         "its rounds: exact NMS for such batches", self.name, over, unsettled)
            return None
        return read_table(flat[:-2].reshape(shape))  # copies the rows

    def _replayed(self, selected: list | None) -> tuple:
        """Records an event after the replays of the graphed front end for a batch: (selected,
        event), selected being the replays' (host buffer, table shape) each, their tables on their
        way to the host inside the graphs; ((None, None) per replay, event) without a selection.
        Events are reused once a batch's rows are read."""
        import torch
        try:
            ev = self._staging.pop()  # only this thread pops; completion appends
        except IndexError:
            ev = torch.cuda.Event()
        ev.record()
        return [s or (None, None) for s in selected or [None]], ev

    def _classification(self, probs: np.ndarray) -> Classification:
        cfg = self.cfg
        assert cfg is not None
        idx = np.nonzero(probs >= cfg.classifier_threshold)[0]
        idx = idx[np.argsort(-probs[idx])]
        return Classification(cfg.gie_unique_id, [Label(int(c), self.label_map.get(int(c), str(int(c))),
                                                         float(probs[c])) for c in idx])

    def _cluster(self, d: Detections) -> Detections:
        cfg = self.cfg
        assert cfg is not None
        mode = cfg.cluster_mode
        if mode == -1:
            mode = 4 if self.out_parser.clusters else 2  # type: ignore[union-attr]
        if mode == 4 or len(d) == 0:
            return d
        a = cfg.class_attrs_all
        if mode in (1, 3):
            b, s, c = dbscan(d.xyxy, d.scores, a.eps, a.min_boxes, d.classes)
            d = Detections(b, s, c)
        if mode in (0, 2, 3):
            if cfg.class_attrs and any(v.nms_iou_threshold != a.nms_iou_threshold for v in cfg.class_attrs.values()):
                keep = []
                for cid in np.unique(d.classes):
                    idx = np.nonzero(d.classes == cid)[0]
                    keep.append(idx[nms(d.xyxy[idx], d.scores[idx], cfg.attrs_for(int(cid)).nms_iou_threshold)])
                d = d[np.concatenate(keep)]
            else:
                d = d[nms(d.xyxy, d.scores, a.nms_iou_threshold, d.classes)]
        return d

    def _select(self, d: Detections) -> Detections:
        """Per-class thresholds, the class filter and clustering (one frame's candidates)."""
        if len(d) == 0:
            return d
        cls = d.classes
        thr = np.where(cls < len(self._thr), self._thr[np.clip(cls, 0, len(self._thr) - 1)],
                       self.cfg.class_attrs_all.pre_cluster_threshold)  # type: ignore[union-attr]
        keep = d.scores >= thr
        if len(self._filtered):
            keep &= ~np.isin(cls, self._filtered)
        return self._cluster(d[keep])

    def _add_objects(self, batch: Batch, item: np.ndarray, d: Detections, transforms: list[Transform],
                     slots: list[int], parents: np.ndarray | None = None) -> None:
        """Candidates of many items (frames, or crops of objects) in model-input pixels -> rows of
        the batch's object table, in one go: map to frame pixels, clip, per-class post-cluster
        threshold, size and ROI limits, topk; each item's objects by descending score."""
        cfg = self.cfg
        assert cfg is not None
        if not len(d):
            return
        order = np.lexsort((-d.scores, item))
        item, d = item[order], d[order]
        tf = np.asarray([(t.scale_x, t.scale_y, t.pad_x, t.pad_y, t.origin_x, t.origin_y) for t in transforms],
                        np.float32)[item]
        xyxy = np.empty((len(d), 4), np.float32)
        xyxy[:, 0::2] = (d.xyxy[:, 0::2] - tf[:, 2:3]) / tf[:, 0:1] + tf[:, 4:5]
        xyxy[:, 1::2] = (d.xyxy[:, 1::2] - tf[:, 3:4]) / tf[:, 1:2] + tf[:, 5:6]
        frames = batch.frames
        size = np.asarray([(frames[s].width, frames[s].height) for s in slots], np.float32)[item]
        np.clip(xyxy[:, 0::2], 0, size[:, 0:1], out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, size[:, 1:2], out=xyxy[:, 1::2])
        cls = d.classes.astype(np.int64)
        a = {k: v[np.clip(cls, 0, len(v) - 1)] for k, v in self._attrs.items()}
        bw, bh = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
        keep = (bw > 0) & (bh > 0) & (d.scores >= a["post_cluster_threshold"])
        keep &= ~((a["detected_min_w"] > 0) & (bw < a["detected_min_w"]))
        keep &= ~((a["detected_min_h"] > 0) & (bh < a["detected_min_h"]))
        keep &= ~((a["detected_max_w"] > 0) & (bw > a["detected_max_w"]))
        keep &= ~((a["detected_max_h"] > 0) & (bh > a["detected_max_h"]))
        keep &= ~((a["roi_top_offset"] > 0) & (xyxy[:, 1] < a["roi_top_offset"]))
        keep &= ~((a["roi_bottom_offset"] > 0) & (xyxy[:, 3] > size[:, 1] - a["roi_bottom_offset"]))
        limited = a["topk"] >= 0
        if limited.any():  # topk per item and class, among the boxes that passed the rest
            groups = np.unique(np.stack([item, cls]), axis=1, return_inverse=True)[1].ravel()
            rank = np.zeros(len(d), np.int64)
            idx = np.nonzero(keep)[0]
            g = groups[idx]
            o = np.argsort(g, kind="stable")
            first = np.searchsorted(g[o], g[o])
            rank[idx[o]] = np.arange(len(o)) - first
            keep &= ~limited | (rank < a["topk"])
        item, cls = item[keep], cls[keep]
        batch.objects.add(frame=np.asarray(slots, np.int32)[item], xyxy=xyxy[keep], confidence=d.scores[keep],
                          class_id=cls, label=self._labels[np.clip(cls, 0, len(self._labels) - 1)] if len(cls) else None,
                          component_id=cfg.gie_unique_id,
                          parent=parents[item] if parents is not None else -1)

    # -- secondary mode: classify object crops -----------------------------------------------
    def _wanted(self, objs) -> np.ndarray:
        """Mask of the batch's objects this secondary model works on."""
        cfg = self.cfg
        assert cfg is not None
        keep = np.ones(len(objs), bool)
        if cfg.operate_on_gie_id >= 0:
            keep &= objs.component_id == cfg.operate_on_gie_id
        if cfg.operate_on_class_ids:
            keep &= np.isin(objs.class_id, cfg.operate_on_class_ids)
        b = objs.xyxy
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        keep &= (w >= max(cfg.input_object_min_width, 1)) & (h >= max(cfg.input_object_min_height, 1))
        if cfg.input_object_max_width:
            keep &= w <= cfg.input_object_max_width
        if cfg.input_object_max_height:
            keep &= h <= cfg.input_object_max_height
        return keep

    def _secondary(self, batch: Batch) -> None:
        cfg = self.cfg
        assert cfg is not None and self.pre is not None
        reuse = cfg.classifier_async_mode or cfg.secondary_reinfer_interval > 0
        for t in batch.user_meta.get("terminated_tracks", ()):  # ended tracks need no cached result
            self._cache.pop((t.source_id, t.object_id), None)
        objs = batch.objects
        if not len(objs):
            return
        rows = np.nonzero(self._wanted(objs))[0]
        table, frames = batch.table, batch.frames
        fidx = objs.frame[rows]
        oids = objs.object_id[rows]
        if reuse:  # cached results of tracked objects
            fresh = np.ones(len(rows), bool)
            every = max(cfg.secondary_reinfer_interval, 1)
            for k, (fi, oid) in enumerate(zip(fidx.tolist(), oids.tolist())):
                f = frames[fi]
                hit = self._cache.get((f.source_id, oid)) if oid >= 0 else None
                if hit is not None and (f.frame_num - hit[0] < every or
                                        (cfg.classifier_async_mode and not cfg.secondary_reinfer_interval)):
                    table.cols["classifications"][rows[k]] = [*(table.cols["classifications"][rows[k]] or []), hit[1]]
                    fresh[k] = False
            rows, fidx, oids = rows[fresh], fidx[fresh], oids[fresh]
        box = objs.xyxy[rows]
        size = np.asarray([(f.width, f.height) for f in frames], np.float64).reshape(-1, 2)[fidx]
        roi = np.stack([np.maximum(0, box[:, 0]), np.maximum(0, box[:, 1]),
                        np.minimum(size[:, 0], box[:, 2]), np.minimum(size[:, 1], box[:, 3])], 1).astype(np.int64)
        ok = (roi[:, 2] - roi[:, 0] >= 1) & (roi[:, 3] - roi[:, 1] >= 1)
        rows, fidx, oids, roi = rows[ok], fidx[ok], oids[ok], roi[ok]
        if not len(rows):
            return
        if self.on_torch and self.pre.device.type == "cuda":  # type: ignore[attr-defined]
            used = sorted(set(fidx.tolist()))  # every object's crop in one step (one gather per corner)
            slot = {f: i for i, f in enumerate(used)}
            x, transforms = self.pre.crops([frames[f].image for f in used],  # type: ignore[attr-defined]
                                           [slot[f] for f in fidx.tolist()], roi.tolist())
        else:
            images = [frames[i].image if self.on_torch else frames[i].to_numpy() for i in fidx.tolist()]
            x, transforms = self.pre(images, [tuple(r) for r in roi.tolist()])
        outputs = self._run_model(x)
        if self.on_torch:
            from ..core.tensors import to_host
            outputs = {k: to_host(v.float() if v.is_floating_point() else v) for k, v in outputs.items()}
        if not self.is_classifier:  # a detector on crops: children with the object as parent
            found = [self._select(self.out_parser.parse(outputs, i, self.ctx)) for i in range(len(rows))]  # type: ignore[union-attr]
            self._add_objects(batch, *Detections.stack(found), transforms, fidx.tolist(), parents=rows)
            return
        col = table.cols["classifications"]
        for i, (r, fi, oid) in enumerate(zip(rows.tolist(), fidx.tolist(), oids.tolist())):
            c = self._classification(self.out_parser.parse(outputs, i, self.ctx))  # type: ignore[union-attr]
            col[r] = [*(col[r] or []), c]
            if reuse and oid >= 0:
                self._cache[(frames[fi].source_id, oid)] = (frames[fi].frame_num, c)

    def stop(self) -> None:
        self._cache.clear()
        # the captured graphs hold GPU memory (about 165 MB per 16-stream 1080p pipeline); the
        # stopped pipeline's objects would keep them until Python's cyclic GC, which does not see
        # GPU memory, so repeated pipelines piled them up. start() makes them again.
        self._front = None
        self._staging.clear()
        release = getattr(self.model_backend, "release", None)
        if release is not None:
            release()
        held = getattr(self, "_streams", None)
        if held is not None:  # for the next pipeline's elements (with their cuBLAS workspace)
            from ..gpu import streams
            for s in held:
                s.synchronize()
            streams.give_back(self.model_backend.device, held)  # type: ignore[union-attr]
            self._streams = None
