// openhcs-nb plate viewer: the colours, in one place so the plate map, its
// histogram and the well view agree. Plain ES module, no imports.

export const STATUS_COLORS = {
  queued: "#c8c8c8",
  running: "#f2c14e",
  done: "#3aa76d",
  failed: "#d64545",
  cancelled: "#7d6b91",
};
// Theme-aware fills (JupyterLab, then VS Code, then plain light defaults).
export const EMPTY_COLOR = "var(--jp-layout-color2, var(--vscode-editorWidget-background, #f4f4f4))";
export const NO_VALUE_COLOR = "var(--jp-layout-color3, var(--vscode-input-background, #dddddd))";
// Candidate label colours; each view picks the ones farthest in hue from the
// visible channels (mirrors _images.LABEL_CANDIDATES).
export const LABEL_CANDIDATES = ["#ffff00", "#00ffff", "#ff00ff", "#ffffff"];
const VIRIDIS = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

/** Viridis colour of t in [0, 1] as "rgb(r, g, b)". */
export function viridis(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const pos = x * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(pos));
  const f = pos - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** The CSS gradient of viridis, for legends. */
export function viridisGradient() {
  const stops = VIRIDIS.map((_, i) => viridis(i / (VIRIDIS.length - 1))).join(", ");
  return `linear-gradient(to right, ${stops})`;
}

/** "#ff8000" -> [255, 128, 0]. */
export function hexToRgb(hex) {
  const s = String(hex || "#ffffff").replace("#", "");
  return [0, 2, 4].map((i) => parseInt(s.slice(i, i + 2), 16) || 0);
}

/** Hue in degrees [0, 360) of "#rrggbb", or null for a grey (no hue). */
export function hueOf(hex) {
  const [r, g, b] = hexToRgb(hex).map((v) => v / 255);
  const hi = Math.max(r, g, b);
  const d = hi - Math.min(r, g, b);
  if (d === 0) return null;
  let hue;
  if (hi === r) hue = ((g - b) / d) % 6;
  else if (hi === g) hue = (b - r) / d + 2;
  else hue = (r - g) / d + 4;
  return (hue * 60 + 360) % 360;
}

/**
 * Label colours for `count` layers, best first: candidates ordered by their
 * smallest hue distance to the visible channel colours (largest first), so
 * outlines stand out from what they sit on. Greys score 30 (a last resort);
 * ties keep list order.
 */
export function labelColors(channelColors, count) {
  const hues = channelColors.map(hueOf).filter((x) => x !== null);
  const score = (c) => {
    const hue = hueOf(c);
    if (hue === null || !hues.length) return hue === null ? 30 : 180;
    return Math.min(...hues.map((x) => Math.min(Math.abs(hue - x), 360 - Math.abs(hue - x))));
  };
  const ranked = LABEL_CANDIDATES.map((c, i) => [score(c), i, c])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .map((x) => x[2]);
  return Array.from({ length: count }, (_, i) => ranked[i % ranked.length]);
}
