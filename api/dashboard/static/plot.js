// hwplot: the dashboard's plots, about 20 KB instead of a 4.8 MB charting library.
//
// The pages need scatter plots of up to tens of thousands of trials, a highlighted front with
// error bars, step lines, dashed limit lines, hover text, click-through, box zoom and a log axis.
// Data marks go on one <canvas> (10,000 points are one path: a few ms), axes and labels on an
// <svg> above it, the legend, title and hover text are HTML. Nothing is evaluated from strings
// (no 'unsafe-eval' in the pages' CSP), nothing links out, nothing takes a tab stop (keyboard
// users get the tables beside each plot).
//
//   hwplot.draw(div, spec)   spec = {title, height, view, colors: {bg, grid, bad}, legend,
//                                    x: {title, fit, log, zero}, y: {...},
//                                    series: [{name, x, y, keys, hover, color, size, symbol, outline,
//                                              markers, line: {step, dash}, errX, errY: {plus, minus}}],
//                                    limits: [{axis, value, label}], onClick(key)}
//   hwplot.clear(div)
//
// A drawn div carries ``div.hwplot``: the spec, the axes as drawn ({log, range}), what was drawn
// (points per series, lines, error bars, limits) and ``at(series, i)``, a point's page position.
// A box zoom survives redraws while ``spec.view`` stays the same; a double click resets it.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const HIT_PX = 12;

  function node(tag, attrs, parent, ns) {
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);

  /* ------------------------------------------------------------ scales and ticks */
  // [lo, hi] of what the axis shows: ``fit`` values when given (e.g. the front only), else every
  // series (error bars included) and limit line.
  function extent(spec, axis) {
    const log = !!spec[axis].log;
    let lo = Infinity, hi = -Infinity;
    for (const v of spec[axis].fit || []) if (finite(v) && (!log || v > 0)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (const s of spec[axis].fit ? [] : spec.series) {
      const vs = s[axis], err = axis === "x" ? s.errX : s.errY;
      for (let i = 0; i < vs.length; i++) {
        const v = vs[i];
        if (!finite(v)) continue;
        const a = err ? v - (err.minus[i] || 0) : v, b = err ? v + (err.plus[i] || 0) : v;
        if (log && a <= 0) continue;
        if (a < lo) lo = a;
        if (b > hi) hi = b;
      }
    }
    for (const l of spec[axis].fit ? [] : spec.limits || []) if (l.axis === axis && finite(l.value) && (!log || l.value > 0)) {
      lo = Math.min(lo, l.value); hi = Math.max(hi, l.value);
    }
    if (lo > hi) return log ? [1, 10] : [0, 1];
    if (spec[axis].zero && !log) lo = Math.min(lo, 0);
    return [lo, hi];
  }

  // [lo, hi] with a margin, in data units (the margin is in decades on a log axis).
  function padded([lo, hi], log, zero) {
    if (log) {
      const a = Math.log10(lo), b = Math.log10(hi), pad = b > a ? 0.04 * (b - a) : 0.5;
      return [10 ** (a - pad), 10 ** (b + pad)];
    }
    const pad = hi > lo ? 0.05 * (hi - lo) : Math.abs(hi) * 0.1 || 1;
    return [zero && lo === 0 ? 0 : lo - pad, hi + pad];
  }

  function scale(lo, hi, log, p0, p1) {
    const f = log ? Math.log10 : (v) => v;
    const a = f(lo), b = f(hi), k = (p1 - p0) / (b - a || 1);
    return {
      lo, hi, log,
      map: (v) => p0 + (f(v) - a) * k,
      inv: (p) => { const u = a + (p - p0) / k; return log ? 10 ** u : u; },
    };
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count), p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  const SI = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  function label(v, step) {
    const a = Math.abs(v);
    const digits = (s) => Math.max(0, Math.min(6, -Math.floor(Math.log10(s) + 1e-9)));
    for (const [f, p] of SI) {
      if (a >= f * 10 || (a >= f && step >= f)) return `${(v / f).toFixed(step ? digits(step / f) : 1).replace(/\.0+$/, "")}${p}`;
    }
    return step ? v.toFixed(digits(step)) : String(Number(v.toPrecision(3)));
  }

  function ticks(sc, count) {
    const out = [];
    if (sc.log) {
      const a = Math.log10(sc.lo), b = Math.log10(sc.hi);
      const mults = b - a < 1.5 ? [1, 2, 5] : b - a < 3 ? [1, 3] : [1];
      for (let d = Math.floor(a); d <= Math.ceil(b); d++) {
        for (const m of mults) {
          const v = m * 10 ** d;
          if (v >= sc.lo && v <= sc.hi) out.push([v, label(v, 0)]);
        }
      }
      return out;
    }
    const step = niceStep(sc.hi - sc.lo, count);
    for (let v = Math.ceil(sc.lo / step) * step, n = 0; v <= sc.hi + step * 1e-9 && n < 60; v += step, n++) {
      const r = Math.abs(v) < step * 1e-9 ? 0 : v;
      out.push([r, label(r, step)]);
    }
    return out;
  }

  /* ------------------------------------------------------------ marks */
  function marker(ctx, symbol, x, y, r) {
    if (symbol === "cross") {
      ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y + r); ctx.moveTo(x - r, y + r); ctx.lineTo(x + r, y - r);
    } else if (symbol === "diamond") {
      ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y); ctx.closePath();
    } else {
      ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
  }
  const stroked = (symbol) => symbol === "cross" || symbol === "diamond";

  function drawSeries(ctx, st, s, si) {
    const { sx, sy } = st, px = new Float64Array(s.x.length), py = new Float64Array(s.x.length);
    const inside = (x, y) => x >= st.box.l - 1 && x <= st.box.r + 1 && y >= st.box.t - 1 && y <= st.box.b + 1;
    let shown = 0;
    for (let i = 0; i < s.x.length; i++) {
      const ok = finite(s.x[i]) && finite(s.y[i]) && (!sx.log || s.x[i] > 0) && (!sy.log || s.y[i] > 0);
      px[i] = ok ? sx.map(s.x[i]) : NaN;
      py[i] = ok ? sy.map(s.y[i]) : NaN;
    }
    if (s.line) {
      ctx.beginPath();
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.setLineDash(s.line.dash ? [2, 3] : []);
      let started = false, last = 0;
      for (let i = 0; i < px.length; i++) {
        if (Number.isNaN(px[i])) continue;
        if (!started) { ctx.moveTo(px[i], py[i]); started = true; }
        else if (s.line.step) { ctx.lineTo(px[i], last); ctx.lineTo(px[i], py[i]); }
        else ctx.lineTo(px[i], py[i]);
        last = py[i];
      }
      ctx.stroke();
      ctx.setLineDash([]);
      if (started) st.drawn.lines += 1;
    }
    if (s.errX || s.errY) {
      ctx.beginPath();
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1;
      for (let i = 0; i < px.length; i++) {
        if (Number.isNaN(px[i])) continue;
        if (s.errX) { ctx.moveTo(sx.map(s.x[i] - s.errX.minus[i]), py[i]); ctx.lineTo(sx.map(s.x[i] + s.errX.plus[i]), py[i]); }
        if (s.errY) { ctx.moveTo(px[i], sy.map(s.y[i] - s.errY.minus[i])); ctx.lineTo(px[i], sy.map(s.y[i] + s.errY.plus[i])); }
        st.drawn.errorBars += 1;
      }
      ctx.stroke();
    }
    if (s.markers !== false) {
      const r = (s.size || 6) / 2;
      ctx.beginPath();
      for (let i = 0; i < px.length; i++) {
        if (Number.isNaN(px[i]) || !inside(px[i], py[i])) continue;
        marker(ctx, s.symbol, px[i], py[i], r);
        shown += 1;
      }
      if (stroked(s.symbol)) {
        ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.stroke();
      } else {
        ctx.fillStyle = s.color; ctx.fill();
        if (s.outline) { ctx.strokeStyle = s.outline; ctx.lineWidth = 1; ctx.stroke(); }
      }
    }
    st.drawn.points[si] = shown;
    st.pixels[si] = [px, py];
  }

  /* ------------------------------------------------------------ one plot */
  function build(div) {
    div.replaceChildren();
    div.classList.add("hw-plot");
    const title = node("div", { class: "hw-title" }, div);
    const frame = node("div", { class: "hw-frame" }, div);
    const canvas = node("canvas", { class: "hw-marks", "aria-hidden": "true" }, frame);
    const svg = node("svg", { class: "hw-axes", "aria-hidden": "true" }, frame, SVG);
    const tip = node("div", { class: "hw-tip", hidden: "" }, frame);
    const legend = node("ul", { class: "hw-legend" }, div);
    const st = { div, title, frame, canvas, svg, tip, legend, spec: null, zoom: null, view: null, width: 0 };
    bindPointer(st);
    if (typeof ResizeObserver === "function") {
      st.resize = new ResizeObserver(() => { if (st.spec && div.clientWidth !== st.width) render(st); });
      st.resize.observe(div);
    }
    return st;
  }

  function render(st) {
    const spec = st.spec, div = st.div;
    const width = Math.max(120, div.clientWidth), height = spec.height || 360;
    st.width = div.clientWidth;
    st.title.textContent = spec.title || "";
    st.title.hidden = !spec.title;
    st.frame.style.height = `${height}px`;

    const rx = st.zoom ? st.zoom.x : padded(extent(spec, "x"), spec.x.log, spec.x.zero);
    const ry = st.zoom ? st.zoom.y : padded(extent(spec, "y"), spec.y.log, spec.y.zero);
    // the left margin fits the widest y label
    const probeY = scale(ry[0], ry[1], !!spec.y.log, height - 44, 14);
    const yTicks = ticks(probeY, Math.max(2, Math.round((height - 58) / 48)));
    const widest = Math.max(1, ...yTicks.map(([, t]) => t.length));
    const box = { l: 26 + widest * 7, r: width - 14, t: 16, b: height - 44 };
    const sx = scale(rx[0], rx[1], !!spec.x.log, box.l, box.r);
    const sy = scale(ry[0], ry[1], !!spec.y.log, box.b, box.t);
    const xTicks = ticks(sx, Math.max(2, Math.round((box.r - box.l) / 90)));
    Object.assign(st, { sx, sy, box, drawn: { points: [], lines: 0, errorBars: 0, limits: 0 }, pixels: [] });

    const dpr = window.devicePixelRatio || 1, c = st.canvas;
    c.width = Math.round(width * dpr); c.height = Math.round(height * dpr);
    c.style.width = `${width}px`; c.style.height = `${height}px`;
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const colors = spec.colors || {};
    ctx.fillStyle = colors.bg || "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.beginPath();
    ctx.strokeStyle = colors.grid || "#ddd";
    ctx.lineWidth = 1;
    for (const [v] of xTicks) { const p = Math.round(sx.map(v)) + 0.5; ctx.moveTo(p, box.t); ctx.lineTo(p, box.b); }
    for (const [v] of yTicks) { const p = Math.round(sy.map(v)) + 0.5; ctx.moveTo(box.l, p); ctx.lineTo(box.r, p); }
    ctx.stroke();
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.l, box.t, box.r - box.l, box.b - box.t);
    ctx.clip();
    spec.series.forEach((s, i) => drawSeries(ctx, st, s, i));
    ctx.beginPath();
    ctx.strokeStyle = colors.bad || "#b3261e";
    ctx.lineWidth = 1.5;
    ctx.setLineDash([6, 4]);
    const limits = (spec.limits || []).filter((l) => finite(l.value) && (l.axis === "x" ? sx : sy).lo <= l.value && l.value <= (l.axis === "x" ? sx : sy).hi);
    for (const l of limits) {
      if (l.axis === "x") { ctx.moveTo(sx.map(l.value), box.t); ctx.lineTo(sx.map(l.value), box.b); }
      else { ctx.moveTo(box.l, sy.map(l.value)); ctx.lineTo(box.r, sy.map(l.value)); }
    }
    ctx.stroke();
    ctx.restore();
    st.drawn.limits = limits.length;

    const svg = st.svg;
    svg.replaceChildren();
    svg.setAttribute("width", width); svg.setAttribute("height", height);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    node("path", { class: "hw-axis", d: `M${box.l},${box.t}V${box.b}H${box.r}` }, svg, SVG);
    for (const [v, t] of xTicks) node("text", { class: "hw-tick", x: sx.map(v), y: box.b + 15, "text-anchor": "middle", text: t }, svg, SVG);
    for (const [v, t] of yTicks) node("text", { class: "hw-tick", x: box.l - 5, y: sy.map(v) + 4, "text-anchor": "end", text: t }, svg, SVG);
    node("text", { class: "hw-axis-title", x: (box.l + box.r) / 2, y: height - 8, "text-anchor": "middle", text: spec.x.title || "" }, svg, SVG);
    node("text", { class: "hw-axis-title", x: 0, y: 0, "text-anchor": "middle", text: spec.y.title || "",
      transform: `translate(12 ${(box.t + box.b) / 2}) rotate(-90)` }, svg, SVG);
    for (const l of limits) {
      node("text", l.axis === "x"
        ? { class: "hw-limit", x: sx.map(l.value) + (sx.map(l.value) > box.r - 60 ? -3 : 3), y: box.t + 10,
          "text-anchor": sx.map(l.value) > box.r - 60 ? "end" : "start", text: l.label }
        : { class: "hw-limit", x: box.r - 3, y: sy.map(l.value) - 4, "text-anchor": "end", text: l.label }, svg, SVG);
    }
    st.zoomBox = node("rect", { class: "hw-zoom", x: 0, y: 0, width: 0, height: 0, visibility: "hidden" }, svg, SVG);

    st.legend.replaceChildren();
    st.legend.hidden = spec.legend === false;
    if (spec.legend !== false) {
      for (const s of spec.series) {
        const li = node("li", {}, st.legend);
        const icon = node("canvas", { class: "hw-swatch", width: 14, height: 14, "aria-hidden": "true" }, li);
        const g = icon.getContext("2d");
        g.beginPath();
        if (s.markers === false) { g.moveTo(1, 7); g.lineTo(13, 7); g.strokeStyle = s.color; g.lineWidth = 2; g.stroke(); }
        else {
          marker(g, s.symbol, 7, 7, Math.min(5, (s.size || 6) / 2));
          if (stroked(s.symbol)) { g.strokeStyle = s.color; g.lineWidth = 2; g.stroke(); } else { g.fillStyle = s.color; g.fill(); }
        }
        li.append(s.name || "");
      }
    }
    div.hwplot = {
      spec, zoomed: !!st.zoom, drawn: st.drawn,
      x: { log: sx.log, range: [sx.lo, sx.hi] }, y: { log: sy.log, range: [sy.lo, sy.hi] },
      at(si, i) {
        const r = st.canvas.getBoundingClientRect(), [px, py] = st.pixels[si];
        return { x: r.left + px[i], y: r.top + py[i] };
      },
    };
  }

  /* ------------------------------------------------------------ hover, click, zoom */
  function nearest(st, x, y) {
    let best = null, bestD = HIT_PX * HIT_PX;
    for (let si = st.pixels.length - 1; si >= 0; si--) {
      const s = st.spec.series[si];
      if (s.markers === false && !s.hover) continue;
      const [px, py] = st.pixels[si];
      for (let i = 0; i < px.length; i++) {
        const dx = px[i] - x, dy = py[i] - y, d = dx * dx + dy * dy;
        if (d < bestD) { bestD = d; best = [si, i]; }
      }
    }
    return best;
  }

  function showTip(st, hit, x, y) {
    const tip = st.tip;
    if (!hit) { tip.hidden = true; st.frame.style.cursor = ""; return; }
    const s = st.spec.series[hit[0]];
    const t = s.hover ? s.hover[hit[1]] : `${s.name}: ${s.x[hit[1]]}, ${s.y[hit[1]]}`;
    tip.replaceChildren(...String(t).split("\n").map((line) => node("div", { text: line })));
    tip.style.borderColor = s.color;
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight, fw = st.frame.clientWidth;
    tip.style.left = `${Math.max(0, x + 14 + w > fw ? x - 14 - w : x + 14)}px`;
    tip.style.top = `${Math.max(0, Math.min(st.frame.clientHeight - h, y - h / 2))}px`;
    st.frame.style.cursor = s.keys && st.spec.onClick ? "pointer" : "";
  }

  function bindPointer(st) {
    const frame = st.frame;
    let drag = null;
    const local = (ev) => { const r = frame.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
    frame.addEventListener("mousedown", (ev) => {
      if (ev.button !== 0 || !st.spec) return;
      const [x, y] = local(ev);
      if (x >= st.box.l && x <= st.box.r && y >= st.box.t && y <= st.box.b) { drag = [x, y]; ev.preventDefault(); }
    });
    frame.addEventListener("mousemove", (ev) => {
      if (!st.spec) return;
      const [x, y] = local(ev);
      if (drag) {
        const clampX = Math.min(st.box.r, Math.max(st.box.l, x)), clampY = Math.min(st.box.b, Math.max(st.box.t, y));
        Object.entries({ x: Math.min(drag[0], clampX), y: Math.min(drag[1], clampY), width: Math.abs(clampX - drag[0]),
          height: Math.abs(clampY - drag[1]), visibility: "visible" }).forEach(([k, v]) => st.zoomBox.setAttribute(k, v));
        return;
      }
      showTip(st, nearest(st, x, y), x, y);
    });
    frame.addEventListener("mouseleave", () => { st.tip.hidden = true; });
    st.onMouseUp = (ev) => {
      if (!drag) return;
      const [x0, y0] = drag, [x1, y1] = local(ev);
      drag = null;
      st.zoomBox.setAttribute("visibility", "hidden");
      if (Math.abs(x1 - x0) > 5 && Math.abs(y1 - y0) > 5) {
        const xs = [st.sx.inv(Math.max(st.box.l, Math.min(x0, x1))), st.sx.inv(Math.min(st.box.r, Math.max(x0, x1)))];
        const ys = [st.sy.inv(Math.min(st.box.b, Math.max(y0, y1))), st.sy.inv(Math.max(st.box.t, Math.min(y0, y1)))];
        st.zoom = { x: xs, y: ys };
        render(st);
        return;
      }
      const hit = nearest(st, x1, y1);
      const s = hit && st.spec.series[hit[0]];
      if (s && s.keys && st.spec.onClick) st.spec.onClick(s.keys[hit[1]]);
    };
    window.addEventListener("mouseup", st.onMouseUp);
    frame.addEventListener("dblclick", () => { if (st.zoom) { st.zoom = null; render(st); } });
  }

  const states = new WeakMap();
  window.hwplot = {
    draw(div, spec) {
      let st = states.get(div);
      if (!st || !div.contains(st.frame)) { st = build(div); states.set(div, st); }
      if (st.view !== spec.view || spec.view === undefined) st.zoom = null;
      st.view = spec.view;
      st.spec = spec;
      render(st);
    },
    clear(div) {
      const st = states.get(div);
      if (st) {
        if (st.resize) st.resize.disconnect();
        window.removeEventListener("mouseup", st.onMouseUp);
      }
      states.delete(div);
      delete div.hwplot;
      div.classList.remove("hw-plot");
      div.replaceChildren();
    },
  };
})();
