// tconv explain --html: draws the data tconv wrote into this page and looks things up in it.
// Nothing here computes a convolution: every value, product and incidence comes from the
// engine (tconv/explain/page/builder.py); this script lays out cells, indexes the incidence by cell and
// highlights what a cell is made of.
(function () {
  "use strict";

  var boot = JSON.parse(document.getElementById("tconv-data").textContent);
  var D = null;                 // the page data of the spec drawn
  var state = { step: 0, timer: null, ci: 0, co: 0, direction: "transposed", numbers: true,
                hover: null, focus: null, keyboard: false };
  var cells = new Map();        // key -> [elements]
  var marked = [];              // elements carrying a highlight class
  var index = null;             // key -> term indices, per column of the terms
  var PLAY_MS = 4000;
  var MAX_LISTED = 60;

  // -- small helpers -------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) return;
        if (k === "text") node.textContent = attrs[k];
        else if (k === "class") node.className = attrs[k];
        else node.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
      });
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function $(id) { return document.getElementById(id); }

  function fmt(v) {
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return String(v);
    var s = v.toFixed(2);
    return s === "-0.00" ? "0.00" : s;
  }

  function paren(v) { return v < 0 ? "(" + fmt(v) + ")" : fmt(v); }

  function unravel(flat, shape) {
    var out = [];
    for (var i = shape.length - 1; i >= 0; i--) {
      out.unshift(flat % shape[i]);
      flat = Math.floor(flat / shape[i]);
    }
    return out;
  }

  // The name of a cell as NumPy/PyTorch index it: x[0, c, i, j], w[o, i, kh, kw], ...
  function label(key) {
    var kind = key[0];
    if (kind === "m") {
      var rc = key.slice(1).split("_");
      return "C[" + rc[0] + ", " + rc[1] + "]";
    }
    var i = parseInt(key.slice(1), 10);
    var shape = D.shapes[kind];
    var idx = unravel(i, shape).join(", ");
    if (kind === "w") return "w[" + idx + "]";
    var names = { x: state.direction === "forward" ? "x" : "dL/dx",
                  g: state.direction === "forward" ? "o" : "g", p: "padded", s: "stretched" };
    return names[kind] + "[0, " + idx + "]";
  }

  function xname(i) { return (state.direction === "forward" ? "x" : "dL/dx") + "[0, " +
                      unravel(i, D.shapes.x).join(", ") + "]"; }
  function gname(i) { return (state.direction === "forward" ? "o" : "g") + "[0, " +
                      unravel(i, D.shapes.g).join(", ") + "]"; }
  function wname(i) { return "w[" + unravel(i, D.shapes.w).join(", ") + "]"; }
  function pname(i) { return "padded[0, " + unravel(i, D.shapes.p).join(", ") + "]"; }

  // -- the incidence, indexed by cell ----------------------------------------------------------

  function buildIndex() {
    index = { g: new Map(), x: new Map(), p: new Map(), w: new Map(), s: new Map() };
    var t = D.terms;
    for (var k = 0; k < t.g.length; k++) {
      push(index.g, t.g[k], k);
      push(index.p, t.p[k], k);
      push(index.w, t.w[k], k);
      if (t.x[k] >= 0) push(index.x, t.x[k], k);
    }
    // stretched cells -> the x cells whose window covers them (for the zeros)
    var nx = D.shapes.x.slice(1).reduce(function (a, b) { return a * b; }, 1);
    var ns = D.shapes.s.slice(1).reduce(function (a, b) { return a * b; }, 1);
    var cinG = D.spec.in_channels / D.spec.groups, coutG = D.spec.out_channels / D.spec.groups;
    for (var xi = 0; xi < D.shapes.x[0] * nx; xi++) {
      windowKeys(xi, cinG, coutG, nx, ns).forEach(function (s) { push(index.s, s, xi); });
    }
  }

  function push(map, key, value) {
    var list = map.get(key);
    if (!list) map.set(key, list = []);
    list.push(value);
  }

  // The stretched-gradient cells (flat, with channel) under the flipped kernel for x cell xi,
  // for every g channel of its group.
  function windowKeys(xi, cinG, coutG, nx, ns) {
    var ci = Math.floor(xi / nx), q = xi % nx, group = Math.floor(ci / cinG);
    var out = [];
    for (var co = group * coutG; co < (group + 1) * coutG; co++) {
      D.windows[q].forEach(function (s) { out.push(co * ns + s); });
    }
    return out;
  }

  function related(key) {
    var kind = key[0], t = D.terms, src = [key], hl = [], win = [], terms = [];
    if (kind === "m") {
      var rc = key.slice(1).split("_").map(Number);
      terms = (index.g.get(rc[0]) || []).filter(function (k) { return t.x[k] === rc[1]; });
    } else {
      var i = parseInt(key.slice(1), 10);
      if (kind === "s") {
        (index.s.get(i) || []).forEach(function (xi) { hl.push("x" + xi); });
      } else {
        terms = index[kind].get(i) || [];
      }
      if (kind === "x") {
        src.push("p" + D.x_to_p[i]);
        var nx = D.shapes.x.slice(1).reduce(function (a, b) { return a * b; }, 1);
        var ns = D.shapes.s.slice(1).reduce(function (a, b) { return a * b; }, 1);
        windowKeys(i, D.spec.in_channels / D.spec.groups, D.spec.out_channels / D.spec.groups,
                   nx, ns).forEach(function (s) { win.push("s" + s); });
      }
      if (kind === "p" && D.p_to_x[i] >= 0) src.push("x" + D.p_to_x[i]);
    }
    terms.forEach(function (k) {
      hl.push("g" + t.g[k], "w" + t.w[k], "p" + t.p[k]);
      if (t.x[k] >= 0) hl.push("x" + t.x[k], "m" + t.g[k] + "_" + t.x[k]);
    });
    return { src: src, hl: hl, win: win, terms: terms };
  }

  // -- highlighting ----------------------------------------------------------------------------

  function clearMarks() {
    marked.forEach(function (node) { node.classList.remove("src", "hl", "win"); });
    marked = [];
  }

  function mark(keys, cls) {
    keys.forEach(function (k) {
      (cells.get(k) || []).forEach(function (node) { node.classList.add(cls); marked.push(node); });
    });
  }

  function show(key) {
    clearMarks();
    if (!key) { inspectNothing(); return; }
    var r = related(key);
    var src = new Set(r.src);
    mark(r.win, "win");
    mark(r.hl.filter(function (k) { return !src.has(k); }), "hl");
    mark(r.src, "src");
    inspect(key, r);
  }

  // The last way of pointing wins: after a key press the focused cell, after the mouse moves
  // the cell under it (a scroll that slides cells under a still mouse does not count).
  function refresh() { show(state.keyboard ? state.focus : (state.hover || state.focus)); }

  // -- the inspector: the products behind the cell --------------------------------------------

  function inspectNothing() {
    var body = $("inspector-body");
    body.textContent = "";
    body.appendChild(el("p", { class: "note", text: "Point at a cell or focus it (Tab, then " +
      "arrow keys) to list the products behind it." }));
  }

  function termLine(k, how) {
    var t = D.terms, v = D.values, numbers = state.numbers;
    var li = el("li", { "data-g": t.g[k], "data-w": t.w[k], "data-x": t.x[k], "data-p": t.p[k] });
    var text;
    if (how === "gw") {
      text = gname(t.g[k]) + " \u00b7 " + wname(t.w[k]);
      if (numbers) text += " = " + paren(v.g[t.g[k]]) + " \u00b7 " + paren(v.w[t.w[k]]) +
                           " = " + fmt(t.gw[k]);
    } else if (how === "xw") {
      var inside = t.x[k] >= 0;
      text = (inside ? xname(t.x[k]) : pname(t.p[k]) + " (padding)") + " \u00b7 " + wname(t.w[k]);
      if (numbers) text += " = " + paren(inside ? v.x[t.x[k]] : 0) + " \u00b7 " +
                           paren(v.w[t.w[k]]) + " = " + fmt(t.xw[k]);
    } else if (how === "stamp") {
      text = "\u2192 " + (t.x[k] >= 0 ? xname(t.x[k]) : pname(t.p[k]) + " (cropped)") +
             " += " + gname(t.g[k]) + " \u00b7 " + wname(t.w[k]);
      if (numbers) text += " = " + fmt(t.gw[k]);
    } else {    // "read": an input cell read by output cells
      text = "\u2192 " + gname(t.g[k]) + " += " + (t.x[k] >= 0 ? xname(t.x[k]) : pname(t.p[k])) +
             " \u00b7 " + wname(t.w[k]);
      if (numbers) text += " = " + fmt(t.xw[k]);
    }
    li.textContent = text;
    if (how === "gw" || how === "stamp") { if (t.x[k] < 0) li.className = "cropped-term"; }
    return li;
  }

  function inspect(key, r) {
    var body = $("inspector-body"), v = D.values, fwd = state.direction === "forward";
    var kind = key[0], i = kind === "m" ? null : parseInt(key.slice(1), 10);
    var head = "", note = "", how = fwd ? "xw" : "gw", total = null;
    var terms = r.terms;
    if (kind === "x") {
      if (fwd) { head = "x[0, " + unravel(i, D.shapes.x).join(", ") + "]" +
                 (state.numbers ? " = " + fmt(v.x[i]) : "") + " is read by"; how = "read"; }
      else { head = xname(i) + " = sum of g \u00b7 w"; total = v.dx[i]; }
    } else if (kind === "g") {
      if (fwd) { head = gname(i) + " = sum of x \u00b7 w"; total = v.g[i]; }
      else { head = gname(i) + (state.numbers ? " = " + fmt(v.g[i]) : "") + " stamps g \u00b7 w onto";
             how = "stamp"; }
    } else if (kind === "p") {
      var x = D.p_to_x[i];
      if (fwd) { head = pname(i) + (x >= 0 ? " = x" : ": padding, reads 0") + ", read by";
                 how = "read"; }
      else { head = pname(i) + " = sum of the copies g \u00b7 w"; total = v.p[i];
             note = x >= 0 ? "Inside x: this is " + xname(x) + "." :
                    "Forward padding: not part of x, cropped."; }
    } else if (kind === "w") {
      head = wname(i) + (state.numbers ? " = " + fmt(v.w[i]) : "") + " multiplies";
      how = fwd ? "read" : "stamp";
    } else if (kind === "s") {
      head = label(key) + ": " + (D.values.s[i] === 0 ? "a zero" : "a g cell") + " under the " +
             "flipped kernel of";
      note = r.hl.map(function (k) { return xname(parseInt(k.slice(1), 10)); }).join(", ") ||
             "no cell of dL/dx";
    } else if (kind === "m") {
      var rc = key.slice(1).split("_").map(Number);
      head = "C[" + rc[0] + ", " + rc[1] + "]: " + gname(rc[0]) + " and " + xname(rc[1]);
      note = "o = C x adds C[r, c] \u00b7 x[c] to o[r]; dL/dx = C\u1d40 g adds C[r, c] \u00b7 g[r] " +
             "to dL/dx[c].";
    }
    body.textContent = "";
    body.appendChild(el("p", { class: "inspect-head", text: head }));
    if (terms.length) {
      var list = el("ol", { class: "terms", "aria-label": terms.length + " products" });
      terms.slice(0, MAX_LISTED).forEach(function (k) { list.appendChild(termLine(k, how)); });
      body.appendChild(list);
      if (terms.length > MAX_LISTED) {
        body.appendChild(el("p", { class: "note", text: "\u2026 and " + (terms.length - MAX_LISTED) +
                                    " more (" + terms.length + " in all)" }));
      }
    } else if (kind !== "s" && kind !== "m") {
      body.appendChild(el("p", { class: "note", text: "No kernel tap reaches this cell: it is 0." }));
    }
    if (total !== null) {
      body.appendChild(el("p", { class: "inspect-total",
        text: terms.length + " product(s)" + (state.numbers ? "; sum = " + fmt(total) : "") }));
    }
    if (note) body.appendChild(el("p", { class: "note", text: note }));
  }

  // -- drawing panels --------------------------------------------------------------------------

  function pickSlice(panel) {
    var slices = panel.slices;
    for (var k = 0; k < slices.length; k++) {
      var s = slices[k];
      if ((s.ci === undefined || s.ci === state.ci) && (s.co === undefined || s.co === state.co))
        return s;
    }
    return slices[0];
  }

  function channelText(slice) {
    if (D.spec.in_channels === 1 && D.spec.out_channels === 1) return "";
    var parts = [];
    if (slice.co !== undefined) parts.push((state.direction === "forward" ? "o" : "g") +
                                           " channel " + slice.co);
    if (slice.ci !== undefined) parts.push("x channel " + slice.ci);
    return parts.length ? " \u2014 " + parts.join(", ") : "";
  }

  function register(node, keys) {
    keys.split(" ").forEach(function (k) {
      if (!k) return;
      var list = cells.get(k);
      if (!list) cells.set(k, list = []);
      list.push(node);
    });
  }

  // One panel as an ARIA grid of cells, with its row and column indices. `transpose` draws a
  // matrix panel as its transpose (C^T).
  function drawPanel(ref, transpose) {
    var panel = D.steps[ref[0]].panels[ref[1]];
    var slice = pickSlice(panel);
    var shape = panel.shape.length === 1 ? [1, panel.shape[0]] : panel.shape.slice();
    var rows = shape[0], cols = shape[1];
    var isMatrix = panel.role === "m";
    if (transpose) { rows = shape[1]; cols = shape[0]; }
    var fig = el("figure", { class: "panel" + (isMatrix ? " matrix" : ""),
                             "data-ref": ref.join(":"), "data-role": panel.role });
    var name = isMatrix && transpose ? "C\u1d40 (dL/dx = C\u1d40 g)" : panel.name;
    var caption = el("figcaption", {}, [
      el("span", { class: "pname", text: name }),
      el("span", { class: "pshape", text: " " + (panel.shape.length === 1 ? panel.shape[0] :
                   rows + "\u00d7" + cols) + channelText(slice) })]);
    fig.appendChild(caption);
    var grid = el("div", { class: "grid", role: "grid", "aria-label": name + channelText(slice),
                           style: "--cols:" + cols });
    // column indices
    var head = el("div", { role: "row", class: "row idx-row" });
    head.appendChild(el("span", { class: "idx corner", "aria-hidden": "true" }));
    for (var c = 0; c < cols; c++) {
      var hk = isMatrix ? (transpose ? "g" + c : "x" + c) : "";
      var h = el("span", { class: "idx col-idx", "aria-hidden": "true", text: String(c) });
      if (hk) { h.setAttribute("data-key", hk); register(h, hk); }
      head.appendChild(h);
    }
    grid.appendChild(head);
    var first = true;
    for (var r = 0; r < rows; r++) {
      var row = el("div", { role: "row", class: "row" });
      var rk = isMatrix ? (transpose ? "x" + r : "g" + r) : "";
      var ri = el("span", { class: "idx row-idx", "aria-hidden": "true",
                            text: panel.shape.length === 1 ? "" : String(r) });
      if (rk) { ri.setAttribute("data-key", rk); register(ri, rk); }
      row.appendChild(ri);
      for (c = 0; c < cols; c++) {
        var flat = transpose ? c * shape[1] + r : r * cols + c;
        var kind = slice.kinds ? slice.kinds[flat] : "data";
        var key = slice.keys[flat];
        var value = slice.values[flat];
        var cls = "cell k-" + (kind.indexOf("phase") === 0 ? "phase" : kind) +
                  (slice.cropped && slice.cropped[flat] ? " cropped" : "");
        var cell = el("div", { role: "gridcell", class: cls, tabindex: first ? "0" : "-1",
                               "data-key": key || null, "data-r": r, "data-c": c });
        first = false;
        if (kind.indexOf("phase") === 0) {
          cell.setAttribute("data-phase", kind.slice(5));
          cell.classList.add("phase-" + (parseInt(kind.slice(5), 10) % 9));
        }
        var shown = isMatrix && kind === "empty" ? "" : fmt(value);
        cell.appendChild(el("span", { class: "num", text: shown }));
        var where = panel.shape.length === 1 ? "[" + c + "]" : "[" + r + ", " + c + "]";
        cell.setAttribute("aria-label", name + " " + where + (shown !== "" ? " = " + shown : "") +
                          (kind !== "data" ? ", " + kindLabel(kind) : "") +
                          (slice.cropped && slice.cropped[flat] ? ", cropped" : ""));
        if (key) register(cell, key);
        row.appendChild(cell);
      }
      grid.appendChild(row);
    }
    fig.appendChild(grid);
    return fig;
  }

  function kindLabel(kind) {
    if (kind.indexOf("phase") === 0) return "phase " + kind.slice(5);
    return (D.kinds[kind] || kind);
  }

  // -- keyboard: arrow keys move within a panel, Tab moves between panels ----------------------

  function onGridKey(ev) {
    var cell = ev.target.closest && ev.target.closest(".cell");
    if (!cell) return;
    var grid = cell.closest(".grid");
    var r = +cell.getAttribute("data-r"), c = +cell.getAttribute("data-c");
    var rows = grid.querySelectorAll(".row").length - 1, cols = +grid.style.getPropertyValue("--cols");
    var moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    var to = null;
    if (moves[ev.key]) to = [r + moves[ev.key][0], c + moves[ev.key][1]];
    else if (ev.key === "Home") to = [ev.ctrlKey ? 0 : r, 0];
    else if (ev.key === "End") to = [ev.ctrlKey ? rows - 1 : r, cols - 1];
    else if (ev.key === "Escape") { cell.blur(); state.focus = null; refresh(); return; }
    if (!to) return;
    ev.preventDefault();
    if (to[0] < 0 || to[0] >= rows || to[1] < 0 || to[1] >= cols) return;
    var next = grid.querySelector('.cell[data-r="' + to[0] + '"][data-c="' + to[1] + '"]');
    if (next) {
      cell.setAttribute("tabindex", "-1");
      next.setAttribute("tabindex", "0");
      next.focus();
    }
  }

  function keyOf(node) {
    var cell = node && node.closest && node.closest("[data-key]");
    return cell ? cell.getAttribute("data-key").split(" ")[0] : null;
  }

  document.addEventListener("keydown", onGridKey);
  document.addEventListener("focusin", function (ev) {
    var cell = ev.target.closest && ev.target.closest(".cell");
    if (!cell) return;
    var grid = cell.closest(".grid");
    grid.querySelectorAll('.cell[tabindex="0"]').forEach(function (n) {
      if (n !== cell) n.setAttribute("tabindex", "-1");
    });
    cell.setAttribute("tabindex", "0");
    state.focus = keyOf(cell);
    refresh();
  });
  document.addEventListener("focusout", function (ev) {
    if (ev.target.closest && ev.target.closest(".cell") &&
        !(ev.relatedTarget && ev.relatedTarget.closest && ev.relatedTarget.closest(".cell"))) {
      state.focus = null;
      refresh();
    }
  });
  document.addEventListener("mouseover", function (ev) {
    var cell = ev.target.closest && ev.target.closest(".cell, .idx[data-key]");
    var key = cell ? keyOf(cell) : null;
    if (key !== state.hover) { state.hover = key; if (!state.keyboard) refresh(); }
  });
  document.addEventListener("mousemove", function (ev) {
    if (state.keyboard && (ev.movementX || ev.movementY)) { state.keyboard = false; refresh(); }
  });
  document.addEventListener("keydown", function () { state.keyboard = true; }, true);

  // -- the sections ------------------------------------------------------------------------------

  function drawSteps() {
    var list = $("step-list");
    list.textContent = "";
    D.steps.forEach(function (step, s) {
      var sec = el("article", { class: "step", id: "step-" + step.key, "data-step": s,
                                "aria-labelledby": "step-title-" + s });
      sec.appendChild(el("h3", { id: "step-title-" + s, text: (s + 1) + ". " + step.title }));
      step.text.split("\n").forEach(function (line) {
        sec.appendChild(el("p", { class: "step-text", text: line }));
      });
      var panels = el("div", { class: "panels" });
      step.panels.forEach(function (p, k) { panels.appendChild(drawPanel([s, k], false)); });
      sec.appendChild(panels);
      list.appendChild(sec);
    });
    var slider = $("step-slider");
    slider.max = String(D.steps.length);
    goTo(Math.min(state.step, D.steps.length - 1));
  }

  function goTo(s) {
    state.step = s;
    document.querySelectorAll(".step").forEach(function (node) {
      node.hidden = +node.getAttribute("data-step") !== s;
    });
    var slider = $("step-slider");
    slider.value = String(s + 1);
    slider.setAttribute("aria-valuetext", "step " + (s + 1) + " of " + D.steps.length + ": " +
                        D.steps[s].title);
    $("step-number").textContent = (s + 1) + " of " + D.steps.length;
    $("prev").disabled = s === 0;
    $("next").disabled = s === D.steps.length - 1;
  }

  function play(on) {
    if (state.timer) { clearInterval(state.timer); state.timer = null; }
    var button = $("play");
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "\u275a\u275a pause" : "\u25b6 play";
    if (!on) return;
    if (state.step === D.steps.length - 1) goTo(0);
    state.timer = setInterval(function () {
      if (state.step >= D.steps.length - 1) { play(false); return; }
      goTo(state.step + 1);
    }, PLAY_MS);
  }

  function drawViews() {
    var fwd = state.direction === "forward";
    $("views-title").textContent = fwd ? "The forward convolution" :
                                         "Two views of the transposed convolution";
    $("view-scatter").hidden = fwd;
    $("view-gather").hidden = fwd;
    $("view-forward").hidden = !fwd;
    ["scatter", "gather", "forward"].forEach(function (name) {
      var box = document.querySelector("#view-" + name + " .panels");
      box.textContent = "";
      D.views[name].forEach(function (ref) { box.appendChild(drawPanel(ref, false)); });
    });
    var sp = D.spec;
    $("views-note").textContent = fwd ? "" :
      "Both give the same dL/dx: the scatter is the backward pass by definition, the gather " +
      "is the same sum read from x's side: an ordinary convolution, which is the transposed " +
      "convolution. Stride " + sp.stride.join("\u00d7") + ", padding " +
      sp.padding.map(function (p) { return p[0] + ":" + p[1]; }).join(", ") + " (low:high), " +
      "dilation " + sp.dilation.join("\u00d7") + ", output_padding " +
      sp.output_padding.join("\u00d7") + ".";
  }

  function drawMatrix() {
    var fwd = state.direction === "forward";
    var box = document.querySelector("#matrix .panels");
    box.textContent = "";
    $("matrix-title").textContent = fwd ? "The matrix C: o = C x" :
                                          "The matrix C\u1d40: dL/dx = C\u1d40 g";
    var rows = D.shapes.g.reduce(function (a, b) { return a * b; }, 1);
    var cols = D.shapes.x.reduce(function (a, b) { return a * b; }, 1);
    if (!D.views.matrix.length) {
      $("matrix-note").textContent = "C has " + rows + " \u00d7 " + cols + " cells: too many to " +
        "draw here (tconv matrix prints it). Its entries are the products listed for each cell.";
      return;
    }
    $("matrix-note").textContent = fwd ?
      "Row r holds the kernel taps output cell o[r] reads, column c the taps that read x[c]; " +
      "taps in the padding are not stored (grey). Rows are o's cells, columns x's, flattened." :
      "The transpose: row c lists what flows back into dL/dx[c], column r what g[r] sends back. " +
      "Row by row this is the gather, column by column the scatter.";
    D.views.matrix.forEach(function (ref) { box.appendChild(drawPanel(ref, !fwd)); });
  }

  function drawLegend() {
    var list = $("legend-list");
    list.textContent = "";
    var items = [["src", "the cell you point at (and the same cell elsewhere)"],
                 ["hl", "cells and kernel taps that contribute to it, or that it feeds"],
                 ["win", "the window of the flipped kernel (gather view), zeros included"]];
    items.forEach(function (it) {
      list.appendChild(el("li", {}, [el("span", { class: "swatch cell " + it[0], "aria-hidden": "true" }),
                                     el("span", { text: it[1] })]));
    });
    Object.keys(D.kinds).forEach(function (k) {
      if (k === "data") return;
      list.appendChild(el("li", {}, [el("span", { class: "swatch cell k-" + k, "aria-hidden": "true" }),
                                     el("span", { text: D.kinds[k] })]));
    });
    list.appendChild(el("li", {}, [el("span", { class: "swatch cell cropped", "aria-hidden": "true" }),
                                   el("span", { text: "forward padding: cropped by the transposed convolution" })]));
    list.appendChild(el("li", {}, [el("span", { class: "swatch cell k-phase phase-1", "data-phase": "1",
                                                "aria-hidden": "true" }),
                                   el("span", { text: "phase n: the cells one sub-kernel computes (number in the corner)" })]));
  }

  function drawChannels() {
    var sp = D.spec, ci = $("pick-ci"), co = $("pick-co");
    state.ci = Math.min(state.ci, sp.in_channels - 1);
    var cinG = sp.in_channels / sp.groups, coutG = sp.out_channels / sp.groups;
    var group = Math.floor(state.ci / cinG);
    if (Math.floor(state.co / coutG) !== group) state.co = group * coutG;
    ci.textContent = "";
    for (var c = 0; c < sp.in_channels; c++) {
      ci.appendChild(el("option", { value: c, text: c + (sp.groups > 1 ? " (group " +
                                    Math.floor(c / cinG) + ")" : ""), selected: c === state.ci }));
    }
    co.textContent = "";
    for (c = group * coutG; c < (group + 1) * coutG; c++) {
      co.appendChild(el("option", { value: c, text: String(c), selected: c === state.co }));
    }
    var single = sp.in_channels === 1 && sp.out_channels === 1;
    $("channels").hidden = single;
    $("channel-note").textContent = sp.groups > 1 ?
      "groups " + sp.groups + ": x channel " + state.ci + " only meets g channels " +
      group * coutG + "\u2013" + ((group + 1) * coutG - 1) + "." :
      (sp.out_channels > 1 ? "dL/dx sums over every g channel; the product list shows them all." : "");
  }

  function drawAll() {
    cells = new Map();
    marked = [];
    state.hover = null;
    state.focus = null;
    $("spec-line").textContent = D.spec.describe + (D.spec.batch > 1 ?
      " (sample 0 of " + D.spec.batch + " shown)" : "");
    $("command").textContent = "tconv explain " + (D.ints ? "--ints " : "") +
      (D.seed ? "--seed " + D.seed + " " : "") + D.spec.flags;
    document.title = "tconv explain: " + D.spec.describe;
    drawChannels();
    drawSteps();
    drawViews();
    drawMatrix();
    drawLegend();
    buildIndex();
    inspectNothing();
  }

  function redrawPanels() {
    cells = new Map();
    marked = [];
    drawSteps();
    drawViews();
    drawMatrix();
    refresh();
  }

  // -- controls ------------------------------------------------------------------------------------

  $("prev").addEventListener("click", function () { play(false); goTo(Math.max(0, state.step - 1)); });
  $("next").addEventListener("click", function () {
    play(false); goTo(Math.min(D.steps.length - 1, state.step + 1));
  });
  $("play").addEventListener("click", function () { play(!state.timer); });
  $("step-slider").addEventListener("input", function (ev) {
    play(false); goTo(parseInt(ev.target.value, 10) - 1);
  });
  document.querySelectorAll('input[name="direction"]').forEach(function (r) {
    r.addEventListener("change", function () {
      state.direction = r.value;
      redrawPanels();
    });
  });
  document.querySelectorAll('input[name="show"]').forEach(function (r) {
    r.addEventListener("change", function () {
      state.numbers = r.value === "numbers";
      document.body.classList.toggle("geometry", !state.numbers);
      refresh();
    });
  });
  $("pick-ci").addEventListener("change", function (ev) {
    state.ci = parseInt(ev.target.value, 10);
    drawChannels(); redrawPanels();
  });
  $("pick-co").addEventListener("change", function (ev) {
    state.co = parseInt(ev.target.value, 10);
    drawChannels(); redrawPanels();
  });

  // -- the playground (tconv serve) ---------------------------------------------------------

  var FIELDS = ["dims", "size", "kernel", "stride", "padding", "dilation", "output_padding",
                "in_channels", "out_channels", "groups", "seed"];

  function formParams() {
    var params = new URLSearchParams();
    FIELDS.forEach(function (f) { params.set(f, $("f-" + f).value.trim()); });
    params.set("ints", $("f-ints").checked ? "1" : "0");
    return params;
  }

  function fillForm(sp, ints, seed) {
    var per = function (v) {
      return v.every(function (a) { return a === v[0]; }) ? String(v[0]) : v.join(",");
    };
    $("f-dims").value = String(sp.ndim);
    $("f-size").value = per(sp.input_size);
    $("f-kernel").value = per(sp.kernel_size);
    $("f-stride").value = per(sp.stride);
    var sym = sp.padding.every(function (p) { return p[0] === p[1]; });
    $("f-padding").value = sym ? per(sp.padding.map(function (p) { return p[0]; })) :
      sp.padding.map(function (p) { return p[0] + ":" + p[1]; }).join(",");
    $("f-dilation").value = per(sp.dilation);
    var opNeeded = sp.output_padding.some(function (o, i) { return o >= sp.stride[i]; });
    $("f-output_padding").value = opNeeded ? per(sp.output_padding) : "";
    $("f-in_channels").value = String(sp.in_channels);
    $("f-out_channels").value = String(sp.out_channels);
    $("f-groups").value = String(sp.groups);
    $("f-seed").value = String(seed);
    $("f-ints").checked = !!ints;
  }

  function clearErrors() {
    document.querySelectorAll(".field-error").forEach(function (n) { n.textContent = ""; });
    document.querySelectorAll("[aria-invalid]").forEach(function (n) { n.removeAttribute("aria-invalid"); });
  }

  var asked = 0;     // the latest request: an older answer that arrives later is dropped

  function redraw(params, push) {
    var mine = ++asked;
    $("form-status").textContent = "computing\u2026";
    return fetch("api/page?" + params.toString(), { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (res) {
        if (mine !== asked) return;
        clearErrors();
        if (!res.ok) {
          var field = res.body.field && $("err-" + res.body.field) ? res.body.field : "form";
          $("err-" + field).textContent = res.body.error || "the server refused the request";
          if (field !== "form") $("f-" + field).setAttribute("aria-invalid", "true");
          $("form-status").textContent = "not redrawn: see the message";
          return;
        }
        D = res.body;
        drawAll();
        $("form-status").textContent = "drawn: " + D.spec.describe;
        if (push) history.replaceState(null, "", "?" + params.toString());
      })
      .catch(function () {
        if (mine !== asked) return;
        clearErrors();
        $("err-form").textContent = "no answer from the tconv server (is `tconv serve` still running?)";
        $("form-status").textContent = "";
      });
  }

  if (boot.serve) {
    var form = $("playground");
    form.hidden = false;
    var timer = null;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clearTimeout(timer);       // a field's change just before the click asks for the same page
      redraw(formParams(), true);
    });
    form.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { redraw(formParams(), true); }, 250);
    });
  }

  D = boot.page;
  if (D) {
    drawAll();
    if (boot.serve) fillForm(D.spec, D.ints, D.seed);
  }
  if (boot.serve && location.search.length > 1) {
    var given = new URLSearchParams(location.search);
    FIELDS.forEach(function (f) { if (given.has(f)) $("f-" + f).value = given.get(f); });
    if (given.has("ints")) $("f-ints").checked = given.get("ints") === "1";
    redraw(formParams(), false);
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
