// The treemap of reggie-build's HTML report, drawn from the JSON model in
// #model. No dependencies, no network. Names from the repository are set
// only with textContent or setAttribute, never parsed as HTML.
"use strict";
(function () {
  var el = document.getElementById("model");
  if (!el) return;
  var model = JSON.parse(el.textContent);

  // Control and bidi characters made visible, as the text reports do.
  function vis(s) {
    return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g, function (c) {
      var n = c.charCodeAt(0);
      if (c === "\n") return "\\n";
      if (c === "\r") return "\\r";
      if (c === "\t") return "\\t";
      if (n < 0x100) return "\\x" + (n < 16 ? "0" : "") + n.toString(16);
      return "\\u{" + n.toString(16) + "}";
    });
  }
  function size(b) {
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
    return i === 0 ? b + " B" : b.toFixed(2) + " " + units[i];
  }
  function make(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Copy buttons: shown only where the script runs.
  Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var src = document.getElementById(b.getAttribute("data-copy"));
      if (!src || !navigator.clipboard) return;
      navigator.clipboard.writeText(src.textContent).then(function () {
        b.textContent = "Copied";
      }, function () {
        b.textContent = "Select and copy";
      });
    });
  });

  // Kinds never take the generic unused orange (--unused).
  var palette = ["#c8553d", "#b5446e", "#8e5cc4", "#c9a227", "#8f5a36", "#e06c75", "#6f6fd0", "#c27ba0", "#4f9a94", "#b08b2e"];
  var LABELS = { needed: "needed by the Dockerfile", unused: "sent, never used", excluded: "excluded by the ignore file", mixed: "directory: needed and unused" };

  // Squarified treemap (Bruls, Huizing, van Wijk): rows along the short
  // side, each row kept while it improves the worst aspect ratio.
  function squarify(values, x, y, w, h) {
    var total = 0, i;
    for (i = 0; i < values.length; i++) total += values[i];
    var out = [];
    if (total <= 0 || w <= 0 || h <= 0) {
      for (i = 0; i < values.length; i++) out.push([x, y, 0, 0]);
      return out;
    }
    var scale = (w * h) / total;
    var areas = values.map(function (v) { return v * scale; });
    function worst(sum, min, max, side) {
      var s2 = sum * sum, side2 = side * side;
      return Math.max((side2 * max) / s2, s2 / (side2 * min));
    }
    i = 0;
    while (i < areas.length) {
      var side = Math.min(w, h), start = i, sum = areas[i], min = areas[i], max = areas[i];
      var best = worst(sum, min, max, side);
      i++;
      while (i < areas.length) {
        var a = areas[i], ns = sum + a, r = worst(ns, Math.min(min, a), Math.max(max, a), side);
        if (r > best) break;
        sum = ns; min = Math.min(min, a); max = Math.max(max, a); best = r; i++;
      }
      var j, off;
      if (w >= h) {
        var cw = sum / h;
        for (j = start, off = y; j < i; j++) { var ch = areas[j] / cw; out.push([x, off, cw, ch]); off += ch; }
        x += cw; w -= cw;
      } else {
        var rh = sum / w;
        for (j = start, off = x; j < i; j++) { var rw = areas[j] / rh; out.push([off, y, rw, rh]); off += rw; }
        y += rh; h -= rh;
      }
    }
    return out;
  }

  function Treemap(index, image) {
    var detail = image.detail;
    this.box = document.querySelector('[data-treemap="' + index + '"]');
    this.crumbs = document.querySelector('[data-crumbs="' + index + '"]');
    this.info = document.querySelector('[data-info="' + index + '"]');
    this.legend = document.querySelector('[data-legend="' + index + '"]');
    if (!detail || !this.box) return;
    var nodes = (this.nodes = detail.nodes);
    this.decisions = detail.decisions || [];
    var kids = (this.kids = nodes.map(function () { return []; }));
    var paths = (this.paths = []);
    var kinds = (this.kinds = {});
    var kindCount = 0;
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      if (n.parent !== null && n.parent !== undefined) {
        kids[n.parent].push(i);
        var base = paths[n.parent];
        paths[i] = n.folded ? base + "(" + n.files + " small files)" : base + n.name + (n.dir ? "/" : "");
      } else {
        paths[i] = "";
      }
      var key = colourKey(n);
      if (key && !(key in kinds)) {
        kinds[key] = key === "file" || key === "directory" ? "var(--unused)" : palette[kindCount++ % palette.length];
      }
    }
    this.drawLegend();
    this.zoom(0);
  }

  // Unused cells are coloured by kind ("mostly X" as X).
  function colourKey(n) {
    return n.class === "unused" && n.kind ? n.kind.replace(/^mostly /, "") : null;
  }
  Treemap.prototype.colour = function (n) {
    var key = colourKey(n);
    return key && this.kinds[key] ? this.kinds[key] : "";
  };

  Treemap.prototype.drawLegend = function () {
    if (!this.legend) return;
    var self = this;
    function item(label, colour) {
      var li = make("li", "", label);
      li.style.setProperty("--sw", colour);
      self.legend.appendChild(li);
    }
    var has = {};
    this.nodes.forEach(function (n) { has[n.class] = true; });
    if (has.needed) item("needed", "var(--needed)");
    Object.keys(this.kinds).forEach(function (k) { item("unused: " + vis(k), self.kinds[k]); });
    if (has.excluded) item("excluded by the ignore file", "var(--excluded)");
    if (has.mixed) item("directory with several", "var(--mixed)");
  };

  Treemap.prototype.describe = function (i) {
    var n = this.nodes[i];
    var lines = [(vis(this.paths[i]) || "(context root)") + "  " + size(n.bytes) + " in " + n.files + " files"];
    var what = LABELS[n.class] || n.class;
    if (n.kind) what += ": " + vis(n.kind);
    lines.push(what);
    var decided = this.decisions[n.decided];
    if (decided) lines.push(vis(decided));
    return lines.join("\n");
  };

  Treemap.prototype.zoom = function (root) {
    var self = this;
    this.root = root;
    // Breadcrumb: the root's ancestors, each a button back.
    this.crumbs.textContent = "";
    var chain = [], k = root;
    while (k !== null && k !== undefined) { chain.unshift(k); k = this.nodes[k].parent; }
    chain.forEach(function (c, pos) {
      var b = make("button", "", c === 0 ? "context" : vis(self.nodes[c].name));
      b.type = "button";
      if (pos === chain.length - 1) b.disabled = true;
      b.addEventListener("click", function () { self.zoom(c); });
      self.crumbs.appendChild(b);
      if (pos < chain.length - 1) self.crumbs.appendChild(make("span", "", "/"));
    });
    this.box.textContent = "";
    var rect = this.box.getBoundingClientRect();
    var W = rect.width || 800, H = rect.height || 460;
    // Each entry: node, parent element, box, depth below the view's root.
    var stack = [[root, this.box, 0, 0, W, H, 0]];
    while (stack.length) {
      var t = stack.pop();
      var list = this.kids[t[0]].slice().sort(function (a, b) { return self.nodes[b].bytes - self.nodes[a].bytes; });
      if (!list.length) continue;
      var total = self.nodes[t[0]].bytes || 1;
      var values = list.map(function (c) { return Math.max(self.nodes[c].bytes, total * 1e-5, 1e-9); });
      var rects = squarify(values, t[2], t[3], t[4], t[5]);
      for (var j = 0; j < list.length; j++) {
        var c = list[j], n = this.nodes[c], r = rects[j];
        var cell = make("div", "cell " + n.class + (n.dir ? " dir" : "") + (n.folded ? " folded" : ""));
        cell.style.left = r[0] + "px"; cell.style.top = r[1] + "px";
        cell.style.width = r[2] + "px"; cell.style.height = r[3] + "px";
        var col = this.colour(n);
        if (col) cell.style.background = col;
        cell.setAttribute("data-path", this.paths[c]);
        cell.setAttribute("data-node", String(c));
        cell.setAttribute("data-bytes", String(n.bytes));
        var top = t[6] === 0;
        if (top) {
          // Only the view's own children take focus: a keyboard tour of
          // one level, Enter to zoom in, Escape to go back.
          cell.tabIndex = 0;
          cell.setAttribute("role", "button");
          cell.setAttribute("aria-label", this.describe(c));
        }
        var labelled = r[2] > 36 && r[3] > 16;
        if (labelled) cell.appendChild(make("span", "label", n.folded ? n.files + " small files" : vis(n.name) + (n.dir ? "/" : "")));
        t[1].appendChild(cell);
        if (n.dir && this.kids[c].length) {
          var head = labelled ? 16 : 0;
          stack.push([c, cell, 1, head, Math.max(r[2] - 3, 0), Math.max(r[3] - head - 3, 0), t[6] + 1]);
        }
      }
    }
    this.info.textContent = this.describe(root);
  };

  Treemap.prototype.bind = function () {
    var self = this;
    function nodeOf(e) {
      var c = e.target.closest ? e.target.closest(".cell") : null;
      return c ? [c, Number(c.getAttribute("data-node"))] : null;
    }
    var hovered = null;
    function show(e) {
      var hit = nodeOf(e);
      if (hovered) hovered.classList.remove("hover");
      hovered = hit ? hit[0] : null;
      if (hit) { hit[0].classList.add("hover"); self.info.textContent = self.describe(hit[1]); }
    }
    this.box.addEventListener("mouseover", show);
    this.box.addEventListener("focusin", show);
    // A click zooms into the view-level directory that holds the target.
    function zoomFrom(cellNode) {
      var k = cellNode;
      while (k !== null && k !== undefined && self.nodes[k].parent !== self.root) k = self.nodes[k].parent;
      if (k !== null && k !== undefined && self.nodes[k].dir) {
        self.zoom(k);
        var firstCell = self.box.querySelector(".cell");
        if (firstCell) firstCell.focus();
      }
    }
    this.box.addEventListener("click", function (e) { var hit = nodeOf(e); if (hit) zoomFrom(hit[1]); });
    this.box.addEventListener("keydown", function (e) {
      var hit = nodeOf(e);
      if ((e.key === "Enter" || e.key === " ") && hit) { e.preventDefault(); zoomFrom(hit[1]); }
      if ((e.key === "Escape" || e.key === "Backspace") && self.root !== 0) {
        e.preventDefault();
        var up = self.nodes[self.root].parent;
        self.zoom(up === null || up === undefined ? 0 : up);
        var c = self.box.querySelector(".cell");
        if (c) c.focus();
      }
    });
  };

  if (model.view === "analyze") {
    model.images.forEach(function (image, i) {
      var t = new Treemap(i, image);
      if (t.nodes) t.bind();
    });
  }
})();
