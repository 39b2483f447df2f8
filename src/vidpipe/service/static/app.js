// vidpipe console: live views (MJPEG read with fetch, drawn on canvases), stats, charts, events.
"use strict";
const $ = (sel, el = document) => el.querySelector(sel);
const API = "/api/v1";
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#ff7b72", "#79c0ff", "#56d364"];
const views = {};                       // source id -> {tile, frames, latencies, abort}
window.vidpipe = { views, polls: 0 };   // read by the tests

(function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) { localStorage.setItem("vidpipe-token", decodeURIComponent(m[1])); history.replaceState(null, "", location.pathname); }
  $("#token").value = localStorage.getItem("vidpipe-token") || "";
})();

async function api(method, path, body) {
  const headers = {};
  const token = localStorage.getItem("vidpipe-token");
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.status + " " + r.statusText);
  return data;
}

function say(text, error = false) {
  const m = $("#message");
  m.textContent = text;
  m.className = "message" + (error ? " error" : "");
}

// -- live views -------------------------------------------------------------------------------
function indexOf(hay, needle, from) {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

async function watch(sid, canvas, view) {
  const crlf2 = new Uint8Array([13, 10, 13, 10]);
  const ctx = canvas.getContext("2d");
  while (!view.closed) {
    const abort = new AbortController();
    view.abort = abort;
    try {
      const r = await fetch(`/video/${sid}.mjpg?boxes=json`, { signal: abort.signal, cache: "no-store" });
      if (!r.ok) throw new Error(r.status);
      const reader = r.body.getReader();
      let buf = new Uint8Array(0);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const joined = new Uint8Array(buf.length + value.length);
        joined.set(buf); joined.set(value, buf.length); buf = joined;
        for (;;) {
          const end = indexOf(buf, crlf2, 0);
          if (end < 0) break;
          const head = new TextDecoder().decode(buf.subarray(0, end));
          const len = +(head.match(/Content-Length:\s*(\d+)/i) || [])[1];
          const cap = +(head.match(/X-Capture-Time:\s*([\d.]+)/i) || [])[1];
          const objs = (head.match(/X-Objects:\s*(.*)/i) || [])[1];
          if (!len || buf.length < end + 4 + len) break;
          const jpeg = buf.slice(end + 4, end + 4 + len);
          buf = buf.slice(end + 4 + len);
          const bmp = await createImageBitmap(new Blob([jpeg], { type: "image/jpeg" }));
          if (canvas.width !== bmp.width || canvas.height !== bmp.height) { canvas.width = bmp.width; canvas.height = bmp.height; }
          ctx.drawImage(bmp, 0, 0);
          bmp.close();
          if (objs) drawBoxes(ctx, JSON.parse(objs));
          view.frames++;
          if (cap) { view.latencies.push(Date.now() - cap * 1000); if (view.latencies.length > 600) view.latencies.shift(); }
        }
      }
    } catch (e) {
      if (view.closed) return;
    }
    await new Promise((ok) => setTimeout(ok, 1000));   // the stream ended or the server restarted: try again
  }
}

function colorOf(label) {
  let h = 0;
  for (const c of label.split(" ")[0]) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h}, 80%, 55%)`;
}

function drawBoxes(ctx, objs) {
  ctx.lineWidth = 2;
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const [x1, y1, x2, y2, label] of objs) {
    const color = colorOf(label);
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const w = ctx.measureText(label).width + 6, top = Math.max(16, y1);
    ctx.fillStyle = color;
    ctx.fillRect(x1 - 1, top - 16, w, 16);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 + 2, top - 2);
  }
}

function addTile(s) {
  const tile = $("#tile").content.firstElementChild.cloneNode(true);
  tile.dataset.sid = s.source_id;
  const view = { tile, frames: 0, latencies: [], closed: false, abort: null };
  views[s.source_id] = view;
  $(".remove", tile).onclick = async () => {
    try { await api("DELETE", `/streams/${s.source_id}`); say(`stream ${s.source_id} removed`); refresh(); }
    catch (e) { say(e.message, true); }
  };
  $(".record", tile).onclick = async () => {
    try { const r = await api("POST", `/streams/${s.source_id}/recording`, {}); say(`recording: ${r.path}`); }
    catch (e) { say(e.message, true); }
  };
  $("#grid").append(tile);
  watch(s.source_id, $("canvas", tile), view);
}

function dropTile(sid) {
  const v = views[sid];
  v.closed = true;
  if (v.abort) v.abort.abort();
  v.tile.remove();
  delete views[sid];
}

const fmt = (v, d = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));

async function refresh() {
  let data, pipe;
  try { [data, pipe] = await Promise.all([api("GET", "/streams"), api("GET", "/pipeline")]); }
  catch (e) { $("#state").textContent = "offline"; $("#state").className = "badge stopped"; return; }
  window.vidpipe.polls++;
  $("#state").textContent = pipe.state;
  $("#state").className = "badge " + pipe.state;
  $("#summary").textContent = `${data.streams.length} stream${data.streams.length === 1 ? "" : "s"} · up ${Math.round(pipe.uptime_s)} s`;
  const seen = new Set();
  for (const s of data.streams) {
    seen.add(String(s.source_id));
    if (!views[s.source_id]) addTile(s);
    const t = views[s.source_id].tile;
    $(".name", t).textContent = s.sensor_id === String(s.source_id) ? `stream ${s.source_id}` : `${s.sensor_id} (${s.source_id})`;
    $(".uri", t).textContent = s.uri;
    $(".uri", t).title = s.uri;
    $(".state", t).textContent = s.state;
    $(".state", t).className = "state badge " + s.state;
    $(".fps", t).textContent = fmt(s.fps);
    $(".latency", t).textContent = s.latency_ms === null ? "–" : fmt(s.latency_ms, 0) + " ms";
    $(".frames", t).textContent = s.frames;
    $(".dropped", t).textContent = s.dropped;
  }
  for (const sid of Object.keys(views)) if (!seen.has(sid)) dropTile(sid);
  $("#empty").hidden = data.streams.length > 0;
}

// -- charts -----------------------------------------------------------------------------------
function drawChart(canvas, samples, key) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const ids = [...new Set(samples.flatMap((s) => Object.keys(s.streams)))].sort((a, b) => a - b);
  let max = 1;
  for (const s of samples) for (const id of ids) max = Math.max(max, (s.streams[id] || {})[key] || 0);
  max *= 1.15;
  const left = 40, bottom = 18, top = 6, now = Date.now() / 1000, span = 300;
  g.strokeStyle = "#30363d"; g.fillStyle = "#8b949e"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    g.beginPath(); g.moveTo(left, y); g.lineTo(w, y); g.stroke();
    g.fillText((max * i / 4).toFixed(max < 10 ? 1 : 0), 4, y + 4);
  }
  for (const m of [5, 4, 3, 2, 1, 0]) g.fillText(m ? `-${m}m` : "now", left + (w - left - 24) * (1 - m * 60 / span), h - 4);
  ids.forEach((id, k) => {
    g.strokeStyle = COLORS[k % COLORS.length]; g.lineWidth = 2; g.beginPath();
    let started = false;
    for (const s of samples) {
      const v = (s.streams[id] || {})[key];
      if (v === null || v === undefined) { started = false; continue; }
      const x = left + (w - left - 24) * (1 - (now - s.t) / span);
      const y = top + (h - top - bottom) * (1 - v / max);
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    }
    g.stroke();
    g.fillStyle = COLORS[k % COLORS.length];
    g.fillText(`■ ${id}`, left + 6 + k * 44, top + 12);
  });
}

async function charts() {
  try {
    const h = await api("GET", "/history");
    drawChart($("#chart-fps"), h.samples, "fps");
    drawChart($("#chart-latency"), h.samples, "latency_ms");
  } catch (e) { /* offline: refresh() says so */ }
}

// -- events -----------------------------------------------------------------------------------
let lastEvent = 0;
async function events() {
  try {
    const r = await api("GET", `/events?after=${lastEvent}`);
    lastEvent = r.last;
    const list = $("#events");
    for (const e of r.events) {
      const li = document.createElement("li");
      li.className = e.type;
      const t = new Date(e.time * 1000).toLocaleTimeString();
      li.innerHTML = `<span class="muted"></span><span class="kind"></span><span class="text"></span>`;
      li.children[0].textContent = t; li.children[1].textContent = e.type; li.children[2].textContent = e.text;
      list.prepend(li);
    }
    while (list.children.length > 200) list.lastChild.remove();
  } catch (e) { /* offline */ }
}

// -- forms ------------------------------------------------------------------------------------
$("#add-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const uri = $("#add-uri").value.trim(), sensor = $("#add-sensor").value.trim();
  try {
    const r = await api("POST", "/streams", sensor ? { uri, sensor_id: sensor } : { uri });
    say(`stream ${r.source_id} added`);
    $("#add-uri").value = ""; $("#add-sensor").value = "";
    refresh();
  } catch (e) { say(e.message, true); }
};
$("#token-form").onsubmit = (ev) => {
  ev.preventDefault();
  localStorage.setItem("vidpipe-token", $("#token").value.trim());
  say("token saved");
};
$("#pause").onclick = () => api("PUT", "/pipeline/state", { state: "paused" }).then(refresh, (e) => say(e.message, true));
$("#play").onclick = () => api("PUT", "/pipeline/state", { state: "playing" }).then(refresh, (e) => say(e.message, true));

refresh(); charts(); events();
setInterval(refresh, 1000);
setInterval(charts, 2000);
setInterval(events, 2000);
