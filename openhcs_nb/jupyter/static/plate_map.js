// openhcs-nb plate viewer: the plate map, its legend, measurement picker,
// histogram and feature scatter. Wells are coloured by status or by a
// per-well measurement (grouped by object set in the picker); clicking a
// well or a scatter point selects it, clicking a histogram bar outlines its
// wells (and selects the well of a one-well bar). Plain ES module.

import { EMPTY_COLOR, NO_VALUE_COLOR, STATUS_COLORS, viridis, viridisGradient } from "./colors.js";
import { createFeaturePlot, fillPicker } from "./feature_plot.js";
import { createHistogram } from "./histogram.js";

/** An element with a class and text. */
export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A measurement as a person reads it: "n/a", an integer or four digits. */
export function formatValue(v) {
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

/** The plate pane inside `pane`; returns {render, renderPicker}. */
export function createPlateMap(pane, source, get) {
  const plateBar = h("div", "ohnb-bar");
  const title = h("span", "ohnb-title");
  const runState = h("span", "ohnb-state");
  const picker = h("select", "ohnb-measurement");
  picker.title = "colour wells by";
  plateBar.append(title, runState, picker);
  const grid = h("div", "ohnb-grid");
  const legend = h("div", "ohnb-legend");
  const histBox = h("div", "ohnb-histogram-box");
  const plotBox = h("div", "ohnb-plot-box");
  const features = h("div", "ohnb-features");
  features.append(histBox, plotBox);
  pane.append(plateBar, grid, legend, features);

  let cells = new Map();
  let gridKey = "";
  let picked = new Set(); // wells of the histogram bar clicked
  let pickedFor = "";
  const histogram = createHistogram(histBox, (wells) => {
    picked = new Set(wells);
    // A bar of one well is that well: select it, as its cell or point would.
    if (wells.length === 1) source.set("selected_well", wells[0]);
    render();
  }, formatValue);
  const plot = createFeaturePlot(plotBox, source, get, formatValue);

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

  function render() {
    buildGrid();
    title.textContent = get("plate_name", "");
    runState.textContent = get("run_state", "");
    const status = get("status", {});
    const values = get("values", {});
    const errors = get("errors", {});
    const m = get("measurement", "status");
    if (m !== pickedFor) {
      pickedFor = m;
      picked = new Set();
      histogram.clear();
    }
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
      cell.classList.toggle("ohnb-picked", picked.has(well));
      const lines = [`${well}: ${st || "no data"}`];
      for (const [k, v] of Object.entries(row)) lines.push(`${k}: ${formatValue(v)}`);
      if (errors[well]) lines.push(errors[well]);
      cell.title = lines.join("\n");
    }
    renderLegend(m, range, status);
    histogram.update(values, m);
    plot.render();
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
    const bar = h("span", "ohnb-gradient");
    bar.style.background = viridisGradient();
    legend.append(h("span", "ohnb-key", formatValue(range[0])), bar, h("span", "ohnb-key", formatValue(range[1])));
  }

  function renderPicker() {
    fillPicker(picker, get("measurements", []), get("measurement", "status"), ["status"]);
  }

  picker.addEventListener("change", () => source.set("measurement", picker.value));

  return {
    render,
    renderPicker,
    /** Rebuild the grid even if the layout looks unchanged. */
    reset() {
      gridKey = "";
    },
  };
}
