// rillet viewer: draws a runnable's graph ({root, nodes: [{id, label}], edges: [[from, to]]},
// root being the runnable's run name) as SVG,
// left to right, one column per longest-path layer (the rows of `draw_ascii`). Nodes are
// looked up by label, so the page can light up the node whose run is running or failed.
"use strict";

window.RilletGraph = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const BOX_H = 24, ROW_GAP = 10, COL_GAP = 30, PAD = 4, CHAR_W = 6.6;

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  // Longest distance from a source, by relaxation: graphs here are small DAGs, and a cycle
  // (which get_graph never draws) stops after |nodes| rounds instead of looping.
  function layers(nodes, edges) {
    const depth = new Map(nodes.map((n) => [n.id, 0]));
    for (let round = 0; round < nodes.length; round++) {
      let changed = false;
      for (const [a, b] of edges) {
        if (depth.has(a) && depth.has(b) && depth.get(b) < depth.get(a) + 1) {
          depth.set(b, depth.get(a) + 1);
          changed = true;
        }
      }
      if (!changed) break;
    }
    const columns = [];
    for (const node of nodes) {
      const d = depth.get(node.id);
      (columns[d] = columns[d] || []).push(node);
    }
    return columns.filter(Boolean);
  }

  // Draw `graph` under a heading `name` into `container`; returns {setState(label, state)}.
  function draw(container, name, graph) {
    const box = document.createElement("div");
    box.className = "graph";
    box.dataset.graph = name;
    const title = document.createElement("h2");
    title.textContent = name;
    box.appendChild(title);
    const columns = layers(graph.nodes, graph.edges);
    const place = new Map();
    let x = PAD, height = 0;
    for (const column of columns) {
      const width = Math.round(Math.max(...column.map((n) => n.label.length * CHAR_W + 16), 56));
      column.forEach((node, i) => {
        place.set(node.id, {x, y: PAD + i * (BOX_H + ROW_GAP), w: width, node});
      });
      height = Math.max(height, column.length * (BOX_H + ROW_GAP) - ROW_GAP);
      x += width + COL_GAP;
    }
    const svg = el("svg", {width: Math.max(x - COL_GAP + PAD, 10), height: height + 2 * PAD,
                           role: "img", "aria-label": `graph of ${name}`});
    const defs = el("defs", {}, svg);
    const marker = el("marker", {id: `arrow-${name}`, viewBox: "0 0 8 8", refX: 8, refY: 4,
                                 markerWidth: 7, markerHeight: 7, orient: "auto"}, defs);
    el("path", {d: "M0,0 L8,4 L0,8 z", class: "arrow"}, marker);
    for (const [a, b] of graph.edges) {
      const from = place.get(a), to = place.get(b);
      if (!from || !to) continue;
      const x1 = from.x + from.w, y1 = from.y + BOX_H / 2, x2 = to.x, y2 = to.y + BOX_H / 2;
      const bend = Math.max((x2 - x1) / 2, 16);
      el("path", {class: "edge", "marker-end": `url(#arrow-${name})`,
                  d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`}, svg);
    }
    const byLabel = new Map();
    for (const {x: nx, y, w, node} of place.values()) {
      const g = el("g", {class: "node", "data-label": node.label}, svg);
      el("rect", {x: nx, y, width: w, height: BOX_H, rx: 4}, g);
      const text = el("text", {x: nx + w / 2, y: y + BOX_H / 2 + 1}, g);
      text.textContent = node.label;
      if (!byLabel.has(node.label)) byLabel.set(node.label, []);
      byLabel.get(node.label).push(g);
    }
    box.appendChild(svg);
    container.appendChild(box);
    return {
      root: graph.root || null,
      labels: () => byLabel.keys(),
      setState(label, state) {
        for (const g of byLabel.get(label) || []) g.setAttribute("class", state ? `node ${state}` : "node");
      },
    };
  }

  return {draw, layers};
})();
