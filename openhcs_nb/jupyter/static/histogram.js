// openhcs-nb plate viewer: the histogram beside the plate map of the
// measurement the wells are coloured by, in the same colour map, so a
// biologist sees the distribution and can pick out the wells of one bin.
// Plain ES module.

import { viridis } from "./colors.js";

const SVG = "http://www.w3.org/2000/svg";
const BINS = 12;
const WIDTH = 240;
const HEIGHT = 60;

/**
 * Equal-width bins over [lo, hi] of the finite values:
 * [{lo, hi, wells: string[]}]. One bin when every value is the same.
 */
export function binValues(values, name, bins = BINS) {
  const entries = [];
  for (const [well, row] of Object.entries(values || {})) {
    const v = row ? row[name] : undefined;
    if (typeof v === "number" && Number.isFinite(v)) entries.push([well, v]);
  }
  if (!entries.length) return [];
  const lo = Math.min(...entries.map((e) => e[1]));
  const hi = Math.max(...entries.map((e) => e[1]));
  const n = hi > lo ? bins : 1;
  const width = (hi - lo) / n;
  const out = Array.from({ length: n }, (_, i) => ({ lo: lo + i * width, hi: lo + (i + 1) * width, wells: [] }));
  for (const [well, v] of entries) {
    const i = hi > lo ? Math.min(n - 1, Math.floor((v - lo) / width)) : 0;
    out[i].wells.push(well);
  }
  return out;
}

/**
 * The histogram inside `box`. `onPick(wells)` hears a bar's wells when it is
 * clicked, or [] when the picked bar is clicked again.
 */
export function createHistogram(box, onPick, format) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "ohnb-histogram");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("width", String(WIDTH));
  svg.setAttribute("height", String(HEIGHT));
  const caption = document.createElement("div");
  caption.className = "ohnb-histogram-caption";
  box.append(svg, caption);
  let picked = -1;

  /** Draw the bins of `name`; hidden (and the pick cleared) for "status". */
  function update(values, name) {
    const bins = name === "status" ? [] : binValues(values, name);
    box.style.display = bins.length ? "" : "none";
    svg.replaceChildren();
    if (picked >= bins.length) picked = -1;
    if (!bins.length) {
      caption.textContent = "";
      return;
    }
    const most = Math.max(...bins.map((b) => b.wells.length));
    const step = WIDTH / bins.length;
    bins.forEach((bin, i) => {
      const height = (bin.wells.length / most) * (HEIGHT - 2);
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("class", i === picked ? "ohnb-bar-bin ohnb-picked" : "ohnb-bar-bin");
      bar.setAttribute("x", String(i * step + 0.5));
      bar.setAttribute("width", String(Math.max(1, step - 1)));
      bar.setAttribute("y", String(HEIGHT - height));
      bar.setAttribute("height", String(height));
      bar.setAttribute("fill", viridis(bins.length > 1 ? (i + 0.5) / bins.length : 0.5));
      bar.dataset.count = String(bin.wells.length);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${format(bin.lo)}–${format(bin.hi)}: ${bin.wells.length} wells`;
      bar.append(title);
      bar.addEventListener("click", () => {
        picked = picked === i ? -1 : i;
        onPick(picked === i ? [...bin.wells] : []);
      });
      svg.append(bar);
    });
    const count = bins.reduce((sum, b) => sum + b.wells.length, 0);
    caption.replaceChildren(
      ...[format(bins[0].lo), `${count} wells`, format(bins[bins.length - 1].hi)].map((text) => {
        const span = document.createElement("span");
        span.textContent = text;
        return span;
      }),
    );
  }

  /** Forget the picked bar (the measurement changed). */
  function clear() {
    picked = -1;
  }

  return { update, clear };
}
