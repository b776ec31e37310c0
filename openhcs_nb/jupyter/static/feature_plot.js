// openhcs-nb plate viewer: features across wells beside the plate map. A
// scatter of two chosen per-well measurements (one point per well, coloured
// like its plate-map cell), drawn on a canvas; hovering a point names the
// well and its values, clicking it selects the well as the plate map does.
// Also groups the measurement names for the pickers. Plain ES module.
//
// Mapping (the browser tests rely on it): a value v of an axis whose finite
// values span [lo, hi] sits at PAD.left + (v - lo) / (hi - lo) * plot width
// (the middle when lo == hi); y grows upwards. Canvas pixels = CSS pixels.

import { NO_VALUE_COLOR, STATUS_COLORS, EMPTY_COLOR, viridis } from "./colors.js";

export const PLOT = { width: 240, height: 180, left: 34, right: 8, top: 8, bottom: 22 };
const RADIUS = 3;
const HIT = 7; // px: how near the pointer must be to a point

/**
 * Measurement names in groups for a <select>: [{label, names}].
 * An object set is known by its "<set>_count" (cells_count); its features
 * are "<set>_...". Names with no set prefix that are counts or aggregates
 * (count, area_mean, ..._median, ..._std) belong to the first object set
 * ("objects"); anything else (fields_failing_qc) is about the well ("well").
 */
export function groupMeasurements(names) {
  const sets = names
    .filter((n) => n.endsWith("_count") && n !== "count")
    .map((n) => n.slice(0, -"_count".length))
    .sort((a, b) => b.length - a.length);
  const groups = new Map([["objects", []]]);
  const rest = [];
  for (const name of names) {
    const set = sets.find((s) => name.startsWith(`${s}_`));
    if (set) {
      if (!groups.has(set)) groups.set(set, []);
      groups.get(set).push(name);
    } else if (name === "count" || /_(mean|median|std)$/.test(name)) {
      groups.get("objects").push(name);
    } else {
      rest.push(name);
    }
  }
  const out = [...groups].filter(([, n]) => n.length).map(([label, n]) => ({ label, names: n }));
  if (rest.length) out.push({ label: "well", names: rest });
  return out;
}

/** Fill `select` with grouped options (after any `first` plain options). */
export function fillPicker(select, names, current, first = []) {
  const option = (n) => {
    const opt = document.createElement("option");
    opt.value = n;
    opt.textContent = n;
    return opt;
  };
  const nodes = first.map(option);
  for (const group of groupMeasurements(names)) {
    const node = document.createElement("optgroup");
    node.label = group.label;
    node.append(...group.names.map(option));
    nodes.push(node);
  }
  select.replaceChildren(...nodes);
  const all = [...first, ...names];
  select.value = all.includes(current) ? current : all[0] || "";
}

function finiteRange(values, name) {
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

/** Where value v of range [lo, hi] falls along a span of `size` px. */
function place(v, [lo, hi], size) {
  return hi > lo ? ((v - lo) / (hi - lo)) * size : size / 2;
}

/**
 * The scatter inside `box`; `source` and `get` as in createPlateMap, and
 * `format` writes a value. Returns {render}.
 */
export function createFeaturePlot(box, source, get, format) {
  const bar = document.createElement("div");
  bar.className = "ohnb-plot-bar";
  const pickX = document.createElement("select");
  pickX.className = "ohnb-plot-x";
  pickX.title = "scatter: x axis";
  const pickY = document.createElement("select");
  pickY.className = "ohnb-plot-y";
  pickY.title = "scatter: y axis";
  bar.append("x ", pickX, " y ", pickY);
  const canvas = document.createElement("canvas");
  canvas.className = "ohnb-scatter";
  canvas.width = PLOT.width;
  canvas.height = PLOT.height;
  const hover = document.createElement("div");
  hover.className = "ohnb-plot-hover";
  box.append(bar, canvas, hover);
  let points = []; // [{well, x, y, px, py}]

  const axes = () => {
    const names = get("measurements", []);
    const x = names.includes(get("plot_x", "")) ? get("plot_x", "") : names[0];
    const fallbackY = names.find((n) => n !== x) || x;
    const y = names.includes(get("plot_y", "")) ? get("plot_y", "") : fallbackY;
    return [names, x, y];
  };

  function colorOf(well, values, status, by, range) {
    if (by === "status") return STATUS_COLORS[status[well]] || EMPTY_COLOR;
    const v = (values[well] || {})[by];
    if (!(typeof v === "number" && Number.isFinite(v)) || !range) return NO_VALUE_COLOR;
    return viridis(range[1] > range[0] ? (v - range[0]) / (range[1] - range[0]) : 0.5);
  }

  function render() {
    const [names, xName, yName] = axes();
    box.style.display = names.length ? "" : "none";
    if (!names.length) return;
    fillPicker(pickX, names, xName);
    fillPicker(pickY, names, yName);
    const values = get("values", {});
    const status = get("status", {});
    const by = get("measurement", "status");
    const selected = get("selected_well", "");
    const xr = finiteRange(values, xName);
    const yr = finiteRange(values, yName);
    const byRange = by === "status" ? null : finiteRange(values, by);
    const w = PLOT.width - PLOT.left - PLOT.right;
    const hgt = PLOT.height - PLOT.top - PLOT.bottom;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const ink = getComputedStyle(box).color || "#444";
    ctx.strokeStyle = ink;
    ctx.fillStyle = ink;
    ctx.globalAlpha = 0.6;
    ctx.beginPath();
    ctx.moveTo(PLOT.left - 0.5, PLOT.top);
    ctx.lineTo(PLOT.left - 0.5, PLOT.top + hgt + 0.5);
    ctx.lineTo(PLOT.left + w, PLOT.top + hgt + 0.5);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.font = "10px sans-serif";
    points = [];
    if (xr && yr) {
      ctx.textAlign = "left";
      ctx.fillText(format(xr[0]), PLOT.left, PLOT.height - 6);
      ctx.textAlign = "right";
      ctx.fillText(format(xr[1]), PLOT.left + w, PLOT.height - 6);
      ctx.fillText(format(yr[1]), PLOT.left - 3, PLOT.top + 8);
      ctx.fillText(format(yr[0]), PLOT.left - 3, PLOT.top + hgt);
      for (const [well, row] of Object.entries(values)) {
        const x = row ? row[xName] : undefined;
        const y = row ? row[yName] : undefined;
        if (!(typeof x === "number" && Number.isFinite(x) && typeof y === "number" && Number.isFinite(y))) continue;
        const px = PLOT.left + place(x, xr, w);
        const py = PLOT.top + hgt - place(y, yr, hgt);
        points.push({ well, x, y, px, py });
        ctx.fillStyle = colorOf(well, values, status, by, byRange);
        ctx.beginPath();
        ctx.arc(px, py, RADIUS, 0, 2 * Math.PI);
        ctx.fill();
      }
      const chosen = points.find((p) => p.well === selected);
      if (chosen) {
        ctx.strokeStyle = ink;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(chosen.px, chosen.py, RADIUS + 3, 0, 2 * Math.PI);
        ctx.stroke();
        ctx.lineWidth = 1;
      }
    }
    canvas.dataset.points = String(points.length);
    canvas.setAttribute("aria-label", `${yName} against ${xName}, ${points.length} wells`);
  }

  function nearest(event) {
    const rect = canvas.getBoundingClientRect();
    const sx = canvas.width / (rect.width || canvas.width);
    const sy = canvas.height / (rect.height || canvas.height);
    const x = (event.clientX - rect.left) * sx;
    const y = (event.clientY - rect.top) * sy;
    let best = null;
    let bestD = HIT * HIT;
    for (const p of points) {
      const d = (p.px - x) ** 2 + (p.py - y) ** 2;
      if (d <= bestD) {
        best = p;
        bestD = d;
      }
    }
    return best;
  }

  canvas.addEventListener("mousemove", (event) => {
    const p = nearest(event);
    const [, xName, yName] = axes();
    hover.textContent = p ? `${p.well}: ${xName} ${format(p.x)}, ${yName} ${format(p.y)}` : "";
    canvas.style.cursor = p ? "pointer" : "";
  });
  canvas.addEventListener("mouseleave", () => {
    hover.textContent = "";
  });
  canvas.addEventListener("click", (event) => {
    const p = nearest(event);
    if (p) source.set("selected_well", p.well);
  });
  pickX.addEventListener("change", () => source.set("plot_x", pickX.value));
  pickY.addEventListener("change", () => source.set("plot_y", pickY.value));

  return { render };
}
