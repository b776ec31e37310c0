// openhcs-nb plate viewer: a plate map coloured by status or a measurement,
// and a well view with channel colours, contrast and label outlines.
// Plain ES module, no build step, no network. The zoomable well canvas is in
// well_view.js; viewer.py joins the two files into anywidget's one module.
//
// Two layers:
//  (a) createPlateViewer(el, source): the rendering core. It knows nothing
//      about Jupyter, so a plain web page (an OMERO.web plugin) can reuse it
//      with its own source, e.g. createMemorySource() below.
//  (b) the anywidget adapter (default export): render({ model, el }) builds a
//      source from the widget model and returns a cleanup function.
//
// The source interface:
//   source.get(key)          -> current value of a state key (list below)
//   source.set(key, value)   -> the user changed a key; the source keeps it
//                               (the widget sends it to Python)
//   source.on(key, callback) -> callback() runs after key changed;
//                               returns a function that unsubscribes
//
// State keys:
//   plate_name: string; rows: string[]; columns: number[]; wells: string[]
//   fields: number                     fields (sites) per well
//   status: {well: "queued"|"running"|"done"|"failed"|"cancelled"}
//   errors: {well: string}             why a well failed (tooltips)
//   values: {well: {measurement: number|null}}
//   measurement: "status" | a measurement name; measurements: string[]
//   selected_well: string; field: number; show_labels: boolean
//   message: string                    about the well view (e.g. a fetch error)
//   run_state: string                  the execution's state ("running", "done"...)
//   channels: [{name, color: "#rrggbb", visible, min, max}]
//   image_meta: {well, field, serial, height, width,
//                planes: [{name, kind: "image"|"labels",
//                          dtype: "uint8"|"uint16"|"uint32", offset, vmax}]}
//   image_data: DataView | ArrayBuffer | typed array holding those planes,
//               little-endian, each starting at its byte offset
//   pixel_size: number                 µm per full-resolution pixel (0: unknown)
// The user sets: selected_well, field, measurement, channels, show_labels.
// Optional source.send / source.onMessage carry tile requests (well_view.js).

import { createWellView } from "./well_view.js";

const VIEW_HELP =
  "wheel: zoom about the cursor; drag: pan; double-click or +: zoom in; " +
  "-: zoom out; 0 or Home: fit. Past the preview's resolution, sharp tiles load.";

const STATUS_COLORS = {
  queued: "#c8c8c8",
  running: "#f2c14e",
  done: "#3aa76d",
  failed: "#d64545",
  cancelled: "#7d6b91",
};
// Theme-aware fills (JupyterLab, then VS Code, then plain light defaults).
const EMPTY_COLOR = "var(--jp-layout-color2, var(--vscode-editorWidget-background, #f4f4f4))";
const NO_VALUE_COLOR = "var(--jp-layout-color3, var(--vscode-input-background, #dddddd))";
const LABEL_COLORS = ["#ffff00", "#ff8000", "#00ffff"];
const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];
const ARRAYS = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array };

/** Viridis colour of t in [0, 1] as "rgb(r, g, b)". */
export function viridis(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const pos = x * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(pos));
  const f = pos - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** "#ff8000" -> [255, 128, 0]. */
export function hexToRgb(hex) {
  const s = String(hex || "#ffffff").replace("#", "");
  return [0, 2, 4].map((i) => parseInt(s.slice(i, i + 2), 16) || 0);
}

/** A Uint8Array over any binary value anywidget or a page may hand us. */
export function toBytes(data) {
  if (!data) return new Uint8Array(0);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  return new Uint8Array(0);
}

/** Typed-array views of the planes image_meta describes (copied, so aligned). */
export function decodePlanes(data, meta) {
  const bytes = toBytes(data);
  const n = (meta.height || 0) * (meta.width || 0);
  const planes = [];
  for (const p of meta.planes || []) {
    const Arr = ARRAYS[p.dtype];
    if (!Arr) throw new Error(`plane ${p.name}: unknown dtype ${p.dtype}`);
    const size = n * Arr.BYTES_PER_ELEMENT;
    if (p.offset + size > bytes.byteLength) {
      throw new Error(`plane ${p.name}: buffer too short (${bytes.byteLength} bytes)`);
    }
    const copy = bytes.slice(p.offset, p.offset + size);
    planes.push({ name: p.name, kind: p.kind, vmax: p.vmax, array: new Arr(copy.buffer, 0, n) });
  }
  return planes;
}

/**
 * RGBA pixels: visible channels mixed additively after a linear contrast
 * stretch, then label outlines (a labelled pixel with a 4-neighbour of another
 * value). Mirrors openhcs_nb.jupyter._images.composite_rgb.
 */
export function composeRGBA(planes, width, height, channels, showLabels) {
  const n = width * height;
  const acc = new Float64Array(n * 3);
  const byName = new Map((channels || []).map((c) => [c.name, c]));
  for (const p of planes) {
    const c = byName.get(p.name);
    if (p.kind !== "image" || !c || !c.visible) continue;
    const [r, g, b] = hexToRgb(c.color);
    const lo = Number(c.min);
    const span = Number(c.max) > lo ? Number(c.max) - lo : 1;
    const a = p.array;
    for (let i = 0; i < n; i++) {
      let v = (a[i] - lo) / span;
      v = v < 0 ? 0 : v > 1 ? 1 : v;
      acc[3 * i] += v * r;
      acc[3 * i + 1] += v * g;
      acc[3 * i + 2] += v * b;
    }
  }
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    out[4 * i] = acc[3 * i];
    out[4 * i + 1] = acc[3 * i + 1];
    out[4 * i + 2] = acc[3 * i + 2];
    out[4 * i + 3] = 255;
  }
  if (!showLabels) return out;
  let k = 0;
  for (const p of planes) {
    if (p.kind !== "labels") continue;
    const [r, g, b] = hexToRgb(LABEL_COLORS[k++ % LABEL_COLORS.length]);
    const a = p.array;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const v = a[i];
        if (v === 0) continue;
        const edge =
          (x > 0 && a[i - 1] !== v) || (x < width - 1 && a[i + 1] !== v) ||
          (y > 0 && a[i - width] !== v) || (y < height - 1 && a[i + width] !== v);
        if (edge) {
          out[4 * i] = r;
          out[4 * i + 1] = g;
          out[4 * i + 2] = b;
        }
      }
    }
  }
  return out;
}

/** A source over a plain object, for pages outside Jupyter (and tests). */
export function createMemorySource(initial = {}) {
  const state = { ...initial };
  const subscribers = new Map();
  const source = {
    get: (key) => state[key],
    set(key, value) {
      state[key] = value;
      for (const cb of [...(subscribers.get(key) || [])]) cb();
    },
    on(key, cb) {
      if (!subscribers.has(key)) subscribers.set(key, new Set());
      subscribers.get(key).add(cb);
      return () => subscribers.get(key).delete(cb);
    },
    update(values) {
      for (const [key, value] of Object.entries(values)) source.set(key, value);
    },
  };
  return source;
}

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatValue(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(4);
}

function measurementRange(values, name) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of Object.values(values || {})) {
    const v = row ? row[name] : undefined;
    if (typeof v === "number" && Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/** Build the viewer inside el; returns {destroy(), redraw()}. */
export function createPlateViewer(el, source) {
  const get = (k, fallback) => {
    const v = source.get(k);
    return v === undefined || v === null ? fallback : v;
  };
  const offs = [];
  const root = h("div", "ohnb-root");
  const platePane = h("div", "ohnb-plate");
  const plateBar = h("div", "ohnb-bar");
  const title = h("span", "ohnb-title");
  const runState = h("span", "ohnb-state");
  const picker = h("select", "ohnb-measurement");
  picker.title = "colour wells by";
  plateBar.append(title, runState, picker);
  const grid = h("div", "ohnb-grid");
  const legend = h("div", "ohnb-legend");
  platePane.append(plateBar, grid, legend);

  const wellPane = h("div", "ohnb-well");
  const wellBar = h("div", "ohnb-bar");
  const wellTitle = h("span", "ohnb-title");
  const fieldPicker = h("select", "ohnb-field");
  fieldPicker.title = "field";
  const labelsToggle = h("label", "ohnb-toggle");
  const labelsBox = h("input");
  labelsBox.type = "checkbox";
  labelsToggle.append(labelsBox, document.createTextNode(" labels"));
  wellBar.append(wellTitle, fieldPicker, labelsToggle);
  // The composite at the preview's own size (what composite_rgb gives), kept
  // off screen; the zoomable view draws it scaled, then any tiles on top.
  const canvas = h("canvas", "ohnb-base");
  canvas.width = 1;
  canvas.height = 1;
  const viewBox = h("div", "ohnb-view");
  const scaleBar = h("div", "ohnb-scalebar");
  const readout = h("div", "ohnb-readout");
  const channelBox = h("div", "ohnb-channels");
  const message = h("div", "ohnb-message");
  wellPane.append(wellBar, viewBox, readout, channelBox, message);
  root.append(platePane, wellPane);
  el.appendChild(root);

  let cells = new Map();
  let gridKey = "";
  let decoded = null;
  let decodedFrom = null; // the [image_data, image_meta] objects decoded
  let localChannels = null; // channel edits not yet sent (slider drags)

  const channels = () => localChannels || get("channels", []);
  const view = createWellView(viewBox, source, {
    compose: (p, w, hh) => composeRGBA(p, w, hh, channels(), get("show_labels", true)),
    decode: decodePlanes,
    visible: (name) => channels().some((c) => c.name === name && c.visible),
    pixelSize: () => Number(get("pixel_size", 0)) || 0,
    readout: (text) => { readout.textContent = text; },
    scaleBar(text, px) {
      scaleBar.textContent = text;
      scaleBar.style.width = `${Math.max(1, Math.round(px))}px`;
    },
  });
  view.canvas.title = VIEW_HELP;
  viewBox.append(scaleBar);

  function buildGrid() {
    const rows = get("rows", []);
    const columns = get("columns", []);
    const wells = get("wells", []);
    const key = JSON.stringify([rows, columns, wells]);
    if (key === gridKey) return;
    gridKey = key;
    grid.replaceChildren();
    cells = new Map();
    grid.style.gridTemplateColumns = `auto repeat(${columns.length}, minmax(14px, 1fr))`;
    grid.append(h("div", "ohnb-head"));
    for (const c of columns) grid.append(h("div", "ohnb-head", String(c)));
    const present = new Set(wells);
    for (const r of rows) {
      grid.append(h("div", "ohnb-head", r));
      for (const c of columns) {
        const well = `${r}${String(c).padStart(2, "0")}`;
        const cell = h("div", "ohnb-cell");
        cell.dataset.well = well;
        if (present.has(well)) {
          cell.addEventListener("click", () => source.set("selected_well", well));
        } else {
          cell.classList.add("ohnb-absent");
        }
        cells.set(well, cell);
        grid.append(cell);
      }
    }
  }

  function renderPlate() {
    buildGrid();
    title.textContent = get("plate_name", "");
    runState.textContent = get("run_state", "");
    const status = get("status", {});
    const values = get("values", {});
    const errors = get("errors", {});
    const m = get("measurement", "status");
    const range = m === "status" ? null : measurementRange(values, m);
    const selected = get("selected_well", "");
    for (const [well, cell] of cells) {
      const st = status[well];
      const row = values[well] || {};
      let color = st ? STATUS_COLORS[st] || EMPTY_COLOR : EMPTY_COLOR;
      if (m !== "status") {
        const v = row[m];
        color = typeof v === "number" && Number.isFinite(v) && range
          ? viridis(range[1] > range[0] ? (v - range[0]) / (range[1] - range[0]) : 0.5)
          : NO_VALUE_COLOR;
      }
      if (cell.classList.contains("ohnb-absent")) color = "transparent";
      cell.style.background = color;
      cell.classList.toggle("ohnb-failed", st === "failed");
      cell.classList.toggle("ohnb-selected", well === selected);
      const lines = [`${well}: ${st || "no data"}`];
      for (const [k, v] of Object.entries(row)) lines.push(`${k}: ${formatValue(v)}`);
      if (errors[well]) lines.push(errors[well]);
      cell.title = lines.join("\n");
    }
    renderLegend(m, range, status);
  }

  function renderLegend(m, range, status) {
    legend.replaceChildren();
    if (m === "status") {
      const counts = {};
      for (const st of Object.values(status)) counts[st] = (counts[st] || 0) + 1;
      for (const [st, color] of Object.entries(STATUS_COLORS)) {
        const item = h("span", "ohnb-key");
        const swatch = h("span", "ohnb-swatch");
        swatch.style.background = color;
        item.append(swatch, document.createTextNode(`${st} ${counts[st] || 0}`));
        legend.append(item);
      }
      return;
    }
    if (!range) {
      legend.append(h("span", "ohnb-key", `${m}: no values yet`));
      return;
    }
    const stops = VIRIDIS.map((_, i) => viridis(i / (VIRIDIS.length - 1))).join(", ");
    const bar = h("span", "ohnb-gradient");
    bar.style.background = `linear-gradient(to right, ${stops})`;
    legend.append(h("span", "ohnb-key", formatValue(range[0])), bar, h("span", "ohnb-key", formatValue(range[1])));
  }

  function renderPicker() {
    const names = ["status", ...get("measurements", [])];
    const current = get("measurement", "status");
    picker.replaceChildren(...names.map((n) => {
      const opt = h("option", "", n);
      opt.value = n;
      return opt;
    }));
    picker.value = names.includes(current) ? current : "status";
  }

  function renderWellBar() {
    const meta = get("image_meta", {});
    const well = get("selected_well", "");
    wellTitle.textContent = well ? `${well}` : "click a well";
    const fields = Math.max(1, get("fields", 1));
    fieldPicker.replaceChildren(...Array.from({ length: fields }, (_, i) => {
      const opt = h("option", "", `field ${i}`);
      opt.value = String(i);
      return opt;
    }));
    fieldPicker.value = String(get("field", 0));
    fieldPicker.style.display = fields > 1 ? "" : "none";
    labelsBox.checked = Boolean(get("show_labels", true));
    const hasLabels = (meta.planes || []).some((p) => p.kind === "labels");
    labelsToggle.style.display = hasLabels ? "" : "none";
    message.textContent = get("message", "");
  }

  // Decoded planes of the current image_data and image_meta. The cache is
  // checked against the objects themselves, not only cleared by change
  // events: whichever key's event comes first (channels, meta or data), a
  // draw never uses the planes of an earlier image.
  function planes() {
    const data = source.get("image_data");
    const meta = get("image_meta", {});
    if (decoded && decodedFrom[0] === data && decodedFrom[1] === meta) return decoded;
    decodedFrom = [data, meta];
    try {
      decoded = decodePlanes(data, meta);
    } catch (err) {
      decoded = [];
      message.textContent = String(err);
    }
    return decoded;
  }

  function draw() {
    const meta = get("image_meta", {});
    const width = meta.width || 0;
    const height = meta.height || 0;
    if (!width || !height) {
      canvas.width = 1;
      canvas.height = 1;
      view.canvas.classList.add("ohnb-empty");
      view.show([], 0, 0, meta.well, meta.field);
      return;
    }
    view.canvas.classList.remove("ohnb-empty");
    const pixels = composeRGBA(planes(), width, height, channels(), get("show_labels", true));
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
    view.show(planes(), width, height, meta.well, meta.field);
  }

  function editChannel(index, change, commit) {
    const next = channels().map((c, i) => (i === index ? { ...c, ...change } : c));
    localChannels = next;
    draw();
    if (commit) {
      localChannels = null;
      source.set("channels", next);
    }
  }

  function renderChannels() {
    const shown = new Map(planes().filter((p) => p.kind === "image").map((p) => [p.name, p]));
    channelBox.replaceChildren();
    channels().forEach((c, index) => {
      const plane = shown.get(c.name);
      if (!plane) return;
      const limit = Math.max(1, plane.vmax, Number(c.max) || 0, plane.array instanceof Uint8Array ? 255 : 0);
      const row = h("div", "ohnb-channel");
      const visible = h("input");
      visible.type = "checkbox";
      visible.checked = Boolean(c.visible);
      visible.title = `show ${c.name}`;
      visible.addEventListener("change", () => editChannel(index, { visible: visible.checked }, true));
      const color = h("input");
      color.type = "color";
      color.value = c.color;
      color.addEventListener("input", () => editChannel(index, { color: color.value }, false));
      color.addEventListener("change", () => editChannel(index, { color: color.value }, true));
      // The contrast window in numbers, kept in step while a slider moves.
      const limits = h("span", "ohnb-limits", `${c.min}–${c.max}`);
      limits.title = `${c.name} contrast limits`;
      const showLimits = () => {
        const now = channels()[index];
        limits.textContent = `${now.min}–${now.max}`;
      };
      const sliders = ["min", "max"].map((key) => {
        const s = h("input", "ohnb-slider");
        s.type = "range";
        s.min = "0";
        s.max = String(limit);
        s.step = "1";
        s.value = String(c[key]);
        s.title = `${c.name} contrast ${key}`;
        s.addEventListener("input", () => {
          editChannel(index, { [key]: Number(s.value) }, false);
          showLimits();
        });
        s.addEventListener("change", () => editChannel(index, { [key]: Number(s.value) }, true));
        return s;
      });
      row.append(visible, h("span", "ohnb-name", c.name), color, ...sliders, limits);
      channelBox.append(row);
    });
  }

  function renderImage() {
    decoded = null;
    renderChannels();
    draw();
    renderWellBar();
  }

  picker.addEventListener("change", () => source.set("measurement", picker.value));
  fieldPicker.addEventListener("change", () => source.set("field", Number(fieldPicker.value)));
  labelsBox.addEventListener("change", () => source.set("show_labels", labelsBox.checked));

  const listen = (keys, fn) => {
    for (const key of keys) offs.push(source.on(key, fn));
  };
  listen(["rows", "columns", "wells", "status", "values", "errors", "measurement", "selected_well", "plate_name", "run_state"], renderPlate);
  listen(["measurements", "measurement"], renderPicker);
  listen(["image_data", "image_meta"], renderImage);
  listen(["channels"], () => {
    localChannels = null;
    renderChannels();
    draw();
    view.recompose();
  });
  listen(["show_labels"], () => {
    draw();
    view.recompose();
    renderWellBar();
  });
  listen(["selected_well", "field", "fields", "message"], renderWellBar);

  function redraw() {
    gridKey = "";
    renderPlate();
    renderPicker();
    renderImage();
  }
  redraw();
  return {
    redraw,
    view: () => view.view(),
    destroy() {
      for (const off of offs) off();
      view.destroy();
      root.remove();
    },
  };
}

/** A source over an anywidget model (state keys, plus custom messages for tiles). */
export function modelSource(model) {
  return {
    get: (key) => model.get(key),
    set(key, value) {
      model.set(key, value);
      model.save_changes();
    },
    on(key, cb) {
      const event = `change:${key}`;
      model.on(event, cb);
      return () => model.off(event, cb);
    },
    send: (content) => model.send(content),
    onMessage(cb) {
      const handler = (content, buffers) => cb(content, buffers);
      model.on("msg:custom", handler);
      return () => model.off("msg:custom", handler);
    },
  };
}

export default {
  render({ model, el }) {
    const viewer = createPlateViewer(el, modelSource(model));
    return () => viewer.destroy();
  },
};
