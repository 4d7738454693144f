// The Tributary console: one dependency-free script over the read-only
// JSON API (/api/v1/). Views are chosen by the URL fragment; every value
// shown from the API goes through textContent (never innerHTML), so record
// keys, values and names cannot inject markup. Sparklines are inline SVG
// polylines: a few dozen points need no canvas or chart library.
"use strict";

const main = document.getElementById("main");
const statusEl = document.getElementById("status");
let timer = null;

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.appendChild(typeof k === "object" ? k : document.createTextNode(String(k)));
  }
  return e;
}

function fmtNum(v) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number" && !Number.isInteger(v)) return v.toFixed(1);
  return String(v);
}

function fmtBytes(v) {
  if (v === null || v === undefined) return "-";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + " " + u[i];
}

// An SVG sparkline of a history object {values: [number|null]}.
function spark(hist, w = 160, hgt = 28) {
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", hgt);
  const vals = (hist && hist.values) || [];
  const nums = vals.filter((v) => v !== null);
  const max = Math.max(1, ...nums);
  const n = Math.max(2, vals.length);
  const pts = [];
  vals.forEach((v, i) => {
    if (v === null) return;
    pts.push(((i / (n - 1)) * (w - 2) + 1).toFixed(1) + "," + (hgt - 1 - (v / max) * (hgt - 2)).toFixed(1));
  });
  const pl = document.createElementNS(svgNS, "polyline");
  pl.setAttribute("points", pts.join(" "));
  svg.appendChild(pl);
  const t = document.createElementNS(svgNS, "title");
  t.textContent = "max " + fmtNum(max) + " over " + vals.length + " samples";
  svg.appendChild(t);
  return svg;
}

function table(headers, rows) {
  return h("table", {}, h("tr", {}, headers.map((x) => h("th", {}, x))),
    rows.map((r) => h("tr", {}, r.map((c) => (c instanceof Node ? h("td", {}, c)
      : h("td", typeof c === "number" ? { class: "num" } : {}, fmtNum(c)))))));
}

function link(href, text) { return h("a", { href }, text); }
function card(label, value, extra) { return h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: "v" }, value), extra || null); }

async function api(path) {
  const r = await fetch("/api/v1/" + path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

async function overview() {
  const o = await api("overview");
  return [
    h("h1", {}, "Collector ", String(o.node_id), " — cluster ", o.cluster_id || "-"),
    h("div", { class: "cards" },
      card("Records in /s", fmtNum(o.rates.records_in_per_sec), spark(o.history.records_in_per_sec)),
      card("Bytes in /s", fmtBytes(o.rates.bytes_in_per_sec), spark(o.history.bytes_in_per_sec)),
      card("Records out /s", fmtNum(o.rates.records_out_per_sec), spark(o.history.records_out_per_sec)),
      card("Bytes out /s", fmtBytes(o.rates.bytes_out_per_sec), spark(o.history.bytes_out_per_sec)),
      card("Topics / partitions", o.topics + " / " + o.partitions),
      card("Groups", String(o.groups)),
      card("Connections", String(o.connections)),
      card("Controller", String(o.controller))),
    h("h2", {}, "Brokers"),
    table(["ID", "Host", "Port", "Rack"], o.brokers.map((b) => [b.id, b.host, b.port, b.rack || "-"])),
    h("h2", {}, "Topics"),
    table(["Topic", "Partitions", "RF", "Size", "Records in", "Records/s"],
      o.topic_list.map((t) => [link("#/topic/" + encodeURIComponent(t.name), t.name), t.partitions,
        t.replication_factor, fmtBytes(t.size_bytes), t.records_in, t.records_in_per_sec])),
  ];
}

async function topic(name) {
  const t = await api("topics/" + encodeURIComponent(name));
  return [
    h("h1", {}, "Topic ", t.name),
    h("div", { class: "cards" },
      card("Records in /s", fmtNum(t.records_in_per_sec), spark(t.history.records_in_per_sec)),
      card("Size", fmtBytes(t.size_bytes)),
      card("Retention", t.retention_ms < 0 ? "forever" : (t.retention_ms / 3600000).toFixed(1) + " h"),
      card("Retention bytes", t.retention_bytes < 0 ? "unlimited" : fmtBytes(t.retention_bytes))),
    h("h2", {}, "Partitions"),
    table(["Partition", "Leader", "Replicas", "ISR", "Log start", "Log end", "High watermark", "Size", "Segments", ""],
      t.partitions.map((p) => [p.partition, p.leader, p.replicas.join(","), p.isr.join(","),
        p.log_start_offset, p.log_end_offset, p.high_watermark, p.hosted ? fmtBytes(p.size_bytes) : "not here",
        p.segments, p.hosted ? link("#/records/" + encodeURIComponent(t.name) + "/" + p.partition, "records") : "-"])),
    h("h2", {}, "Configs"),
    table(["Name", "Value", "Source"], t.configs.map((c) => [c.name, c.value, c.source])),
  ];
}

function showValue(v, enc) {
  if (v === null) return h("span", { class: "muted" }, "null");
  if (enc === "base64") return h("span", { class: "muted" }, "base64: " + v);
  try {
    const j = JSON.parse(v);
    if (j !== null && typeof j === "object") return h("pre", {}, JSON.stringify(j, null, 2));
  } catch (e) { /* text */ }
  return h("pre", {}, v);
}

async function records(name, part) {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const limit = q.get("limit") || "20", maxBytes = q.get("max_bytes") || "65536";
  const r = await api("topics/" + encodeURIComponent(name) + "/partitions/" + part +
    "/records?limit=" + encodeURIComponent(limit) + "&max_bytes=" + encodeURIComponent(maxBytes));
  const form = h("form", { class: "inline" }, "Last ", h("input", { name: "limit", value: limit }),
    " records, at most ", h("input", { name: "max_bytes", value: maxBytes }), " bytes ", h("button", {}, "Show"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#/records/" + encodeURIComponent(name) + "/" + part + "?limit=" +
      encodeURIComponent(form.limit.value) + "&max_bytes=" + encodeURIComponent(form.max_bytes.value);
  });
  return [
    h("h1", {}, "Records of ", link("#/topic/" + encodeURIComponent(name), name), " partition ", String(part)),
    form,
    h("p", { class: "muted" }, "Offsets ", String(r.log_start_offset), " to ", String(r.high_watermark),
      r.omitted ? "; " + r.omitted + " older records left out by max_bytes" : ""),
    table(["Offset", "Timestamp", "Key", "Headers", "Value"], r.records.map((x) => [x.offset,
      new Date(x.timestamp).toISOString(), showValue(x.key, x.key_encoding),
      h("div", {}, x.headers.map((hd) => h("div", {}, hd.key + ": " + (hd.value === null ? "null" : hd.value)))),
      h("div", {}, showValue(x.value, x.value_encoding), x.truncated ? h("div", { class: "bad" }, "truncated (" + x.value_size + " bytes)") : null)])),
  ];
}

async function groups() {
  const gs = await api("groups");
  return [h("h1", {}, "Consumer groups"),
    table(["Group", "State", "Protocol", "Members", "Total lag"], gs.map((g) => [
      link("#/group/" + encodeURIComponent(g.group), g.group), g.state,
      (g.protocol_type || "-") + "/" + (g.protocol || "-"), g.members, g.total_lag]))];
}

async function group(name) {
  const g = await api("groups/" + encodeURIComponent(name));
  const out = [
    h("h1", {}, "Group ", g.group),
    h("div", { class: "cards" }, card("State", g.state), card("Members", String(g.members)),
      card("Total lag", String(g.total_lag), spark(g.lag_history))),
    h("h2", {}, "Lag"),
    table(["Topic", "Partition", "Committed", "End", "Lag", "History", "Member"], g.offsets.map((o) => [
      o.topic, o.partition, o.committed_offset, o.end_offset, o.lag, spark(o.lag_history, 120, 22), o.member_id || "-"])),
    h("h2", {}, "Members"),
    table(["Member", "Client", "Host", "Assignment"], g.member_list.map((m) => [m.member_id, m.client_id, m.client_host,
      m.assignment.map((a) => a.topic + ": " + a.partitions.join(",")).join("; ") || "-"])),
  ];
  if (g.sinks.length) out.push(h("h2", {}, "Sink"), sinkTable(g.sinks));
  return out;
}

function sinkTable(ss) {
  return table(["Sink", "Type", "Up", "Delivered", "Dead-lettered", "Retried", "Lost to retention", "Last error"],
    ss.map((s) => [link("#/group/" + encodeURIComponent(s.group), s.name), s.type,
      h("span", { class: s.up ? "ok" : "bad" }, s.up ? "up" : "down (" + s.error_class + ")"),
      s.records_delivered, s.records_dead_lettered, s.batches_retried, s.records_lost_to_retention,
      s.last_error ? s.last_error + " (" + new Date(s.last_error_ms).toISOString() + ")" : "-"]));
}

async function sinks() {
  const ss = await api("sinks");
  return [h("h1", {}, "Sinks"), ss.length ? sinkTable(ss) : h("p", { class: "muted" }, "No sinks configured.")];
}

async function producers() {
  const ps = await api("producers");
  return [h("h1", {}, "Producers seen in the last 5 minutes"),
    table(["Client ID", "Host", "Principal", "Listener", "Last address", "Requests", "Records", "Bytes", "Records/s", "Bytes/s", "Last seen"],
      ps.map((p) => [p.client_id || "-", p.host, p.principal, p.listener || "-", p.address, p.requests, p.records, p.bytes,
        p.records_per_sec, fmtBytes(p.bytes_per_sec), new Date(p.last_seen_ms).toISOString()]))];
}

async function render() {
  const [path] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter((x) => x).map(decodeURIComponent);
  let view;
  if (parts[0] === "topic" && parts.length === 2) view = () => topic(parts[1]);
  else if (parts[0] === "records" && parts.length === 3) view = () => records(parts[1], parts[2]);
  else if (parts[0] === "groups") view = groups;
  else if (parts[0] === "group" && parts.length === 2) view = () => group(parts[1]);
  else if (parts[0] === "sinks") view = sinks;
  else if (parts[0] === "producers") view = producers;
  else view = overview;
  try {
    const nodes = await view();
    main.replaceChildren(...nodes);
    statusEl.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    main.replaceChildren(h("p", { class: "bad" }, "Error: " + e.message));
  }
}

function schedule() {
  clearInterval(timer);
  render();
  // The record browser does not refresh by itself: a reader is reading.
  if (!location.hash.startsWith("#/records/")) timer = setInterval(render, 5000);
}

window.addEventListener("hashchange", schedule);
schedule();
