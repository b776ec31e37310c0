// openhcs-nb well view: a zoomable canvas that draws the preview at fit and
// full-resolution tiles, fetched on demand, once the zoom passes it.
// Plain ES module; its one import is joined in by viewer.py (before
// plate_viewer.js).
//
// Conventions (napari / OpenSeadragon): wheel zooms about the cursor, drag
// pans, double-click zooms in, "+"/"-" zoom, "0" or Home fits.
//
// Object inspection (object_inspect.js): the label ids under the cursor are
// read from the labels planes in hand (level-0 or coarser tiles, else the
// preview; both subsample labels, so an id is always a real object's). Hover
// highlights those objects and shows their measurements; click pins them;
// Escape or a click on background clears.
//
// Tiles travel as messages, through two optional source functions:
//   source.send(content)              ask the server ({type: "pyramid"|"tile"|"cancel"})
//   source.onMessage(cb(content, buffers)) -> unsubscribe
// A reply whose id is no longer pending (another well, field or level, or
// scrolled off) is dropped, so a stale tile can never land.

import { createObjectInspector } from "./object_inspect.js";

const ZOOM_STEP = 1.25;
const MAX_SCALE = 32; // screen pixels per full-resolution pixel
const HIGHLIGHT = [255, 255, 255, 150]; // RGBA over the inspected objects
const CLICK_SLOP = 4; // screen pixels a click may move and still be a click

/** Nice scale-bar length (1, 2 or 5 x 10^k) near `target` units. */
export function niceLength(target) {
  if (!(target > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(target));
  for (const m of [5, 2, 1]) if (m * p <= target) return m * p;
  return p;
}

/** The pyramid level whose pixels are closest to, but no coarser than, the screen's. */
export function levelFor(scale, levels) {
  const n = levels.length;
  if (!n || !(scale > 0)) return 0;
  let best = 0;
  for (let i = 0; i < n; i++) {
    const factor = levels[0][1] / levels[i][1];
    if (factor <= 1 / scale + 1e-9) best = i;
  }
  return best;
}

/** Tiles [ty, tx] of a level (shape [h, w], factor to full res) covering a full-res rect. */
export function visibleTiles(rect, shape, factor, size) {
  const [h, w] = shape;
  const x0 = Math.max(0, Math.floor(rect.x / factor / size));
  const y0 = Math.max(0, Math.floor(rect.y / factor / size));
  const x1 = Math.min(Math.ceil(w / size) - 1, Math.floor((rect.x + rect.w) / factor / size));
  const y1 = Math.min(Math.ceil(h / size) - 1, Math.floor((rect.y + rect.h) / factor / size));
  const out = [];
  for (let ty = y0; ty <= y1; ty++) for (let tx = x0; tx <= x1; tx++) out.push([ty, tx]);
  return out;
}

/** Objects [{set, label}] at pixel `i` of `planes`' labels (0 is background). */
export function labelHits(planes, i) {
  const hits = [];
  for (const p of planes) {
    if (p.kind !== "labels") continue;
    const label = p.array[i];
    if (label) hits.push({ set: p.name, label });
  }
  return hits;
}

/** RGBA that covers the pixels of `targets` ([{set, label}]) in `planes`. */
export function highlightPixels(planes, width, height, targets) {
  const out = new Uint8ClampedArray(width * height * 4);
  for (const t of targets) {
    const plane = planes.find((p) => p.kind === "labels" && p.name === t.set);
    if (!plane) continue;
    const a = plane.array;
    for (let i = 0; i < width * height; i++) {
      if (a[i] === t.label) out.set(HIGHLIGHT, 4 * i);
    }
  }
  return out;
}

function rgbaCanvas(pixels, width, height) {
  const c = document.createElement("canvas");
  c.width = width;
  c.height = height;
  c.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
  return c;
}

/**
 * Build the zoomable view in `box`. `opts.compose(planes, w, h)` -> RGBA,
 * `opts.decode(buffer, meta)` -> planes, `opts.readout(text)`,
 * `opts.scaleBar(text, px)`, `opts.pixelSize()` (µm or 0).
 */
export function createWellView(box, source, opts) {
  const canvas = document.createElement("canvas");
  canvas.className = "ohnb-canvas";
  canvas.tabIndex = 0;
  canvas.width = 1;
  canvas.height = 1;
  box.append(canvas);
  const inspector = createObjectInspector(box, source);
  const highlights = new WeakMap(); // preview or tile -> {sig, canvas}
  let preview = null; // {canvas, planes, width, height}
  let key = ""; // "well|field" shown
  let levels = []; // [[h, w], ...] of the full image, level 0 first
  let tileSize = 256;
  let scale = 1;
  let ox = 0;
  let oy = 0;
  let nextId = 1;
  const pending = new Map(); // id -> tile key
  const tiles = new Map(); // tile key -> {level, ty, tx, planes, width, height, canvas}
  const full = () => (levels.length ? [levels[0][0], levels[0][1]] : preview ? [preview.height, preview.width] : [0, 0]);
  const viewSize = () => [canvas.width, canvas.height];

  function fitScale() {
    const [h, w] = full();
    const [cw, ch] = viewSize();
    return h && w ? Math.min(cw / w, ch / h) : 1;
  }

  function resize() {
    const [h, w] = full();
    const width = Math.max(1, Math.round(box.clientWidth || 512));
    canvas.width = width;
    canvas.height = h && w ? Math.max(1, Math.round((width * h) / w)) : 1;
  }

  function fit() {
    scale = fitScale();
    ox = 0;
    oy = 0;
    update();
  }

  function zoomAt(factor, sx, sy) {
    const fitted = fitScale();
    const next = Math.min(MAX_SCALE, Math.max(fitted, scale * factor));
    const fx = ox + sx / scale;
    const fy = oy + sy / scale;
    scale = next;
    ox = fx - sx / scale;
    oy = fy - sy / scale;
    clamp();
    update();
  }

  function clamp() {
    const [h, w] = full();
    const [cw, ch] = viewSize();
    ox = Math.min(Math.max(0, w - cw / scale), Math.max(0, ox));
    oy = Math.min(Math.max(0, h - ch / scale), Math.max(0, oy));
  }

  function visibleRect() {
    const [cw, ch] = viewSize();
    return { x: ox, y: oy, w: cw / scale, h: ch / scale };
  }

  function wantedLevel() {
    if (!levels.length || !preview) return -1;
    const level = levelFor(scale, levels);
    return levels[level][1] > preview.width ? level : -1; // finer than the preview
  }

  function request() {
    const level = wantedLevel();
    const wanted = new Set();
    if (level >= 0) {
      const factor = levels[0][1] / levels[level][1];
      for (const [ty, tx] of visibleTiles(visibleRect(), levels[level], factor, tileSize)) {
        const k = `${key}|${level}|${ty}|${tx}`;
        wanted.add(k);
        if (tiles.has(k) || [...pending.values()].includes(k)) continue;
        const id = nextId++;
        pending.set(id, k);
        const [well, field] = key.split("|");
        source.send({ type: "tile", id, well, field: Number(field), level, ty, tx });
      }
    }
    const gone = [...pending].filter(([, k]) => !wanted.has(k) && !k.startsWith("pyramid|"));
    if (gone.length) {
      for (const [id] of gone) pending.delete(id);
      source.send({ type: "cancel", ids: gone.map(([id]) => id) });
    }
  }

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!preview) return;
    const [h, w] = full();
    ctx.imageSmoothingEnabled = scale < 1; // sharp pixels beyond 1:1
    ctx.drawImage(preview.canvas, -ox * scale, -oy * scale, w * scale, h * scale);
    const lit = highlightOf(preview);
    if (lit) ctx.drawImage(lit, -ox * scale, -oy * scale, w * scale, h * scale);
    const level = wantedLevel();
    for (const t of tiles.values()) {
      if (t.level !== level) continue;
      const f = levels[0][1] / levels[t.level][1];
      const x = (t.tx * tileSize * f - ox) * scale;
      const y = (t.ty * tileSize * f - oy) * scale;
      ctx.drawImage(t.canvas, x, y, t.width * f * scale, t.height * f * scale);
      const tileLit = highlightOf(t);
      if (tileLit) ctx.drawImage(tileLit, x, y, t.width * f * scale, t.height * f * scale);
    }
    const size = opts.pixelSize();
    const unit = size > 0 ? "µm" : "px";
    const length = niceLength((100 / scale) * (size > 0 ? size : 1));
    opts.scaleBar(`${length} ${unit}`, (length / (size > 0 ? size : 1)) * scale);
  }

  /** The highlight canvas of a preview or tile for the inspected objects, or null. */
  function highlightOf(item) {
    const targets = inspector.targets();
    if (!targets.length) return null;
    const sig = targets.map((t) => `${t.set}|${t.label}`).join(" ");
    const known = highlights.get(item);
    if (known && known.sig === sig) return known.canvas;
    const canvas = rgbaCanvas(highlightPixels(item.planes, item.width, item.height, targets), item.width, item.height);
    highlights.set(item, { sig, canvas });
    return canvas;
  }

  function update() {
    if (source.send) request();
    draw();
  }

  /** [planes, index, where] of the finest pixel in hand under full-res (x, y), or null. */
  function pixelAt(x, y) {
    const [h, w] = full();
    if (!preview || x < 0 || y < 0 || x >= w || y >= h) return null;
    const level = wantedLevel();
    let hit = null;
    for (const t of tiles.values()) {
      if (t.level !== level) continue;
      const f = levels[0][1] / levels[t.level][1];
      const lx = Math.floor(x / f) - t.tx * tileSize;
      const ly = Math.floor(y / f) - t.ty * tileSize;
      if (lx >= 0 && ly >= 0 && lx < t.width && ly < t.height) hit = [t.planes, ly * t.width + lx, `level ${t.level}`];
    }
    if (!hit) {
      const px = Math.floor((x * preview.width) / w);
      const py = Math.floor((y * preview.height) / h);
      hit = [preview.planes, py * preview.width + px, preview.width < w ? "preview" : ""];
    }
    return hit;
  }

  const fullAt = (sx, sy) => [Math.floor(ox + sx / scale), Math.floor(oy + sy / scale)];

  /** The objects under screen point (sx, sy). */
  function hitsAt(sx, sy) {
    const hit = pixelAt(...fullAt(sx, sy));
    return hit ? labelHits(hit[0], hit[1]) : [];
  }

  function readout(sx, sy) {
    const [x, y] = fullAt(sx, sy);
    const hit = pixelAt(x, y);
    if (!hit) return opts.readout("");
    const [planes, i, where] = hit;
    const values = planes.filter((p) => p.kind === "image" && opts.visible(p.name)).map((p) => `${p.name} ${p.array[i]}`);
    const tag = where && where !== "level 0" ? ` (${where})` : "";
    opts.readout(`x ${x}, y ${y}: ${values.join(", ")}${tag}`);
  }

  function onMessage(content, buffers) {
    if (!content || content.type === "objects" || !pending.has(content.id)) return; // stale, cancelled or not a tile
    const k = pending.get(content.id);
    pending.delete(content.id);
    if (content.error) return opts.readout(content.error);
    if (content.type === "pyramid") {
      if (k !== `pyramid|${key}`) return;
      const first = Object.values(content.levels || {})[0];
      levels = first || [];
      tileSize = content.tile || 256;
      resize();
      fit();
      return;
    }
    if (!k.startsWith(`${key}|`)) return;
    const meta = content.meta;
    const planes = opts.decode(buffers && buffers[0], meta);
    const tile = { level: content.level, ty: content.ty, tx: content.tx, planes, width: meta.width, height: meta.height };
    tile.canvas = rgbaCanvas(opts.compose(planes, meta.width, meta.height), meta.width, meta.height);
    tiles.set(k, tile);
    draw();
  }

  let drag = null;
  let downAt = null; // where the last press was, to tell a click from a drag
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / (r.width || 1), ((e.clientY - r.top) * canvas.height) / (r.height || 1)];
  };
  const listeners = [
    ["wheel", (e) => { e.preventDefault(); const [x, y] = at(e); zoomAt(e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, x, y); }],
    ["dblclick", (e) => { const [x, y] = at(e); zoomAt(2, x, y); }],
    ["mousedown", (e) => { drag = [e.clientX, e.clientY, ox, oy]; downAt = [e.clientX, e.clientY]; canvas.focus(); }],
    ["click", (e) => {
      if (downAt && Math.hypot(e.clientX - downAt[0], e.clientY - downAt[1]) > CLICK_SLOP) return; // a drag
      if (inspector.click(hitsAt(...at(e)))) draw();
    }],
    ["mousemove", (e) => {
      const [x, y] = at(e);
      if (drag) {
        const r = canvas.getBoundingClientRect();
        const k = canvas.width / (r.width || 1) / scale;
        ox = drag[2] - (e.clientX - drag[0]) * k;
        oy = drag[3] - (e.clientY - drag[1]) * k;
        clamp();
        update();
      }
      readout(x, y);
      if (!drag && inspector.hover(hitsAt(x, y))) draw();
    }],
    ["mouseup", () => { drag = null; }],
    ["mouseleave", () => { drag = null; opts.readout(""); if (inspector.hover([])) draw(); }],
    ["keydown", (e) => {
      const [cw, ch] = viewSize();
      if (e.key === "+" || e.key === "=") zoomAt(ZOOM_STEP, cw / 2, ch / 2);
      else if (e.key === "-") zoomAt(1 / ZOOM_STEP, cw / 2, ch / 2);
      else if (e.key === "0" || e.key === "Home") fit();
      else if (e.key === "Escape") { if (inspector.clear()) draw(); }
      else return;
      e.preventDefault();
    }],
  ];
  for (const [name, fn] of listeners) canvas.addEventListener(name, fn, name === "wheel" ? { passive: false } : undefined);
  const off = source.onMessage ? source.onMessage(onMessage) : () => {};

  return {
    canvas,
    /** Show a new preview; a new well or field drops tiles and asks for its pyramid. */
    show(planes, width, height, well, field) {
      const next = `${well}|${field}`;
      preview = width && height ? { planes, width, height, canvas: rgbaCanvas(opts.compose(planes, width, height), width, height) } : null;
      inspector.setView(well, field, planes.some((p) => p.kind === "labels"));
      if (next !== key || !preview) {
        if (pending.size && source.send) source.send({ type: "cancel", ids: [...pending.keys()] });
        pending.clear();
        tiles.clear();
        levels = [];
        key = next;
        resize();
        fit();
        if (preview && source.send) {
          const id = nextId++;
          pending.set(id, `pyramid|${key}`);
          source.send({ type: "pyramid", id, well, field });
        }
      } else {
        draw();
      }
    },
    /** Channels or labels changed: recompose what is in hand. */
    recompose() {
      if (preview) preview.canvas = rgbaCanvas(opts.compose(preview.planes, preview.width, preview.height), preview.width, preview.height);
      for (const t of tiles.values()) t.canvas = rgbaCanvas(opts.compose(t.planes, t.width, t.height), t.width, t.height);
      draw();
    },
    view: () => ({ scale, ox, oy, level: wantedLevel(), pending: pending.size, tiles: tiles.size, inspected: inspector.targets() }),
    destroy() { off(); inspector.destroy(); canvas.remove(); },
  };
}
