// Sauron's dashboard: vanilla JavaScript, no build step, no external
// network. Live through server-sent events (/api/stream) with a periodic
// poll underneath so the page never goes stale when the stream drops.
// Replaying a simulation log (`sauron --replay`), the same page reads the
// same API at a virtual time (`?at_ms=`) chosen with the scrubber.
//
// Everything that comes from the network (node names, behaviours, paths,
// reasons) is hostile input: it only ever reaches the page through
// textContent or setAttribute, never through innerHTML.
"use strict";

(() => {
  // ------------------------------------------------------------ constants

  const POLL_FAST_MS = 2000; // nodes and consensus
  const POLL_SLOW_MS = 4000; // blocks, propagation, rejections
  const FETCH_TIMEOUT_MS = 5000;
  const STALE_MS = 7000; // consensus older than this is flagged
  const STREAM_ROWS = 200; // rows shown
  const STREAM_BUFFER = 400; // rows kept
  const MAX_NODE_ROWS = 300;
  const MAX_BOSS = 40;
  const MAX_LANES = 7;
  const WINDOW_AHEAD = 3; // heights shown above the honest best tip
  const MAX_MINERS = 24;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LANE_COLOURS = ["#4ade80", "#f87171", "#fbbf24", "#c084fc", "#38bdf8", "#fb923c", "#f472b6"];

  // ---------------------------------------------------------------- state

  const state = {
    nodes: new Map(), // name -> row of /api/nodes
    consensus: null,
    consensusAt: 0,
    blocks: { blocks: [], tips: {} },
    laneOf: new Map(), // block hash -> lane (0: main chain), from the last tree
    propagation: null,
    forks: null,
    rejections: {},
    boss: [], // newest first
    bossSeen: new Set(),
    stream: [], // newest first
    streamKeys: new Set(),
    controlUrl: null,
    live: false, // SSE open
    lastOk: 0,
    failing: false,
    replay: null, // {at, end, speed, playing, info}: replaying a simulation log
    faults: { records: [], active: {}, now: 0 }, // /api/faults
  };

  // ------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  /** An HTML element; string children become text nodes (never markup). */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  /** An SVG element, same rules. */
  function sv(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.setAttribute("class", v);
      else if (k === "text") e.textContent = String(v);
      else e.setAttribute(k, String(v));
    }
  }

  /** Replaces the children of `e` (arrays are flattened, nulls skipped). */
  function put(e, ...kids) {
    e.replaceChildren();
    append(e, kids);
  }

  function append(e, kids) {
    for (const k of kids.flat()) {
      if (k === undefined || k === null || k === false) continue;
      e.appendChild(typeof k === "object" ? k : document.createTextNode(String(k)));
    }
  }

  function str(v, fallback = "") {
    if (v === undefined || v === null) return fallback;
    return typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  }

  // " to a b" for a latency or loss fault's peers; "" for every peer.
  function toPeers(to) {
    return Array.isArray(to) && to.length ? " to " + to.map((t) => str(t)).join(" ") : "";
  }

  function num(v) {
    if (v === null || v === undefined || v === "") return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }

  function short(hash, n = 8) {
    const h = str(hash);
    return h.length > n ? h.slice(0, n) : h;
  }

  function clip(s, n) {
    s = str(s);
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }

  function ago(ms) {
    if (state.replay) {
      if (ms === null || ms === undefined) return "never";
      const behind = Math.max(0, state.replay.at - ms);
      return behind < 1 ? "now" : fmtMs(behind) + " ago";
    }
    if (!ms) return "never";
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    return Math.floor(s / 3600) + "h ago";
  }

  function clock(ms) {
    if (state.replay) return "t = " + virtual(ms);
    const d = new Date(ms || 0);
    const p = (n, w = 2) => String(n).padStart(w, "0");
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1) return "<1 ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  }

  /** Compact axis label: 50ms, 1s, 2.5s. */
  function msLabel(ms) {
    return ms < 1000 ? String(Math.round(ms)) : `${+(ms / 1000).toFixed(1)}s`;
  }

  function byName(a, b) {
    return a.localeCompare(b, undefined, { numeric: true });
  }

  /** Items of a list answer: a bare array or a page `{items}`. */
  function items(v, ...keys) {
    if (Array.isArray(v)) return v;
    if (v && typeof v === "object") {
      for (const k of ["items", ...keys]) if (Array.isArray(v[k])) return v[k];
    }
    return [];
  }

  /** Virtual ms as `m:ss.mmm`. */
  function virtual(ms) {
    const t = Math.max(0, Math.floor(num(ms) ?? 0));
    const m = Math.floor(t / 60000);
    const sec = Math.floor((t % 60000) / 1000);
    return `${m}:${String(sec).padStart(2, "0")}.${String(t % 1000).padStart(3, "0")}`;
  }

  async function getJSON(path) {
    // A replay reads every part of the API at the scrubber's position; an
    // answer for a position the scrubber has left is dropped.
    const at = state.replay ? state.replay.at : null;
    if (at !== null && path.startsWith("/api/") && !path.startsWith("/api/config")) {
      path += (path.includes("?") ? "&" : "?") + "at_ms=" + at;
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const r = await fetch(path, { signal: ctl.signal, cache: "no-store" });
      if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
      const v = await r.json();
      state.lastOk = Date.now();
      state.failing = false;
      if (at !== null && state.replay.at !== at) throw new Error("replay moved on");
      return v;
    } catch (e) {
      state.failing = true;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // Coalesced rendering: many SSE messages, one repaint per section.
  const dirty = new Set();
  let flushTimer = null;
  const renderers = {};
  function schedule(...parts) {
    for (const p of parts) dirty.add(p);
    if (!flushTimer) flushTimer = setTimeout(flush, 120);
  }
  function flush() {
    flushTimer = null;
    const parts = [...dirty];
    dirty.clear();
    for (const p of parts) {
      try {
        renderers[p]();
      } catch (e) {
        console.error("render", p, e);
      }
    }
  }

  // Debounced one-shot refreshes triggered by live events.
  const pending = {};
  function soon(name, fn, ms) {
    if (pending[name]) return;
    pending[name] = setTimeout(() => {
      pending[name] = null;
      fn().catch(() => {});
    }, ms);
  }

  // ---------------------------------------------------------------- nodes

  function isHonest(n) {
    if (!n) return null;
    if (typeof n.honest === "boolean") return n.honest;
    return str(n.behaviour) === "honest";
  }

  function upsertNode(row) {
    if (!row || typeof row !== "object" || row.name === undefined) return;
    const name = str(row.name);
    state.nodes.set(name, Object.assign(state.nodes.get(name) || {}, row, { name }));
  }

  /**
   * The highest tip of a live honest node (what the header shows and lags
   * are measured against); of any live node only when no honest one
   * lives: a misbehaving node claiming a far height must not set it.
   */
  function bestHeight() {
    let best = null;
    let any = null;
    for (const n of state.nodes.values()) {
      if (!n.alive || n.fired) continue;
      const h = num(n.height);
      if (h === null) continue;
      if (any === null || h > any) any = h;
      if (isHonest(n) && (best === null || h > best)) best = h;
    }
    return best ?? any;
  }

  function nodeOrder(a, b) {
    const rank = (n) => (n.fired ? 2 : n.alive ? 0 : 1);
    return rank(a) - rank(b) || byName(a.name, b.name);
  }

  const rowCache = new Map(); // name -> {tr, cells}

  function makeRow(name) {
    const c = {
      state: el("td", { class: "alive" }),
      name: el("td", { class: "name" }),
      behaviour: el("td", { class: "behaviour" }),
      height: el("td", { class: "height num" }),
      tip: el("td", { class: "tip" }),
      peers: el("td", { class: "peers num" }),
      seen: el("td", { class: "seen" }),
      actions: el("td", { class: "actions" }),
    };
    const tr = el("tr", { "data-node": name }, Object.values(c));
    return { tr, c, sig: "" };
  }

  renderers.nodes = function renderNodes() {
    const body = $("node-rows");
    const all = [...state.nodes.values()].sort(nodeOrder);
    const shown = all.slice(0, MAX_NODE_ROWS);
    const best = bestHeight();
    const control = !!state.controlUrl;
    $("actions-head").hidden = !control;
    $("nodes-empty").hidden = all.length > 0;

    const alive = all.filter((n) => n.alive && !n.fired).length;
    const fired = all.filter((n) => n.fired).length;
    $("node-count").textContent =
      `${alive} live · ${all.length} seen` + (fired ? ` · ${fired} fired` : "") +
      (all.length > shown.length ? ` · first ${shown.length} shown` : "");

    const keep = new Set();
    let prev = null;
    for (const n of shown) {
      keep.add(n.name);
      let r = rowCache.get(n.name);
      if (!r) {
        r = makeRow(n.name);
        rowCache.set(n.name, r);
      }
      fillRow(r, n, best, control);
      // Keep DOM order without re-inserting rows that are already in place.
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== r.tr) body.insertBefore(r.tr, want);
      prev = r.tr;
    }
    for (const [name, r] of rowCache) {
      if (!keep.has(name)) {
        r.tr.remove();
        rowCache.delete(name);
      }
    }
    updateNodeFilter();
    updateBehaviourList();
    // Badges in the tree follow the nodes' tips.
    const tips = JSON.stringify(all.map((n) => [n.name, n.tip, n.alive, n.fired]));
    if (tips !== lastTips) {
      lastTips = tips;
      schedule("tree");
    }
  };
  let lastTips = "";

  function fillRow(r, n, best, control) {
    const honest = isHonest(n);
    const h = num(n.height);
    const lane = state.laneOf.get(str(n.tip));
    const marks = faultMarks(str(n.name));
    const sig = JSON.stringify([n.alive, n.fired, n.behaviour, honest, h, n.tip, n.peers, n.url, best, control, lane, marks]);
    r.tr.className = [n.fired ? "fired" : n.alive ? "up" : "down", honest ? "honest" : "bad"].join(" ");
    if (marks.group === null) {
      r.tr.removeAttribute("data-group");
      r.tr.style.removeProperty("--group");
    } else {
      r.tr.setAttribute("data-group", String(marks.group));
      r.tr.style.setProperty("--group", GROUP_COLOURS[marks.group % GROUP_COLOURS.length]);
    }
    r.tr.setAttribute("data-faults", marks.tags.map((t) => t[0]).join(" "));
    r.c.seen.textContent = ago(num(n.last_seen_ms)).replace(" ago", "");
    r.c.seen.title = n.last_seen_ms ? new Date(n.last_seen_ms).toLocaleString() : "";
    if (sig === r.sig) return;
    r.sig = sig;
    const c = r.c;

    const st = n.fired ? "fired" : n.alive ? "alive" : "down";
    put(c.state, el("span", { class: "pill state-" + st, "data-state": st }, st));

    put(c.name,
      el("div", { class: "node-name", title: str(n.name) }, clip(n.name, 28)),
      el("div", { class: "node-url", title: `${str(n.url)}\naddress ${str(n.address)}` }, clip(str(n.url).replace(/^https?:\/\//, ""), 32)),
      marks.tags.length
        ? el("div", { class: "fault-tags" }, marks.tags.map(([k, text]) =>
            el("span", { class: "fault-tag t-" + k, "data-mark": k }, text)))
        : null,
    );

    put(c.behaviour,
      el("span", { class: "pill " + (honest ? "b-honest" : "b-bad"), title: str(n.behaviour) }, clip(n.behaviour || "?", 20)),
    );

    c.height.textContent = h === null ? "–" : String(h);
    c.height.setAttribute("data-height", h === null ? "" : String(h));
    const lag = best !== null && h !== null && n.alive && !n.fired ? best - h : 0;
    // A node ahead of the honest best (a fake or private chain) shows no lag.
    if (lag > 0) c.height.setAttribute("data-lag", String(lag));
    else c.height.removeAttribute("data-lag");

    const tip = str(n.tip);
    c.tip.setAttribute("data-tip", tip);
    c.tip.title = tip;
    put(c.tip);
    if (tip) {
      const colour = lane === undefined ? null : LANE_COLOURS[Math.min(lane, LANE_COLOURS.length - 1)];
      const chip = el("span", { class: "hash" }, short(tip, 8));
      if (colour) chip.style.setProperty("--lane", colour);
      c.tip.appendChild(chip);
      if (lane > 0) c.tip.appendChild(el("span", { class: "fork-tag" }, "fork"));
    } else {
      c.tip.textContent = "–";
    }

    c.peers.textContent = n.peers === undefined || n.peers === null ? "–" : str(n.peers);

    c.actions.hidden = !control;
    put(c.actions);
    if (control && !n.fired) {
      const b = el("button", { type: "button", class: "fire", title: "fire this node (click twice)" }, "fire");
      b.addEventListener("click", () => fire(n.name, b));
      c.actions.appendChild(b);
    }
  }

  function tickSeen() {
    for (const [name, r] of rowCache) {
      const n = state.nodes.get(name);
      if (n) r.c.seen.textContent = ago(num(n.last_seen_ms)).replace(" ago", "");
    }
    renderLink();
    if (state.consensus && Date.now() - state.consensusAt > STALE_MS) renderers.consensus();
  }

  function updateNodeFilter() {
    const sel = $("stream-node");
    const names = [...state.nodes.keys()].sort(byName).slice(0, MAX_NODE_ROWS);
    const have = [...sel.options].slice(1).map((o) => o.value);
    if (have.length === names.length && have.every((v, i) => v === names[i])) return;
    const cur = sel.value;
    put(sel, el("option", { value: "" }, "all nodes"), names.map((n) => el("option", { value: n }, clip(n, 30))));
    sel.value = names.includes(cur) ? cur : "";
  }

  function updateBehaviourList() {
    const list = $("behaviour-list");
    const seen = new Set(["honest"]);
    for (const n of state.nodes.values()) if (n.behaviour) seen.add(str(n.behaviour));
    if (list.options.length === seen.size) return;
    put(list, [...seen].sort().slice(0, 50).map((b) => el("option", { value: b })));
  }

  // ------------------------------------------------------------ consensus

  renderers.consensus = function renderConsensus() {
    const c = state.consensus || {};
    const box = $("verdict");
    const verdict = str(c.verdict, "unknown");
    const stale = state.consensus && Date.now() - state.consensusAt > STALE_MS;
    box.className = "verdict " + verdict.replace(/[^a-z_]/g, "") + (stale ? " stale" : "");
    box.setAttribute("data-verdict", verdict);

    const live = num(c.live_honest);
    const agreeing = num(c.agreeing);
    const common = num(c.common_height);
    const depth = num(c.max_fork_depth);
    const k = num(c.k);
    let word;
    let detail;
    if (verdict === "consensus") {
      word = "Consensus";
      detail = `all ${live ?? "?"} live honest nodes share the chain up to height ${common ?? "?"}` +
        (k !== null ? ` (k = ${k})` : "");
    } else if (verdict === "forked") {
      word = "Forked";
      detail = `${agreeing ?? "?"} of ${live ?? "?"} live honest nodes agree` +
        (depth ? ` · deepest fork ${depth} block${depth === 1 ? "" : "s"}` : "") +
        (k !== null ? ` (k = ${k})` : "");
    } else if (verdict === "no_honest_nodes") {
      word = "No honest nodes";
      detail = "no live honest node to judge the network by";
    } else {
      word = "Waiting for Sauron…";
      detail = "";
    }
    if (stale) detail = "Sauron has not answered for a while; last known: " + detail;
    $("verdict-word").textContent = word;
    $("verdict-detail").textContent = detail;
    $("common-height").textContent = common ?? "–";
    $("honest-live").textContent = live === null ? "–" : agreeing === null ? String(live) : `${agreeing} / ${live}`;
    $("fork-depth").textContent = depth ?? "–";
    const all = [...state.nodes.values()];
    const alive = all.filter((n) => n.alive && !n.fired).length;
    $("nodes-live").textContent = all.length ? `${alive} / ${all.filter((n) => !n.fired).length}` : "–";
    $("best-height").textContent = bestHeight() ?? "–";
  };

  // ---------------------------------------------------------- block tree

  /**
   * The height the tree and the propagation list follow: the highest tip
   * of a live honest node (never the newest or highest report of any
   * node: a misbehaving node reporting old heights, or a fake chain far
   * ahead, must not move the window). Without one, Sauron's own window
   * anchor, then the highest block.
   */
  function anchorHeight(blocks) {
    let best = null;
    for (const n of state.nodes.values()) {
      if (!n.alive || n.fired || !isHonest(n)) continue;
      const h = num(n.height);
      if (h !== null && (best === null || h > best)) best = h;
    }
    if (best !== null) return best;
    const w = state.blocks.window;
    if (w && num(w.anchor_height) !== null && str(w.anchor) !== "empty") return num(w.anchor_height);
    return blocks.length ? Math.max(...blocks.map((b) => b.height)) : null;
  }

  function mainTip(blocks, byHash) {
    // The main chain ends at the highest block an honest live node sits on;
    // without one, at the highest block seen.
    let best = null;
    const better = (b) =>
      !best || b.height > best.height || (b.height === best.height && (b.first_seen_ms || 0) < (best.first_seen_ms || 0));
    for (const n of state.nodes.values()) {
      if (!n.alive || n.fired || !isHonest(n)) continue;
      const b = byHash.get(str(tipOf(n.name)));
      if (b && better(b)) best = b;
    }
    if (!best) for (const b of blocks) if (better(b)) best = b;
    return best;
  }

  function tipOf(name) {
    const n = state.nodes.get(name);
    const tips = state.blocks.tips || {};
    // Prefer the freshest view (/api/nodes) when the tree knows that block.
    return n && n.tip ? n.tip : tips[name];
  }

  let lastLanes = "";
  renderers.tree = function renderTree() {
    const host = $("tree");
    const raw = items(state.blocks, "blocks")
      .map((b) => ({
        hash: str(b.hash),
        parent: str(b.parent),
        height: num(b.height) ?? 0,
        first_seen_ms: num(b.first_seen_ms) ?? 0,
        miner_node: b.miner_node === undefined || b.miner_node === null ? null : str(b.miner_node),
      }))
      .filter((b) => b.hash);
    const width = Math.max(320, host.clientWidth || 800);
    if (!raw.length) {
      put(host, el("p", { class: "empty" }, "No blocks reported yet."));
      state.laneOf = new Map();
      return;
    }
    const colW = 54;
    const padL = 14;
    const cols = Math.max(4, Math.floor((width - padL - 10) / colW));
    const anchor = anchorHeight(raw);
    const top = Math.min(Math.max(...raw.map((b) => b.height)), anchor + WINDOW_AHEAD);
    const maxH = Math.max(anchor, top);
    const minH = Math.max(0, maxH - cols + 1);
    const blocks = raw.filter((b) => b.height >= minH && b.height <= maxH);
    host.setAttribute("data-window", `${minH}-${maxH}`);
    const byHash = new Map(raw.map((b) => [b.hash, b]));

    // Main chain.
    const main = new Set();
    for (let b = mainTip(raw, byHash); b && !main.has(b.hash); b = byHash.get(b.parent)) main.add(b.hash);

    // Lanes: main chain on lane 0, each fork on the lowest free lane below.
    blocks.sort((a, b) => a.height - b.height || Number(main.has(b.hash)) - Number(main.has(a.hash)) || a.first_seen_ms - b.first_seen_ms);
    const lane = new Map();
    const laneEnd = [Infinity]; // last height used per lane (lane 0 reserved)
    const continued = new Set(); // parents whose lane already continues
    for (const b of blocks) {
      if (main.has(b.hash)) {
        lane.set(b.hash, 0);
        continued.add(b.parent);
        continue;
      }
      const pl = lane.get(b.parent);
      let l;
      if (pl !== undefined && pl > 0 && !continued.has(b.parent)) {
        l = pl;
      } else {
        l = laneEnd.findIndex((end, i) => i > 0 && end < b.height - 1);
        if (l < 0) l = laneEnd.length < MAX_LANES ? laneEnd.length : MAX_LANES - 1;
      }
      continued.add(b.parent);
      laneEnd[l] = b.height;
      lane.set(b.hash, l);
    }
    state.laneOf = lane;
    const lanes = Math.max(1, ...[...lane.values()].map((l) => l + 1));

    // Node tips.
    const atTip = new Map(); // hash -> [node]
    const behind = [];
    const unreported = [];
    for (const n of [...state.nodes.values()].sort(nodeOrder)) {
      if (n.fired) continue;
      const t = str(tipOf(n.name));
      if (!t) continue;
      if (lane.has(t)) {
        if (!atTip.has(t)) atTip.set(t, []);
        atTip.get(t).push(n);
      } else {
        const h = num(n.height);
        if (h !== null && h >= minH && h <= maxH) unreported.push(n);
        else behind.push(n);
      }
    }

    const blockW = 42;
    const blockH = 22;
    const badgeH = 14;
    const maxBadges = 3;
    const laneH = blockH + 10 + maxBadges * (badgeH + 2);
    const topY = 22;
    const x = (h) => padL + (h - minH) * colW;
    const y = (l) => topY + l * laneH;
    const svgH = topY + lanes * laneH;
    const svg = sv("svg", { width, height: svgH, viewBox: `0 0 ${width} ${svgH}`, class: "tree-svg", role: "img", "aria-label": "block tree" });

    // Height axis.
    const every = colW >= 40 ? 1 : 2;
    for (let h = minH; h <= maxH; h++) {
      if ((h - minH) % every) continue;
      svg.appendChild(sv("text", { x: x(h) + blockW / 2, y: 12, class: "axis", "text-anchor": "middle" }, "#" + h));
    }
    // Lane guides for forks.
    for (let l = 1; l < lanes; l++) {
      svg.appendChild(sv("line", { x1: 0, x2: width, y1: y(l) - 5, y2: y(l) - 5, class: "lane-guide" }));
    }

    // Edges first, blocks on top.
    for (const b of blocks) {
      const l = lane.get(b.hash);
      const x2 = x(b.height);
      const y2 = y(l) + blockH / 2;
      const p = byHash.get(b.parent);
      const pl = p ? lane.get(p.hash) : undefined;
      const colour = LANE_COLOURS[Math.min(l, LANE_COLOURS.length - 1)];
      if (p && pl !== undefined) {
        const x1 = x(p.height) + blockW;
        const y1 = y(pl) + blockH / 2;
        const mid = (x1 + x2) / 2;
        svg.appendChild(sv("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: "edge", stroke: colour }));
      } else if (b.height === minH || !p) {
        svg.appendChild(sv("path", { d: `M${Math.max(0, x2 - 12)},${y2} L${x2},${y2}`, class: "edge stub", stroke: colour }));
      }
    }
    for (const b of blocks) {
      const l = lane.get(b.hash);
      const miner = b.miner_node !== null ? state.nodes.get(b.miner_node) : null;
      const honest = miner ? isHonest(miner) : null;
      const kind = honest === null ? "unknown" : honest ? "honest" : "bad";
      const onMain = main.has(b.hash);
      const g = sv("g", { class: `blk ${kind} ${onMain ? "main" : "fork"}`, "data-hash": b.hash, "data-height": b.height });
      g.appendChild(
        sv("title", null,
          `#${b.height} ${b.hash}\nparent ${b.parent}\nmined by ${b.miner_node ?? "?"}` +
          (miner ? ` (${str(miner.behaviour)})` : "") +
          (b.first_seen_ms ? `\nfirst seen ${clock(b.first_seen_ms)}` : "") + (onMain ? "" : "\noff the main chain")),
      );
      const colour = LANE_COLOURS[Math.min(l, LANE_COLOURS.length - 1)];
      g.appendChild(sv("rect", { x: x(b.height), y: y(l), width: blockW, height: blockH, rx: 5, stroke: onMain ? "#1f2937" : colour }));
      g.appendChild(sv("text", { x: x(b.height) + blockW / 2, y: y(l) + 15, "text-anchor": "middle", class: "blk-label" }, short(b.hash, 4)));
      svg.appendChild(g);

      const here = atTip.get(b.hash);
      if (here) {
        const shown = here.length > maxBadges ? here.slice(0, maxBadges - 1) : here;
        let by = y(l) + blockH + 4;
        for (const n of shown) {
          const honestN = isHonest(n);
          const bg = sv("g", { class: `badge ${honestN ? "honest" : "bad"} ${n.alive ? "" : "down"}`, "data-node": n.name });
          bg.appendChild(sv("title", null, `${n.name} (${str(n.behaviour)}) at #${b.height}`));
          bg.appendChild(sv("rect", { x: x(b.height) - 3, y: by, width: blockW + 6, height: badgeH, rx: 7 }));
          bg.appendChild(sv("text", { x: x(b.height) + blockW / 2, y: by + 10.5, "text-anchor": "middle" }, clip(n.name, 8)));
          svg.appendChild(bg);
          by += badgeH + 2;
        }
        if (here.length > shown.length) {
          const rest = here.slice(shown.length);
          const more = sv("g", { class: "badge more" });
          more.appendChild(sv("title", null, rest.map((n) => n.name).join(", ")));
          more.appendChild(sv("rect", { x: x(b.height) - 3, y: by, width: blockW + 6, height: badgeH, rx: 7 }));
          more.appendChild(sv("text", { x: x(b.height) + blockW / 2, y: by + 10.5, "text-anchor": "middle" }, `+${rest.length} more`));
          svg.appendChild(more);
        }
      }
    }

    const kids = [svg];
    if (unreported.length) {
      const names = unreported.slice(0, 12).map((n) => `${clip(n.name, 16)} (#${num(n.height) ?? "?"})`);
      kids.push(el("p", { class: "behind unreported" }, "Tip not reported yet: " + names.join(", ") + (unreported.length > 12 ? ` and ${unreported.length - 12} more` : "")));
    }
    if (behind.length) {
      const names = behind.slice(0, 12).map((n) => `${clip(n.name, 16)} (#${num(n.height) ?? "?"})`);
      kids.push(el("p", { class: "behind" }, "Not in this window: " + names.join(", ") + (behind.length > 12 ? ` and ${behind.length - 12} more` : "")));
    }
    put(host, kids);
    // Tip chips in the node table take their colour from the lanes.
    const lanesNow = JSON.stringify([...lane]);
    if (lanesNow !== lastLanes) {
      lastLanes = lanesNow;
      for (const r of rowCache.values()) r.sig = "";
      schedule("nodes");
    }
  };

  // ---------------------------------------------------------- propagation

  const DEFAULT_BUCKETS = [50, 100, 200, 500, 1000, 2000, 5000, Infinity];

  /** Per-block delays as [{hash, height, first, delays: [[node, ms]]}]. */
  function propBlocks(p) {
    return items(p, "blocks", "recent").slice(0, 200).map((b) => {
      const src = b.delays_ms ?? b.delays ?? b.nodes ?? b.arrivals ?? b.accepted ?? {};
      let delays = [];
      if (Array.isArray(src)) {
        delays = src.map((d) => [str(d.node ?? d.name), num(d.delay_ms ?? d.ms ?? d.delay)]);
      } else if (src && typeof src === "object") {
        delays = Object.entries(src).map(([k, v]) => [k, num(typeof v === "object" && v ? v.delay_ms ?? v.ms : v)]);
      }
      return {
        hash: str(b.hash),
        height: num(b.height),
        first: str(b.first_node ?? b.miner_node ?? b.first_reported_by, ""),
        delays: delays.filter((d) => d[1] !== null),
      };
    });
  }

  /** Histogram buckets as [{label, hi, count}]. */
  function propHistogram(p, blocks) {
    const hist = p && (p.histogram ?? p.buckets);
    const out = [];
    const label = (lo, hi) => (hi === Infinity ? `>${msLabel(lo)}` : msLabel(hi));
    if (Array.isArray(hist) && hist.length) {
      let lo = 0;
      for (const b of hist) {
        let hi;
        let count;
        if (Array.isArray(b)) {
          hi = num(b[0]);
          count = num(b[1]);
        } else if (b && typeof b === "object") {
          hi = num(b.le_ms ?? b.upper_ms ?? b.to_ms ?? b.max_ms ?? b.bucket_ms ?? b.le ?? b.hi_ms ?? b.until_ms);
          const from = num(b.from_ms ?? b.lower_ms ?? b.min_ms ?? b.lo_ms);
          if (from !== null) lo = from;
          count = num(b.count ?? b.n ?? b.blocks);
        }
        if (hi === null) hi = Infinity;
        out.push({ label: b && b.label ? str(b.label) : label(lo, hi), hi, count: count ?? 0 });
        lo = hi;
      }
      return out.slice(0, 24);
    }
    if (hist && typeof hist === "object") {
      return Object.entries(hist).slice(0, 24).map(([k, v]) => ({ label: clip(k, 10), hi: num(k) ?? Infinity, count: num(v) ?? 0 }));
    }
    const all = blocks.flatMap((b) => b.delays.map((d) => d[1]));
    let lo = 0;
    return DEFAULT_BUCKETS.map((hi) => {
      const count = all.filter((ms) => ms >= lo && (ms < hi || (hi === Infinity))).length;
      const o = { label: label(lo, hi), hi, count };
      lo = hi;
      return o;
    });
  }

  function delayColour(hi) {
    if (hi <= 200) return "#4ade80";
    if (hi <= 1000) return "#a3e635";
    if (hi <= 2000) return "#fbbf24";
    return "#f87171";
  }

  renderers.propagation = function renderPropagation() {
    const p = state.propagation;
    const blocks = propBlocks(p);
    const hist = propHistogram(p, blocks);
    const all = blocks.flatMap((b) => b.delays.map((d) => d[1])).sort((a, b) => a - b);
    const q = (f) => (all.length ? all[Math.min(all.length - 1, Math.floor(f * all.length))] : null);
    $("prop-summary").textContent = all.length
      ? `${blocks.length} blocks · median ${fmtMs(q(0.5))} · p90 ${fmtMs(q(0.9))}`
      : "";

    const host = $("histogram");
    const total = hist.reduce((s, b) => s + b.count, 0);
    if (!total) {
      put(host, el("p", { class: "empty" }, "No block has travelled yet."));
    } else {
      const width = Math.max(260, host.clientWidth || 400);
      const height = 120;
      const bw = (width - 8) / hist.length;
      const maxC = Math.max(...hist.map((b) => b.count));
      const svg = sv("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "hist-svg", role: "img", "aria-label": "propagation histogram" });
      hist.forEach((b, i) => {
        const h = maxC ? Math.round((b.count / maxC) * (height - 40)) : 0;
        const bx = 4 + i * bw;
        const g = sv("g", null, sv("title", null, `${b.label}: ${b.count} deliveries (${Math.round((100 * b.count) / total)}%)`));
        g.appendChild(sv("rect", { x: bx + 3, y: height - 18 - h, width: Math.max(2, bw - 6), height: Math.max(h, b.count ? 2 : 1), rx: 3, fill: delayColour(b.hi) }));
        if (b.count) g.appendChild(sv("text", { x: bx + bw / 2, y: height - 22 - h, "text-anchor": "middle", class: "hist-count" }, String(b.count)));
        g.appendChild(sv("text", { x: bx + bw / 2, y: height - 4, "text-anchor": "middle", class: "hist-label" }, b.label));
        svg.appendChild(g);
      });
      put(host, svg, el("div", { class: "hist-axis" }, "delay from first report to each node (ms)"));
    }

    const list = $("prop-blocks");
    // Highest first, inside the honest window (Sauron lists them so; the
    // page checks again against its own honest anchor).
    const anchor = anchorHeight([]);
    const recent = blocks
      .filter((b) => b.delays.length && (anchor === null || b.height === null || (b.height <= anchor + WINDOW_AHEAD && b.height > anchor - 64)))
      .sort((a, c) => (c.height ?? 0) - (a.height ?? 0))
      .slice(0, 5);
    put(list,
      recent.map((b) => {
        const ds = b.delays.slice().sort((a, c) => a[1] - c[1]);
        const slow = ds[ds.length - 1];
        return el("div", { class: "prop-row", title: b.hash, "data-height": b.height ?? "" },
          el("span", { class: "prop-h" }, b.height === null ? "#?" : "#" + b.height),
          el("span", { class: "hash mono" }, short(b.hash, 8)),
          el("span", { class: "prop-bar" },
            ds.slice(0, 12).map(([node, ms]) =>
              el("span", { class: "prop-dot", title: `${node}: ${fmtMs(ms)}`, style: `background:${delayColour(ms)}` }))),
          el("span", { class: "prop-text", title: `slowest: ${slow[0]}` }, `${ds.length} node${ds.length === 1 ? "" : "s"} · slowest ${fmtMs(slow[1])}`));
      }),
    );
  };

  // ---------------------------------------------------------------- forks

  function pct(v) {
    const n = num(v);
    if (n === null) return "–";
    return (100 * n).toFixed(n < 0.1 ? 1 : 0) + "%";
  }

  function staleClass(rate) {
    if (rate === null) return "";
    return rate <= 0.05 ? "good" : rate <= 0.25 ? "warn" : "bad";
  }

  /** A small time chart: `series` [{at, values: {key: number|null}}]. */
  function timeChart(host, series, opts) {
    const width = Math.max(200, host.clientWidth || 300);
    const height = 110;
    const padL = 34;
    const padB = 16;
    const padT = 6;
    const plotW = width - padL - 6;
    const plotH = height - padB - padT;
    const svg = sv("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": opts.label, "data-points": series.length });
    if (!series.length) {
      put(host, el("p", { class: "empty" }, opts.empty));
      return;
    }
    const max = opts.max ?? Math.max(1, ...series.flatMap((p) => Object.values(p.values).filter((v) => v !== null)));
    const t0 = series[0].at;
    const t1 = series[series.length - 1].at;
    const step = series.length > 1 ? plotW / (series.length - 1) : plotW;
    const px = (i) => padL + (series.length > 1 ? i * step : plotW / 2);
    const py = (v) => padT + plotH - (Math.min(v, max) / max) * plotH;
    for (const f of [0, 0.5, 1]) {
      const yv = py(max * f);
      svg.appendChild(sv("line", { x1: padL, x2: width - 6, y1: yv, y2: yv, class: "grid-line" }));
      svg.appendChild(sv("text", { x: padL - 4, y: yv + 3, "text-anchor": "end", class: "axis" }, opts.tick(max * f)));
    }
    svg.appendChild(sv("text", { x: padL, y: height - 3, class: "axis" }, clock(t0).slice(0, 8)));
    if (t1 !== t0) svg.appendChild(sv("text", { x: width - 6, y: height - 3, "text-anchor": "end", class: "axis" }, clock(t1).slice(0, 8)));
    if (opts.bars) {
      const bw = Math.max(2, Math.min(18, step * 0.7));
      series.forEach((p, i) => {
        const v = p.values[opts.bars];
        if (v === null) return;
        const yv = py(v);
        const g = sv("g", null, sv("title", null, `${clock(p.at).slice(0, 8)}: ${opts.tick(v)}${p.note ? " · " + p.note : ""}`));
        g.appendChild(sv("rect", { x: px(i) - bw / 2, y: yv, width: bw, height: Math.max(1, padT + plotH - yv), rx: 2, fill: opts.colour(v), class: "bar-" + opts.bars }));
        svg.appendChild(g);
      });
    }
    for (const key of opts.lines || []) {
      let d = "";
      series.forEach((p, i) => {
        const v = p.values[key];
        if (v === null) return;
        d += `${d ? "L" : "M"}${px(i).toFixed(1)},${py(v).toFixed(1)}`;
      });
      if (d) svg.appendChild(sv("path", { d, class: key }));
      series.forEach((p, i) => {
        const v = p.values[key];
        if (v !== null) svg.appendChild(sv("circle", { cx: px(i), cy: py(v), r: 2, class: key }, sv("title", null, `${key} ${fmtMs(v)} at ${clock(p.at).slice(0, 8)}`)));
      });
    }
    put(host, svg);
  }

  renderers.forks = function renderForks() {
    const f = state.forks || {};
    const rate = num(f.stale_rate);
    const mined = num(f.blocks_mined);
    const onBest = num(f.blocks_on_best_chain);
    const interval = num(f.mean_interval_ms);
    const p = f.propagation || {};
    const stale = $("forks-stale");
    stale.textContent = pct(rate);
    stale.className = staleClass(rate);
    const header = $("stale-rate");
    header.textContent = pct(rate);
    $("forks-mined").textContent = mined === null ? "–" : `${mined} · ${onBest ?? "?"}`;
    $("forks-interval").textContent = interval === null ? "–" : fmtMs(interval);
    $("forks-delay").textContent = num(p.samples) ? `${fmtMs(num(p.median_ms))} · ${fmtMs(num(p.p90_ms))} · ${fmtMs(num(p.max_ms))}` : "–";
    const from = num(f.from_height);
    const to = num(f.best_height);
    $("forks-summary").textContent = to === null ? "no honest best chain yet" : `best chain #${from ?? "?"}–#${to} · ${num(f.stale_blocks) ?? 0} stale`;

    const series = items(f.series).slice(-60).map((s) => ({
      at: num(s.at_ms) ?? 0,
      values: {
        stale: num(s.stale_rate),
        med: num(s.propagation && s.propagation.median_ms),
        p90: num(s.propagation && s.propagation.p90_ms),
      },
      note: `${num(s.stale_blocks) ?? 0} of ${num(s.blocks_mined) ?? 0} stale`,
    }));
    timeChart($("stale-chart"), series, {
      label: "stale rate over time",
      empty: "No block mined yet.",
      max: 1,
      bars: "stale",
      tick: (v) => Math.round(100 * v) + "%",
      colour: (v) => (v <= 0.05 ? "#4ade80" : v <= 0.25 ? "#fbbf24" : "#f87171"),
    });
    timeChart($("delay-chart"), series, {
      label: "propagation delay over time",
      empty: "No block has travelled yet.",
      lines: ["p90", "med"],
      tick: (v) => msLabel(v),
    });

    const host = $("miners");
    const miners = items(f.miners)
      .map((m) => ({
        node: str(m.node),
        honest: m.honest === true,
        behaviour: str(m.behaviour),
        power: num(m.hash_share),
        chain: num(m.best_chain_share),
        mined: num(m.mined) ?? 0,
        on: num(m.on_best_chain) ?? 0,
      }))
      .sort((a, b) => (b.power ?? 0) - (a.power ?? 0) || b.on - a.on || byName(a.node, b.node));
    if (!miners.length) {
      put(host, el("p", { class: "empty" }, "No miner yet."));
      return;
    }
    const totalPower = miners.reduce((s, m) => s + (m.power ?? 0), 0) || 1;
    const bar = (cls, v, title) => {
      const fill = el("span", { class: "fill" });
      fill.style.width = v === null ? "0" : Math.max(v > 0 ? 1 : 0, Math.min(100, 100 * v)) + "%";
      return el("span", { class: "track " + cls, title }, fill);
    };
    put(host,
      miners.slice(0, MAX_MINERS).map((m) => {
        // Hash shares are each node's own; shown against the fleet's total.
        const power = m.power === null ? null : m.power / totalPower;
        return el("div", { class: "miner " + (m.honest ? "honest" : "bad"), "data-node": m.node },
          el("span", { class: "miner-name", title: `${m.node} (${m.behaviour || "?"})` }, clip(m.node, 22)),
          el("span", { class: "miner-bars" },
            bar("power", power, `hash power ${pct(power)}`),
            bar("chain", m.chain, `best chain ${pct(m.chain)}: ${m.on} of its ${m.mined} blocks`)),
          el("span", { class: "miner-text" }, pct(power), " → ", el("b", null, pct(m.chain))));
      }),
      miners.length > MAX_MINERS ? el("p", { class: "hint" }, `+${miners.length - MAX_MINERS} more miners`) : null,
    );
  };

  // ----------------------------------------------------------- rejections

  renderers.rejections = function renderRejections() {
    const host = $("rejections");
    const entries = Object.entries(state.rejections || {})
      .map(([k, v]) => [k, num(v) ?? 0])
      .filter((e) => e[1] > 0)
      .sort((a, b) => b[1] - a[1]);
    const total = entries.reduce((s, e) => s + e[1], 0);
    $("rej-total").textContent = total ? String(total) : "";
    if (!entries.length) {
      put(host, el("p", { class: "empty ok" }, "No block rejected. Everyone plays fair, so far."));
      return;
    }
    const max = entries[0][1];
    put(host,
      entries.slice(0, 8).map(([reason, count]) => {
        const bar = el("span", { class: "bar-fill" });
        bar.style.width = Math.max(2, (100 * count) / max) + "%";
        return el("div", { class: "bar", "data-reason": reason },
          el("span", { class: "bar-label", title: reason }, clip(reason.replace(/_/g, " "), 24)),
          el("span", { class: "bar-track" }, bar),
          el("span", { class: "bar-count" }, String(count)));
      }),
      entries.length > 8 ? el("p", { class: "hint" }, `+${entries.length - 8} more reasons`) : null,
    );
  };

  // --------------------------------------------------------------- faults

  const GROUP_COLOURS = ["#c084fc", "#38bdf8", "#fbbf24", "#4ade80", "#f472b6", "#fb923c"];
  const MAX_FAULT_ROWS = 60;

  /** What the faults in effect do to `name`: its partition group, tags. */
  function faultMarks(name) {
    const a = state.faults.active || {};
    const tags = [];
    let group = null;
    if (Array.isArray(a.partition)) {
      a.partition.forEach((g, i) => {
        if (Array.isArray(g) && g.includes(name)) group = i;
      });
      if (group !== null) tags.push(["group", "side " + (group + 1)]);
    }
    const has = (o, k) => o && typeof o === "object" && Object.prototype.hasOwnProperty.call(o, k);
    if (Array.isArray(a.bridge) && a.bridge.includes(name)) tags.push(["bridge", "bridge"]);
    if (Array.isArray(a.isolated) && a.isolated.includes(name)) tags.push(["isolated", "isolated"]);
    if (has(a.clock_skew, name) && num(a.clock_skew[name])) {
      const ms = num(a.clock_skew[name]);
      tags.push(["skewed", `clock ${ms > 0 ? "+" : ""}${Math.round(ms / 1000)} s`]);
    }
    if (has(a.slowed, name)) tags.push(["slowed", `+${str(a.slowed[name])} ms`]);
    if (has(a.lossy, name)) tags.push(["lossy", `loss ${Math.round((num(a.lossy[name]) ?? 0) * 100)}%`]);
    if (has(a.paused, name)) tags.push(["paused", "paused"]);
    return { group, tags };
  }

  function faultText(f) {
    if (!f || typeof f !== "object") return "?";
    const k = str(f.kind, "?");
    switch (k) {
      case "partition": {
        const groups = Array.isArray(f.groups) ? f.groups.map((g) => (Array.isArray(g) ? g.join(" ") : "?")) : [];
        return `partition [${groups.join("] | [")}]` + (Array.isArray(f.bridge) && f.bridge.length ? ` bridged by ${f.bridge.map((b) => str(b)).join(" ")}` : "");
      }
      case "clock_skew": return `skew ${str(f.node)} ${num(f.skew_ms) > 0 ? "+" : ""}${Math.round((num(f.skew_ms) ?? 0) / 1000)} s`;
      case "latency": return `latency ${str(f.node)}${toPeers(f.to)} ${str(f.mean_ms)}±${str(f.jitter_ms)} ms`;
      case "loss": return `loss ${str(f.node)}${toPeers(f.to)} ${Math.round((num(f.rate) ?? 0) * 100)}%`;
      case "crash": return `kill ${str(f.node)}`;
      default: return f.node === undefined ? k : `${k} ${str(f.node)}`;
    }
  }

  async function loadFaults() {
    const v = await getJSON("/api/faults");
    state.faults = {
      records: Array.isArray(v && v.records) ? v.records : [],
      active: (v && v.active && typeof v.active === "object") ? v.active : {},
      now: num(v && v.now_ms) ?? Date.now(),
    };
    schedule("faults", "nodes");
  }

  renderers.faults = function renderFaults() {
    const host = $("faults");
    const records = state.faults.records.slice(-MAX_FAULT_ROWS).reverse();
    const now = state.faults.now;
    const open = records.filter((r) => r.end_ms === null || r.end_ms === undefined || num(r.end_ms) > now).length;
    $("faults-summary").textContent = `${state.faults.records.length} so far · ${open} on`;
    if (!records.length) {
      put(host, el("div", { class: "empty" }, "No fault yet."));
      return;
    }
    const from = Math.min(...records.map((r) => num(r.start_ms) ?? now));
    const span = Math.max(1, now - from);
    const pct = (t) => Math.max(0, Math.min(100, ((t - from) / span) * 100));
    put(host, records.map((r) => {
      const f = r.fault || {};
      const start = num(r.start_ms) ?? now;
      const end = r.end_ms === null || r.end_ms === undefined ? now : Math.min(now, num(r.end_ms) ?? now);
      const active = start <= now && (r.end_ms === null || r.end_ms === undefined || num(r.end_ms) > now);
      const bar = el("span", { class: "fault-bar" });
      bar.style.left = pct(start) + "%";
      bar.style.width = Math.max(0, pct(end) - pct(start)) + "%";
      const text = faultText(f);
      return el("div", {
        class: "fault f-" + str(f.kind, "x").replace(/[^a-z_]/g, ""),
        "data-kind": str(f.kind),
        "data-id": str(r.id),
        "data-active": active ? "1" : "0",
        title: text,
      }, el("span", { class: "fault-what" }, clip(text, 48)), el("span", { class: "fault-track" }, bar));
    }));
  };

  // ----------------------------------------------------------------- boss

  function bossOf(rec) {
    const e = rec && typeof rec.event === "object" && rec.event ? rec.event : rec || {};
    return {
      key: rec.id !== undefined ? "id" + rec.id : `${str(e.node ?? rec.node)}|${e.at_ms ?? rec.at_ms}|${str(e.action)}`,
      action: str(e.action ?? rec.action, "?"),
      node: str(e.node ?? rec.node, "?"),
      at: num(e.at_ms ?? rec.at_ms) ?? Date.now(),
    };
  }

  function addBoss(rec, live) {
    const b = bossOf(rec);
    if (state.bossSeen.has(b.key)) return;
    state.bossSeen.add(b.key);
    state.boss.push(b);
    state.boss.sort((a, c) => c.at - a.at);
    while (state.boss.length > MAX_BOSS) state.bossSeen.delete(state.boss.pop().key);
    if (live) toast(b);
    schedule("boss");
  }

  renderers.boss = function renderBoss() {
    const host = $("boss");
    if (!state.boss.length) {
      put(host, el("li", { class: "empty" }, "The Boss has not fired anyone yet."));
      return;
    }
    put(host,
      state.boss.slice(0, 12).map((b) =>
        el("li", { class: "boss-" + b.action.replace(/[^a-z]/g, "") },
          el("span", { class: "pill act" }, b.action),
          el("span", { class: "boss-node", title: b.node }, clip(b.node, 24)),
          el("span", { class: "when", title: clock(b.at) }, ago(b.at)))),
    );
  };

  function toast(b) {
    const verb = { fired: "fired", rehired: "rehired", hired: "hired", paused: "paused", resumed: "resumed" }[b.action] || b.action;
    const t = el("div", { class: "toast boss-" + b.action.replace(/[^a-z]/g, "") }, el("strong", null, "Boss "), `${verb} ${clip(b.node, 40)}`);
    const host = $("toasts");
    host.prepend(t);
    while (host.children.length > 4) host.lastChild.remove();
    fitToasts();
    setTimeout(() => t.classList.add("gone"), 6000);
    setTimeout(() => t.remove(), 6600);
    const r = rowCache.get(b.node);
    if (r) {
      r.tr.classList.remove("flash");
      void r.tr.offsetWidth;
      r.tr.classList.add("flash");
    }
  }

  // --------------------------------------------------------------- stream

  function streamKey(type, rec) {
    if (rec.id !== undefined && rec.id !== null) return type + ":" + str(rec.id);
    return `${type}:${str(rec.node)}|${rec.at_ms}|${str(rec.path ?? rec.kind)}|${str(rec.status)}`;
  }

  function filterNode() {
    return $("stream-node").value;
  }

  function addStream(type, rec) {
    if (!rec || typeof rec !== "object") return;
    const node = str(rec.node ?? rec.name);
    const f = filterNode();
    if (f && node !== f) return;
    const key = streamKey(type, rec);
    if (state.streamKeys.has(key)) return;
    state.streamKeys.add(key);
    state.stream.push({ type, rec, node, at: num(rec.at_ms) ?? Date.now(), key });
    schedule("stream");
  }

  function trimStream() {
    state.stream.sort((a, b) => b.at - a.at);
    while (state.stream.length > STREAM_BUFFER) state.streamKeys.delete(state.stream.pop().key);
  }

  function describeEvent(rec) {
    const e = rec.event && typeof rec.event === "object" ? rec.event : rec;
    const kind = str(rec.kind ?? e.kind, "event");
    const h = e.height !== undefined ? "#" + str(e.height) + " " : "";
    const hash = e.hash ? short(e.hash, 8) : "";
    switch (kind) {
      case "block_mined":
        return [kind, `mined ${h}${hash}`];
      case "block_accepted":
        return [kind, `accepted ${h}${hash}` + (e.from ? ` from ${clip(e.from, 40)}` : "") + (e.best === false ? " (side branch)" : "")];
      case "block_rejected": {
        const reason = e.reason && typeof e.reason === "object" ? str(e.reason.reason, "?") : str(e.reason, "?");
        return [kind, `rejected ${hash || "block"}: ${reason}` + (e.from ? ` from ${clip(e.from, 40)}` : "")];
      }
      case "block_orphaned":
        return [kind, `orphan ${hash}, waiting for ${short(e.parent, 8)}`];
      case "reorg":
        return [kind, `reorg ${str(e.depth)} deep → #${str(e.height)} ${short(e.new_tip, 8)}`];
      case "peer_added":
        return [kind, `peer + ${clip(e.peer, 50)}`];
      case "peer_dropped":
        return [kind, `peer − ${clip(e.peer, 50)} (${str(e.why)})`];
      case "transfer_submitted":
        return [kind, `transfer ${short(e.txid, 8)} of ${str(e.amount)}`];
      case "transfer_included":
        return [kind, `transfer ${short(e.txid, 8)} in ${h}`];
      case "boss":
        return [kind, `Boss ${str(e.action, "?")} ${clip(e.node ?? rec.node, 30)}`];
      default:
        return [kind, clip(JSON.stringify(e), 120)];
    }
  }

  /** Routine reads (status and peer polls) that drown the interesting rows. */
  function isPoll(r) {
    const route = str(r.route ?? r.path);
    return str(r.method) === "GET" && num(r.status) === 200 && (route === "/status" || route.startsWith("/peers") || route === "/metrics");
  }

  renderers.stream = function renderStream() {
    trimStream();
    if ($("pause").checked) return;
    const showReq = $("show-requests").checked;
    const showPolls = $("show-polls").checked;
    const showEv = $("show-events").checked;
    const rows = [];
    for (const s of state.stream) {
      if (rows.length >= STREAM_ROWS) break;
      if (s.type === "request" ? !showReq : !showEv) continue;
      if (s.type === "request" && !showPolls && isPoll(s.rec)) continue;
      const r = s.rec;
      let kindCell;
      let text;
      let cls;
      if (s.type === "request") {
        const status = num(r.status);
        cls = "req" + (status >= 500 ? " s5" : status >= 400 ? " s4" : "");
        kindCell = el("span", { class: "status" }, str(r.status, "?"));
        const lat = num(r.latency_us);
        text = [
          el("span", { class: "method" }, clip(r.method, 8)),
          " ",
          el("span", { class: "path", title: str(r.path) }, clip(r.path ?? r.route, 90)),
          lat !== null ? el("span", { class: "lat" }, " " + fmtMs(lat / 1000)) : null,
          r.peer ? el("span", { class: "from" }, " ← " + clip(r.peer, 40)) : null,
        ];
      } else {
        const [kind, desc] = describeEvent(r);
        cls = "ev k-" + kind.replace(/[^a-z_]/g, "");
        kindCell = el("span", { class: "kind" }, clip(kind.replace(/_/g, " "), 18));
        text = [desc];
      }
      const node = state.nodes.get(s.node);
      rows.push(
        el("tr", { class: cls },
          el("td", { class: "t" }, clock(s.at)),
          el("td", { class: "n" }, el("span", { class: "node-tag " + (node && !isHonest(node) ? "bad" : "honest"), title: s.node }, clip(s.node, 16))),
          el("td", { class: "k" }, kindCell),
          el("td", { class: "d" }, text)),
      );
    }
    if (!rows.length) rows.push(el("tr", null, el("td", { class: "empty", colspan: 4 }, "Nothing yet: requests and events show up here as nodes report them.")));
    put($("stream"), ...rows);
  };

  // -------------------------------------------------------------- network

  async function loadNodes() {
    const v = await getJSON("/api/nodes");
    const rows = items(v, "nodes");
    const names = new Set();
    for (const r of rows) {
      upsertNode(r);
      names.add(str(r.name));
    }
    for (const k of [...state.nodes.keys()]) if (!names.has(k)) state.nodes.delete(k);
    schedule("nodes", "consensus");
  }

  async function loadConsensus() {
    state.consensus = await getJSON("/api/consensus");
    state.consensusAt = Date.now();
    schedule("consensus");
  }

  async function loadBlocks() {
    const v = await getJSON("/api/blocks");
    state.blocks = { blocks: items(v, "blocks"), tips: (v && v.tips) || {}, window: (v && v.window) || null };
    schedule("tree");
  }

  async function loadPropagation() {
    state.propagation = await getJSON("/api/propagation");
    schedule("propagation");
  }

  async function loadForks() {
    state.forks = await getJSON("/api/forks");
    schedule("forks");
  }

  async function loadRejections() {
    const v = await getJSON("/api/rejections");
    state.rejections = v && typeof v === "object" && !Array.isArray(v) ? (v.reasons && typeof v.reasons === "object" ? v.reasons : v) : {};
    schedule("rejections");
  }

  async function loadBoss() {
    const v = await getJSON("/api/events?kind=boss&limit=" + MAX_BOSS);
    for (const r of items(v, "events")) addBoss(r, false);
    schedule("boss");
  }

  async function loadStream() {
    const f = filterNode();
    const q = (f ? "node=" + encodeURIComponent(f) + "&" : "") + "limit=100";
    const [reqs, evs] = await Promise.all([getJSON("/api/requests?" + q), getJSON("/api/events?" + q)]);
    for (const r of items(reqs, "requests")) addStream("request", r);
    for (const e of items(evs, "events")) addStream("event", e);
    schedule("stream");
  }

  async function loadConfig() {
    const v = await getJSON("/api/config");
    const url = v && typeof v.control_url === "string" && /^https?:\/\//.test(v.control_url) ? v.control_url.replace(/\/+$/, "") : null;
    if (url !== state.controlUrl) {
      state.controlUrl = url;
      $("controls").hidden = !url;
      for (const r of rowCache.values()) r.sig = "";
      schedule("nodes");
    }
  }

  async function control(path, body) {
    const r = await fetch(state.controlUrl + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!r.ok) {
      let why = "HTTP " + r.status;
      try {
        const j = await r.json();
        why = str(j.error ?? j.reason, why);
      } catch (_) {
        /* not JSON */
      }
      throw new Error(why);
    }
  }

  function fire(name, button) {
    if (button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      button.textContent = "sure?";
      setTimeout(() => {
        button.dataset.armed = "";
        button.textContent = "fire";
      }, 3000);
      return;
    }
    button.disabled = true;
    control("/fire", { node: name })
      .then(() => note(`asked to fire ${clip(name, 30)}`))
      .catch((e) => note(`could not fire ${clip(name, 30)}: ${e.message}`, true))
      .finally(() => setTimeout(loadNodes, 500));
  }

  function hire() {
    const count = Math.max(1, Math.min(50, Number($("hire-count").value) || 1));
    const behaviour = $("hire-behaviour").value.trim() || null;
    const b = $("hire");
    b.disabled = true;
    control("/hire", { count, behaviour })
      .then(() => note(`asked to hire ${count} ${behaviour ?? "honest"} node${count === 1 ? "" : "s"}`))
      .catch((e) => note(`could not hire: ${e.message}`, true))
      .finally(() => {
        b.disabled = false;
      });
  }

  /**
   * Toasts stack up from the bottom right and never reach the header's
   * figures: the stack is cut to the room below the verdict banner.
   */
  function fitToasts() {
    const host = $("toasts");
    const bottom = Math.max(0, $("verdict").getBoundingClientRect().bottom);
    host.style.maxHeight = Math.max(0, window.innerHeight - bottom - 24) + "px";
    // The oldest toast is on top: drop it while it would reach the banner.
    while (host.lastElementChild && host.lastElementChild.getBoundingClientRect().top < bottom + 8) {
      host.lastElementChild.remove();
    }
  }

  function note(text, bad) {
    const t = el("div", { class: "toast " + (bad ? "boss-fired" : "info") }, text);
    $("toasts").prepend(t);
    fitToasts();
    setTimeout(() => t.remove(), 5000);
  }

  let source = null;
  function connect() {
    if (typeof EventSource === "undefined") return;
    source = new EventSource("/api/stream");
    const parse = (fn) => (m) => {
      let v;
      try {
        v = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      state.lastOk = Date.now();
      fn(v);
    };
    source.onopen = () => {
      state.live = true;
      renderLink();
    };
    source.onerror = () => {
      state.live = false;
      renderLink();
    };
    source.addEventListener("node", parse((v) => {
      upsertNode(v);
      schedule("nodes", "consensus");
    }));
    source.addEventListener("consensus", parse((v) => {
      state.consensus = v;
      state.consensusAt = Date.now();
      schedule("consensus");
    }));
    source.addEventListener("request", parse((v) => addStream("request", v)));
    source.addEventListener("event", parse((v) => {
      addStream("event", v);
      const kind = str(v.kind ?? (v.event && v.event.kind));
      if (kind.startsWith("block_") || kind === "reorg") {
        soon("blocks", loadBlocks, 400);
        soon("propagation", loadPropagation, 800);
        soon("forks", loadForks, 1200);
      }
      if (kind === "block_rejected") soon("rejections", loadRejections, 400);
      if (kind === "boss") addBoss(v, true);
    }));
    source.addEventListener("fault", parse(() => soon("faults", loadFaults, 200)));
    source.addEventListener("boss", parse((v) => {
      addBoss(v, true);
      addStream("event", Object.assign({ kind: "boss" }, v));
      soon("nodes", loadNodes, 200);
    }));
  }

  function renderLink() {
    const dot = $("link-dot");
    const text = $("link-text");
    if (state.replay) {
      const i = state.replay.info || {};
      dot.className = "dot on";
      text.textContent = `replay · ${clip(str(i.scenario, "?"), 30)} · seed ${str(i.seed, "?")}` + (i.complete === false ? " · log cut short" : "");
      return;
    }
    if (state.failing && Date.now() - state.lastOk > STALE_MS) {
      dot.className = "dot off";
      text.textContent = "Sauron unreachable · retrying";
    } else if (state.live) {
      dot.className = "dot on";
      text.textContent = "live";
    } else {
      dot.className = "dot poll";
      text.textContent = "polling every 2 s";
    }
  }

  function every(ms, fn) {
    const run = () => fn().catch(() => {}).finally(() => setTimeout(run, ms));
    run();
  }

  // --------------------------------------------------------------- replay

  const REPLAY_TICK_MS = 250;
  let replayLoading = false;
  let replayTimer = null;
  let scrubTimer = null;

  function describeFaults(f) {
    if (!f || typeof f !== "object") return "";
    const parts = [];
    const names = (v) => (Array.isArray(v) ? v : Object.keys(v || {})).map((n) => clip(n, 20));
    if (Array.isArray(f.partition)) parts.push("partition " + f.partition.map((g) => (Array.isArray(g) ? g.length : 0) + " nodes").join(" | "));
    if (names(f.isolated).length) parts.push("isolated " + names(f.isolated).join(", "));
    if (names(f.crashed).length) parts.push("crashed " + names(f.crashed).join(", "));
    if (names(f.paused).length) parts.push("paused " + names(f.paused).join(", "));
    if (names(f.bridge).length) parts.push("bridge " + names(f.bridge).join(", "));
    if (names(f.slowed).length) parts.push("slowed " + names(f.slowed).join(", "));
    if (names(f.lossy).length) parts.push("lossy " + names(f.lossy).join(", "));
    const skew = Object.entries(f.clock_skew || {}).filter(([, v]) => v);
    if (skew.length) parts.push("clock skew " + skew.map(([n, v]) => `${clip(n, 20)} ${v} ms`).join(", "));
    return parts.length ? "faults: " + parts.join(" · ") : "no fault";
  }

  async function loadReplay() {
    const v = await getJSON("/api/replay");
    state.replay.info = v;
    const faults = $("replay-faults");
    faults.textContent = describeFaults(v.faults);
    faults.setAttribute("data-faults", JSON.stringify(v.faults || {}));
    renderLink();
  }

  function showPosition() {
    const r = state.replay;
    $("replay-pos").value = String(r.at);
    $("replay-time").textContent = `t = ${virtual(r.at)} of ${virtual(r.end)}`;
    $("replay").setAttribute("data-at", String(r.at));
  }

  /** Everything the page shows, again, at the scrubber's position. */
  async function reloadReplay() {
    if (replayLoading) return;
    replayLoading = true;
    state.stream = [];
    state.streamKeys.clear();
    state.boss = [];
    state.bossSeen.clear();
    try {
      await Promise.allSettled([
        loadNodes(), loadConsensus(), loadBlocks(), loadPropagation(), loadForks(),
        loadRejections(), loadBoss(), loadStream(), loadReplay(), loadFaults(),
      ]);
    } finally {
      replayLoading = false;
      schedule("stream", "boss");
    }
  }

  function seek(at) {
    const r = state.replay;
    r.at = Math.max(0, Math.min(r.end, Math.round(at)));
    showPosition();
    clearTimeout(scrubTimer);
    scrubTimer = setTimeout(() => reloadReplay().catch(() => {}), 120);
  }

  function setPlaying(on) {
    const r = state.replay;
    r.playing = on;
    $("replay-play").textContent = on ? "❚❚" : "▶";
    $("replay-play").setAttribute("data-playing", on ? "1" : "0");
    clearInterval(replayTimer);
    replayTimer = null;
    if (!on) return;
    if (r.at >= r.end) r.at = 0;
    replayTimer = setInterval(() => {
      r.at = Math.min(r.end, r.at + REPLAY_TICK_MS * r.speed);
      showPosition();
      reloadReplay().catch(() => {});
      if (r.at >= r.end) setPlaying(false);
    }, REPLAY_TICK_MS);
  }

  async function startReplay() {
    state.replay = { at: 0, end: 0, speed: 10, playing: false, info: null };
    const v = await getJSON("/api/replay");
    state.replay.info = v;
    state.replay.end = Math.max(0, num(v.end_ms) ?? 0);
    $("replay").hidden = false;
    $("replay-pos").max = String(state.replay.end);
    $("replay-pos").addEventListener("input", (e) => seek(Number(e.target.value)));
    $("replay-speed").addEventListener("change", (e) => {
      state.replay.speed = Math.max(1, Number(e.target.value) || 1);
    });
    $("replay-play").addEventListener("click", () => setPlaying(!state.replay.playing));
    $("nodes-empty").textContent = "The log names no node.";
    showPosition();
    await loadReplay();
  }

  // ----------------------------------------------------------------- boot

  $("hire").addEventListener("click", hire);
  $("stream-node").addEventListener("change", () => {
    state.stream = [];
    state.streamKeys.clear();
    schedule("stream");
    loadStream().catch(() => {});
  });
  for (const id of ["show-requests", "show-polls", "show-events", "pause"]) $(id).addEventListener("change", () => schedule("stream"));
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      fitToasts();
      schedule("tree", "propagation", "forks");
    }, 150);
  });

  function boot() {
    schedule("nodes", "consensus", "tree", "propagation", "forks", "rejections", "boss", "stream", "faults");
    every(POLL_FAST_MS, () => Promise.all([loadNodes(), loadConsensus()]));
    if (!state.replay) every(POLL_FAST_MS, loadFaults);
    every(POLL_SLOW_MS, () => Promise.allSettled([loadBlocks(), loadPropagation(), loadForks(), loadRejections()]));
    every(10000, () => Promise.allSettled([loadConfig(), loadBoss()]));
    // The stream polls only while the live connection is down (always, in
    // a replay: nothing is live).
    every(POLL_FAST_MS, () => (state.live && state.stream.length ? Promise.resolve() : loadStream()));
    setInterval(tickSeen, 1000);
    if (state.replay) reloadReplay().catch(() => {});
    else connect();
  }

  // A replay is told by /api/config; a live Sauron starts as it always did.
  getJSON("/api/config")
    .then((v) => (v && v.replay === true ? startReplay() : null))
    .catch(() => {})
    .finally(boot);
})();
