// rillet viewer: the run model. Events (astream_events v2 dicts) update plain run objects;
// nothing here touches the DOM: the page renders the runs the model says changed. Everything
// kept is bounded (LIMITS), the oldest finished root runs going first.
"use strict";

window.RilletModel = (() => {
  const LIMITS = Object.freeze({
    roots: 200,            // root runs kept (the oldest finished ones go first)
    runsPerRoot: 5000,     // child runs kept per root run; later ones are counted, not shown
    textPerRun: 16384,     // characters of streamed output kept per run (the last ones)
    totalText: 8000000,    // characters of streamed output kept in all
    customPerRun: 20,      // custom events listed per run (the last ones)
  });

  // ---- values as text ---------------------------------------------------------------------
  // The text a chunk contributes (a string, a message's content), or null for other values
  // (e.g. a JSON parser's partial objects, shown as the latest value instead).
  function textOf(value) {
    if (typeof value === "string") return value;
    if (value && typeof value === "object") {
      if (typeof value.content === "string") return value.content;
      if (Array.isArray(value.content)) {
        return value.content.map((b) => (typeof b === "string" ? b : (b && b.text) || "")).join("");
      }
    }
    return null;
  }

  // A value without the wire's type tags and empty fields, for JSON previews.
  function plain(value, depth = 0) {
    if (value === null || typeof value !== "object") return value;
    if (depth > 6) return "…";
    if (Array.isArray(value)) {
      const items = value.slice(0, 50).map((v) => plain(v, depth + 1));
      if (value.length > 50) items.push(`… ${value.length - 50} more`);
      return items;
    }
    const tag = value.__rillet__;
    if (tag === "ErrorInfo") return `${value.type}: ${value.message}`;
    if (tag === "tuple") return plain(value.items, depth);
    const out = {};
    if (tag) out.type = tag;
    for (const [key, item] of Object.entries(value)) {
      if (key === "__rillet__" || item === null || item === "" ||
          (typeof item === "object" && Object.keys(item).length === 0)) continue;
      out[key] = plain(item, depth + 1);
    }
    return out;
  }

  function preview(value, limit = 400) {
    if (value === undefined) return "";
    let text = textOf(value);
    if (text === null && value && Array.isArray(value.messages)) {  // a prompt value
      text = value.messages.map((m) => `${(m && m.type) || "message"}: ${textOf(m) ?? ""}`)
        .join("\n");
    }
    const shown = text !== null ? text : JSON.stringify(plain(value));
    return shown.length > limit ? shown.slice(0, limit - 1) + "…" : shown;
  }

  function errorText(error) {
    if (error && typeof error === "object" && error.type) return `${error.type}: ${error.message}`;
    return typeof error === "string" ? error : JSON.stringify(plain(error));
  }

  // ---- the model ---------------------------------------------------------------------------
  // A model calling onChange(run) for each run an event changed, onRemove(root) for each root
  // run it forgets (with its tree).
  function create({onChange, onRemove}) {
    const m = {runs: new Map(), roots: [], text: 0, events: 0, names: new Map(),
               namesChanged: false};

    function newRun(id, name, kind, parent, t) {
      const run = {
        id, name, kind, parent, root: null, depth: parent ? parent.depth + 1 : 0, start: t,
        end: null, status: "running", tags: [], metadata: {}, text: "", cut: 0, last: undefined,
        chunks: 0, input: undefined, output: undefined, error: "", customs: [], children: [],
        seen: false, count: 1, overflow: 0,
        el: null, shownText: null,  // the page's: its elements and the text they show
      };
      run.root = parent ? parent.root : run;
      m.runs.set(id, run);
      if (parent) {
        parent.children.push(run);
        run.root.count += 1;
      } else {
        m.roots.push(run);
      }
      return run;
    }

    // The run of an event, made (with any ancestor never seen, e.g. dropped) on first sight;
    // null when its root already holds LIMITS.runsPerRoot runs.
    function runOf(ev, kind, t) {
      let run = m.runs.get(ev.run_id);
      if (run) return run;
      const parents = ev.parent_ids || [];
      let parent = null;
      for (const id of parents) {
        let ancestor = m.runs.get(id);
        if (!ancestor) {
          if (parent && parent.root.count >= LIMITS.runsPerRoot) return overflow(parent.root);
          ancestor = newRun(id, "(not seen)", "chain", parent, t);
        }
        parent = ancestor;
      }
      if (parent && parent.root.count >= LIMITS.runsPerRoot) return overflow(parent.root);
      run = newRun(ev.run_id, ev.name, kind, parent, t);
      evict();
      return run;
    }

    function overflow(root) {
      root.overflow += 1;
      onChange(root);
      return null;
    }

    function setText(run, text) {
      m.text += text.length - run.text.length;
      run.text = text;
    }

    function apply(ev, t) {
      m.events += 1;
      const event = ev.event || "";
      if (event === "on_custom_event") {
        const run = m.runs.get(ev.run_id);
        if (run) {
          run.customs.push(`${ev.name}: ${preview(ev.data, 120)}`);
          if (run.customs.length > LIMITS.customPerRun) run.customs.shift();
          onChange(run);
        }
        return;
      }
      const cut = event.lastIndexOf("_");
      const phase = event.slice(cut + 1), kind = event.slice(3, cut);
      const run = runOf(ev, kind, t);
      if (!run || run.gone) return;  // over a limit, or its root was just forgotten
      const data = ev.data || {};
      if (!run.seen) {
        run.seen = true;
        run.name = ev.name;
        run.kind = kind;
        run.tags = ev.tags || [];
        run.metadata = ev.metadata || {};
        nameState(run, +1, null);
      }
      if (phase === "start") {
        run.start = t;
        run.input = data.input;
      } else if (phase === "stream") {
        run.chunks += 1;
        const text = textOf(data.chunk);
        if (text === null) {
          run.last = data.chunk;
        } else {
          let kept = run.text + text;
          // Cut with slack (to the limit when 1.5 times over) so that cutting stays rare.
          if (kept.length > LIMITS.textPerRun * 1.5) {
            run.cut += kept.length - LIMITS.textPerRun;
            kept = kept.slice(kept.length - LIMITS.textPerRun);
          }
          setText(run, kept);
          if (m.text > LIMITS.totalText) evict();
        }
      } else if (phase === "end" || phase === "error") {
        if (run.end === null) nameState(run, -1, phase === "error" ? "error" : "ok");
        run.end = t;
        if ("input" in data && run.input === undefined) run.input = data.input;
        if (phase === "end") {
          run.output = data.output;
          if (run.status !== "error") run.status = "ok";
        } else {
          run.status = "error";
          run.error = errorText(data.error);
        }
        if (run.root !== run) onChange(run.root);  // the root's timeline spans its children
      }
      onChange(run);
    }

    // Forget the oldest root runs (finished ones first) while over a limit.
    function evict() {
      while (m.roots.length > LIMITS.roots || m.text > LIMITS.totalText) {
        if (m.roots.length <= 1) return;
        const done = m.roots.findIndex((r) => r.end !== null);
        const [root] = m.roots.splice(done < 0 ? 0 : done, 1);
        forget(root);
        onRemove(root);
      }
    }

    function forget(run) {
      m.runs.delete(run.id);
      m.text -= run.text.length;
      run.gone = true;
      if (run.end === null && run.seen) nameState(run, -1, null);
      for (const child of run.children) forget(child);
    }

    // How many runs of each name are running, and how the last one ended: the graphs' colours.
    // Counted per root run name (a graph knows its runnable's name) and over all roots ("*").
    function nameState(run, delta, ended) {
      for (const key of [`${run.root.name}\u0000${run.name}`, `*\u0000${run.name}`]) {
        const entry = m.names.get(key) || {running: 0, last: null};
        entry.running = Math.max(entry.running + delta, 0);
        if (ended) entry.last = ended;
        m.names.set(key, entry);
      }
      m.namesChanged = true;
    }

    m.apply = apply;
    m.clear = () => {
      for (const root of m.roots.splice(0)) { forget(root); onRemove(root); }
      m.names.clear();
      m.namesChanged = true;
    };
    return m;
  }

  return {LIMITS, create, plain, preview, textOf};
})();
