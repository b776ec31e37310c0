// openhcs-nb plate viewer: a plate map coloured by status or a measurement,
// and a well view with channel colours, contrast and label outlines.
// Plain ES module, no build step, no network. The zoomable well canvas is in
// well_view.js, the plate map, its histogram and scatter in plate_map.js,
// histogram.js and feature_plot.js, colours in colors.js, the sources in
// sources.js; viewer.py joins the parts into anywidget's one module.
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
//     (from a widget these three arrive as deltas by custom message; see
//      modelSource in sources.js)
//   measurement: "status" | a measurement name; measurements: string[]
//   plot_x, plot_y: string             the scatter's axes ("": the first two)
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
//   label_mode: "outline" | "filled"  how labels are drawn
// The user sets: selected_well, field, measurement, plot_x, plot_y, channels,
// show_labels, label_mode.
// Optional source.send / source.onMessage carry tile requests (well_view.js).

import { hexToRgb, labelColors } from "./colors.js";
import { h, createPlateMap } from "./plate_map.js";
import { modelSource } from "./sources.js";
import { createWellView } from "./well_view.js";

const VIEW_HELP =
  "wheel: zoom about the cursor; drag: pan; double-click or +: zoom in; " +
  "-: zoom out; 0 or Home: fit. Past the preview's resolution, sharp tiles load.";

const ARRAYS = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array };
// Opacity of filled labels (mirrors _images.FILL_OPACITY).
const FILL_OPACITY = 0.4;

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
 * stretch, then each label layer in a colour far in hue from the visible
 * channels (labelColors): outlines (a labelled pixel with a 4-neighbour of
 * another value) or, labelMode "filled", every labelled pixel at 40%.
 * Mirrors openhcs_nb.jupyter._images.composite_rgb.
 */
export function composeRGBA(planes, width, height, channels, showLabels, labelMode = "outline") {
  const n = width * height;
  const acc = new Float64Array(n * 3);
  const byName = new Map((channels || []).map((c) => [c.name, c]));
  const shown = [];
  for (const p of planes) {
    const c = byName.get(p.name);
    if (p.kind !== "image" || !c || !c.visible) continue;
    shown.push(c.color);
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
  const layers = planes.filter((p) => p.kind === "labels");
  const colors = labelColors(shown, layers.length);
  layers.forEach((p, k) => {
    const rgb = hexToRgb(colors[k]);
    const a = p.array;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const v = a[i];
        if (v === 0) continue;
        if (labelMode === "filled") {
          for (let c = 0; c < 3; c++) out[4 * i + c] = out[4 * i + c] * (1 - FILL_OPACITY) + rgb[c] * FILL_OPACITY;
          continue;
        }
        const edge =
          (x > 0 && a[i - 1] !== v) || (x < width - 1 && a[i + 1] !== v) ||
          (y > 0 && a[i - width] !== v) || (y < height - 1 && a[i + width] !== v);
        if (edge) {
          out[4 * i] = rgb[0];
          out[4 * i + 1] = rgb[1];
          out[4 * i + 2] = rgb[2];
        }
      }
    }
  });
  return out;
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
  const plate = createPlateMap(platePane, source, get);

  const wellPane = h("div", "ohnb-well");
  const wellBar = h("div", "ohnb-bar");
  const wellTitle = h("span", "ohnb-title");
  const fieldPicker = h("select", "ohnb-field");
  fieldPicker.title = "field";
  const labelsToggle = h("label", "ohnb-toggle");
  const labelsBox = h("input");
  labelsBox.type = "checkbox";
  labelsToggle.append(labelsBox, document.createTextNode(" labels"));
  const modePicker = h("select", "ohnb-label-mode");
  modePicker.title = "draw labels as outlines or filled at 40%";
  for (const mode of ["outline", "filled"]) {
    const opt = h("option", "", mode);
    opt.value = mode;
    modePicker.append(opt);
  }
  wellBar.append(wellTitle, fieldPicker, labelsToggle, modePicker);
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
  wellPane.append(wellBar, viewBox, readout, channelBox, message, canvas);
  root.append(platePane, wellPane);
  el.appendChild(root);

  let decoded = null;
  let decodedFrom = null; // the [image_data, image_meta] objects decoded
  let localChannels = null; // channel edits not yet sent (slider drags)

  const channels = () => localChannels || get("channels", []);
  const view = createWellView(viewBox, source, {
    compose: (p, w, hh) => composeRGBA(p, w, hh, channels(), get("show_labels", true), get("label_mode", "outline")),
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
    modePicker.value = get("label_mode", "outline") === "filled" ? "filled" : "outline";
    modePicker.style.display = hasLabels ? "" : "none";
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
    const pixels = composeRGBA(planes(), width, height, channels(), get("show_labels", true), get("label_mode", "outline"));
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
    view.show(planes(), width, height, meta.well, meta.field);
  }

  function editChannel(index, change, commit) {
    const next = channels().map((c, i) => (i === index ? { ...c, ...change } : c));
    localChannels = next;
    draw();
    view.recompose(); // tiles in hand follow the slider too
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

  fieldPicker.addEventListener("change", () => source.set("field", Number(fieldPicker.value)));
  labelsBox.addEventListener("change", () => source.set("show_labels", labelsBox.checked));
  modePicker.addEventListener("change", () => source.set("label_mode", modePicker.value));

  const listen = (keys, fn) => {
    for (const key of keys) offs.push(source.on(key, fn));
  };
  listen(["rows", "columns", "wells", "status", "values", "errors", "measurement", "selected_well", "plate_name", "run_state", "measurements", "plot_x", "plot_y"], plate.render);
  listen(["measurements", "measurement"], plate.renderPicker);
  listen(["image_data", "image_meta"], renderImage);
  listen(["channels"], () => {
    localChannels = null;
    renderChannels();
    draw();
    view.recompose();
  });
  listen(["show_labels", "label_mode"], () => {
    draw();
    view.recompose();
    renderWellBar();
  });
  listen(["selected_well", "field", "fields", "message"], renderWellBar);

  function redraw() {
    plate.reset();
    plate.render();
    plate.renderPicker();
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

export default {
  render({ model, el }) {
    const source = modelSource(model);
    const viewer = createPlateViewer(el, source);
    source.ready(); // the wells come as deltas; this view needs all of them
    return () => {
      viewer.destroy();
      source.close();
    };
  },
};
