// rillet viewer: runs as trees of child runs on a timeline, their streamed output growing live.
//
// Reads config.json, draws the graphs, then reads the event stream it names (server-sent
// events of astream_events v2 dicts). Events only update plain objects; the DOM is updated
// once per animation frame, for the runs that changed, within a time budget, so thousands of
// events per second never freeze the page. Everything kept is bounded (LIMITS).
"use strict";

(() => {
  const {LIMITS, plain, preview} = window.RilletModel;
  const FRAME_BUDGET_MS = 8;  // DOM work per animation frame; the rest waits for the next frame
  const $ = (id) => document.getElementById(id);
  const state = {
    dirty: new Set(), follow: new Set(), scheduled: false, dropped: 0, recent: 0, rate: 0,
    mode: "live", ended: false, filters: {name: "", tag: "", type: "", errors: false},
    graphs: [], token: sessionStorage.getItem("rillet-token") || "",
  };
  const model = window.RilletModel.create({
    onChange: touch,
    onRemove: (root) => { if (root.el) root.el.section.remove(); },
  });

  function apply(ev, t) {
    state.recent += 1;
    model.apply(ev, t);
  }

  // ---- rendering: once per frame ---------------------------------------------------------------
  function touch(run) {
    state.dirty.add(run);
    if (!state.scheduled) {
      state.scheduled = true;
      requestAnimationFrame(frame);
    }
  }

  function frame() {
    state.scheduled = false;
    const started = performance.now();
    for (const run of state.dirty) {
      state.dirty.delete(run);
      if (!run.gone) render(run);
      if (performance.now() - started > FRAME_BUDGET_MS && state.dirty.size) {
        state.scheduled = true;
        requestAnimationFrame(frame);
        break;
      }
    }
    // Scrolling reads layout: done after every write of the frame, so it lays out once.
    for (const out of state.follow) out.scrollTop = out.scrollHeight;
    state.follow.clear();
    if (model.namesChanged) paintGraphs();
    $("empty").hidden = model.roots.length > 0;
  }

  function make(tag, className, parent) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (parent) parent.appendChild(node);
    return node;
  }

  function build(run) {
    const node = make("div", "run");
    node.dataset.runId = run.id;
    const row = make("div", "row", node);
    const label = make("span", "label", row);
    label.style.paddingLeft = `${run.depth * 16}px`;
    const kind = make("span", "kind", label);
    const name = make("span", "name", label);
    const track = make("span", "track", row);
    const bar = make("span", "bar-fill", track);
    const dur = make("span", "dur", row);
    const err = make("div", "err", node);
    const out = make("pre", "out", node);
    const custom = make("div", "custom", node);
    for (const part of [err, out, custom]) part.style.marginLeft = `${run.depth * 16 + 4}px`;
    const children = make("div", "children", node);
    row.tabIndex = 0;
    row.addEventListener("click", () => toggleDetails(run));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggleDetails(run); }
    });
    run.el = {node, kind, name, bar, dur, err, out, custom, children, section: null, head: null};
    if (run.parent) {
      if (!run.parent.el) build(run.parent);
      run.parent.el.children.appendChild(node);
    } else {
      const section = make("section", "root");
      const head = make("div", "root-head", section);
      const when = make("span", "when", head);
      when.textContent = new Date(run.start).toLocaleTimeString();
      make("span", "state", head);
      make("span", "rid", head).textContent = run.id.slice(0, 8);
      make("span", "tags", head);
      make("span", "more", head);
      section.appendChild(node);
      run.el.section = section;
      run.el.head = head;
      $("runs").prepend(section);  // newest first
      if (filtering()) section.classList.add("hidden");
    }
    if (filtering()) node.classList.add("hidden");
  }

  function render(run) {
    if (!run.el) build(run);
    const e = run.el;
    e.node.className = `run kind-${run.kind} ${run.status}` +
      (e.node.classList.contains("hidden") ? " hidden" : "");
    e.kind.textContent = run.kind;
    e.name.textContent = run.name;
    e.err.textContent = run.error;
    let shown = "";
    if (run.text) {
      shown = (run.cut ? `… (${run.cut} earlier characters not kept)\n` : "") + run.text;
    } else if (run.last !== undefined) {
      shown = preview(run.last);
    } else if (run.status === "ok") {
      shown = preview(run.output);
    }
    if (shown !== run.shownText) {
      e.out.textContent = shown;
      run.shownText = shown;
      if (run.text && run.status === "running") state.follow.add(e.out);
    }
    e.custom.textContent = run.customs.join(" · ");
    if (e.section) {
      const head = e.head.children;
      head[1].textContent = run.status;
      head[1].className = `state ${run.status}`;
      head[3].textContent = run.tags.length ? `tags: ${run.tags.join(", ")}` : "";
      head[4].textContent = run.overflow ? `+${run.overflow} events of child runs not shown` : "";
      e.section.classList.toggle("error", run.status === "error");
      e.section.dataset.name = run.name;
    }
    if (filtering() && matches(run)) reveal(run);
    place(run.root, run.root === run ? allRuns(run) : [run]);
  }

  function allRuns(root) {
    const out = [];
    const walk = (run) => { out.push(run); run.children.forEach(walk); };
    walk(root);
    return out;
  }

  // Position the timeline bars of `runs` within their root's span (up to now while it runs).
  function place(root, runs) {
    const now = state.mode === "live" ? Date.now() : root.start;
    let last = root.end !== null ? root.end : now;
    if (root.end === null) for (const run of runs) last = Math.max(last, run.end || run.start);
    const span = Math.max(last - root.start, 1);
    for (const run of runs) {
      if (!run.el) continue;
      const end = run.end !== null ? run.end : Math.max(now, run.start);
      run.el.bar.style.left = `${(100 * (run.start - root.start)) / span}%`;
      run.el.bar.style.width = `${(100 * Math.max(end - run.start, 0)) / span}%`;
      run.el.dur.textContent = run.end !== null ? duration(run.end - run.start)
        : state.mode === "live" ? duration(now - run.start) : "…";
    }
  }

  function duration(ms) {
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  }

  function toggleDetails(run) {
    const old = run.el.node.querySelector(":scope > .details");
    if (old) { old.remove(); return; }
    const details = make("pre", "details");
    details.style.marginLeft = `${run.depth * 16 + 4}px`;
    const facts = {run_id: run.id, kind: run.kind, tags: run.tags, metadata: run.metadata,
                   chunks: run.chunks, input: plain(run.input), output: plain(run.output)};
    const text = JSON.stringify(facts, null, 2);
    details.textContent = text.length > 20000 ? text.slice(0, 20000) + "\n…" : text;
    run.el.node.insertBefore(details, run.el.children);
  }

  function paintGraphs() {
    model.namesChanged = false;
    for (const graph of state.graphs) {
      for (const label of graph.labels()) {
        const entry = model.names.get(`${graph.root || "*"}\u0000${label}`);
        graph.setState(label, !entry ? "" : entry.running ? "running" : entry.last || "");
      }
    }
  }

  // ---- filters ----------------------------------------------------------------------------------
  function filtering() {
    const f = state.filters;
    return Boolean(f.name || f.tag || f.type || f.errors);
  }

  function matches(run) {
    const f = state.filters;
    return (!f.name || run.name.toLowerCase().includes(f.name)) &&
      (!f.tag || run.tags.some((tag) => String(tag).toLowerCase().includes(f.tag))) &&
      (!f.type || run.kind === f.type) && (!f.errors || run.status === "error");
  }

  // Show a matching run with its ancestors (its place in the tree) and its root's section.
  function reveal(run) {
    for (let r = run; r; r = r.parent) {
      if (r.el) r.el.node.classList.remove("hidden");
      if (r.el && r.el.section) r.el.section.classList.remove("hidden");
    }
  }

  function applyFilters() {
    const f = state.filters;
    f.name = $("f-name").value.trim().toLowerCase();
    f.tag = $("f-tag").value.trim().toLowerCase();
    f.type = $("f-type").value;
    f.errors = $("f-errors").checked;
    const active = filtering();
    const mark = (run) => {
      let shown = !active || matches(run);
      for (const child of run.children) shown = mark(child) || shown;
      if (run.el) run.el.node.classList.toggle("hidden", !shown);
      return shown;
    };
    for (const root of model.roots) {
      const shown = mark(root);
      if (root.el) root.el.section.classList.toggle("hidden", !shown);
    }
  }

  // ---- the event source ---------------------------------------------------------------------------
  class AuthError extends Error {}

  function headers() {
    return state.token ? {authorization: `Bearer ${state.token}`} : {};
  }

  async function getJSON(url) {
    const reply = await fetch(url, {headers: headers(), cache: "no-store"});
    if (reply.status === 401) throw new AuthError("this server needs a bearer token");
    if (!reply.ok) throw new Error(`${url}: HTTP ${reply.status}`);
    return reply.json();
  }

  // Read one SSE response to its end, calling onFrame(event, data) per frame.
  async function readStream(url, onFrame) {
    const reply = await fetch(url, {headers: headers(), cache: "no-store"});
    if (reply.status === 401) throw new AuthError("this server needs a bearer token");
    if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
    const reader = reply.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, {stream: true});
      let start = 0, end;
      while ((end = buffer.indexOf("\n\n", start)) >= 0) {
        let event = "message", data = "";
        for (const line of buffer.substring(start, end).split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).trimStart();
        }
        onFrame(event, data);
        start = end + 2;
      }
      if (start) buffer = buffer.substring(start);
    }
  }

  function onFrame(event, data) {
    try {
      handleFrame(event, data);
    } catch (error) {  // one malformed frame must not end the stream (and replay it)
      state.problem = `a frame could not be read: ${error.message}`;
    }
  }

  function handleFrame(event, data) {
    if (event === "data") {
      const ev = JSON.parse(data);
      apply(ev, typeof ev.time === "number" && ev.time > 0 ? ev.time * 1000 : Date.now());
    } else if (event === "dropped") {
      state.dropped = JSON.parse(data).dropped;
    } else if (event === "metadata") {
      state.connected = true;
      setStatus(state.mode === "live" ? "live" : "loading…", state.mode === "live" ? "live" : "");
    } else if (event === "end") {
      state.ended = true;
    } else if (event === "error") {
      const problem = JSON.parse(data);
      state.problem = `${problem.type}: ${problem.message}`;
    }
  }

  function setStatus(text, kind) {
    const node = $("status");
    node.textContent = text;
    node.className = `status ${kind || ""}`;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function follow(url) {
    let delay = 1000;
    for (;;) {
      state.connected = false;
      state.ended = false;
      try {
        await readStream(url, onFrame);
        if (state.mode === "log") {
          setStatus(state.problem || `loaded ${model.events} events`,
                    state.problem ? "error" : "done");
          return;
        }
        setStatus(state.ended ? "the server stopped; reconnecting…" : "disconnected", "warn");
      } catch (error) {
        if (error instanceof AuthError) { askToken(); return; }
        setStatus(`disconnected (${error.message}); retrying`, "warn");
      }
      if (state.connected) delay = 1000;
      await sleep(delay);
      delay = Math.min(delay * 2, 10000);
    }
  }

  function askToken() {
    setStatus("needs a bearer token", "error");
    $("auth").hidden = false;
    $("token").focus();
  }

  function tick() {
    state.rate = state.recent * 4;
    state.recent = 0;
    $("counts").textContent = `${model.runs.size} runs · ${model.events} events · ` +
      `${state.rate} ev/s` + (state.dropped ? ` · ${state.dropped} dropped` : "");
    if (state.mode === "live") {
      for (const root of model.roots) if (root.end === null && root.el) place(root, allRuns(root));
    }
  }

  async function start() {
    const hash = new URLSearchParams(location.hash.slice(1));
    if (hash.get("token")) state.token = hash.get("token");
    let config;
    try {
      config = await getJSON("config.json");
    } catch (error) {
      if (error instanceof AuthError) return askToken();
      return setStatus(`cannot load config.json: ${error.message}`, "error");
    }
    state.mode = config.mode;
    $("title").textContent = config.title || "";
    document.title = `rillet viewer · ${config.title || ""}`;
    $("graphs").replaceChildren();
    state.graphs = Object.entries(config.graphs || {}).map(
      ([name, graph]) => window.RilletGraph.draw($("graphs"), name, graph));
    if (!state.ticking) state.ticking = setInterval(tick, 250);
    follow(config.events);
  }

  for (const id of ["f-name", "f-tag"]) $(id).addEventListener("input", applyFilters);
  for (const id of ["f-type", "f-errors"]) $(id).addEventListener("change", applyFilters);
  $("clear").addEventListener("click", () => {
    model.clear();
    paintGraphs();
    $("empty").hidden = false;
  });
  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("rillet-token", state.token);
    $("auth").hidden = true;
    start();
  });

  // For benchmarks and debugging: feed events straight in, read the counters.
  window.rilletViewer = {
    LIMITS,
    ingest(events) { for (const ev of events) apply(ev, ev.time ? ev.time * 1000 : Date.now()); },
    stats: () => ({events: model.events, runs: model.runs.size, roots: model.roots.length,
                   pending: state.dirty.size, dropped: state.dropped, text: model.text}),
  };
  start();
})();
