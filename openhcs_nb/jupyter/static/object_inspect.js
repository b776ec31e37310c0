// openhcs-nb object inspection: the measurements of the object under the
// cursor, in a small panel under the well view. Plain ES module, no imports
// (viewer.py joins it before well_view.js, which drives it).
//
// Hover shows the objects under the cursor (one section per labels set that
// has an object there); a click pins them, so the cursor may leave; Escape or
// a click on background clears. The rows come once per (well, field) by
// custom message ({type: "objects", id, well, field}; see _viewer_objects.py)
// and are looked up here by (object set, label), so hovering never waits.

const OBJECTS_KIND = "objects";
const KEPT_OBJECT_FIELDS = 8; // fields whose rows stay in hand
// Identifiers shown in the panel's head, not as measurements.
const OBJECT_ID_COLUMNS = new Set(["well", "site", "t", "z", "object_set", "label"]);

/** A measurement as text: integers whole, others to 4 significant digits. */
export function formatMeasurement(value, unit) {
  if (value === null || value === undefined) return "";
  let text;
  if (typeof value !== "number") text = String(value);
  else if (Number.isInteger(value)) text = String(value);
  else if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3)) text = value.toExponential(3);
  else text = String(Number(value.toPrecision(4)));
  return unit ? `${text} ${unit}` : text;
}

/** Index a reply's rows by "set|label" (set "" where the table has none). */
export function indexObjectRows(content) {
  const columns = content.columns || [];
  const setAt = columns.indexOf("object_set");
  const labelAt = columns.indexOf("label");
  const byKey = new Map();
  if (labelAt < 0) return { columns, units: content.units || {}, byKey, total: 0 };
  for (const row of content.rows || []) {
    const set = setAt >= 0 && row[setAt] != null ? String(row[setAt]) : "";
    byKey.set(`${set}|${row[labelAt]}`, row);
  }
  return { columns, units: content.units || {}, byKey, total: content.total || 0, sent: (content.rows || []).length };
}

/** The row of object `label` of labels set `set` (or of a table without sets). */
export function findObjectRow(index, set, label) {
  return index.byKey.get(`${set}|${label}`) || index.byKey.get(`|${label}`) || null;
}

const sameObjectHits = (a, b) => a.length === b.length && a.every((x, i) => x.set === b[i].set && x.label === b[i].label);

function inspectNode(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * The inspector of the view in `box`; its panel goes right after `box`.
 * `source.send` / `source.onMessage` carry the requests (none: no rows).
 */
export function createObjectInspector(box, source) {
  const panel = inspectNode("div", "ohnb-inspect");
  panel.hidden = true;
  if (box.parentNode) box.after(panel);
  else box.append(panel);
  const fields = new Map(); // "well|field" -> {index} | {none} | {error}
  let key = "";
  let pendingId = null;
  let nextId = 1;
  let hovered = [];
  let pinned = null; // hits, while pinned

  function state() {
    return fields.get(key) || null;
  }

  function render() {
    const hits = pinned || hovered;
    panel.replaceChildren();
    panel.classList.toggle("ohnb-pinned", Boolean(pinned));
    panel.hidden = hits.length === 0;
    panel.dataset.objects = hits.map((h) => `${h.set}:${h.label}`).join(" ");
    const known = state();
    for (const hit of hits) {
      const section = inspectNode("div", "ohnb-object");
      section.dataset.set = hit.set;
      section.dataset.label = String(hit.label);
      const head = inspectNode("div", "ohnb-object-head", `${hit.set} ${hit.label}`);
      if (pinned) head.append(inspectNode("span", "ohnb-pin", " (pinned; Esc clears)"));
      section.append(head);
      const note = (text) => section.append(inspectNode("div", "ohnb-object-note", text));
      if (!known) note(source.send ? "loading measurements…" : "no measurements for this view");
      else if (known.none) note(known.none);
      else if (known.error) note(known.error);
      else {
        const row = findObjectRow(known.index, hit.set, hit.label);
        if (!row) {
          const cut = known.index.total > known.index.sent ? ` (only the first ${known.index.sent} of ${known.index.total} rows were sent)` : "";
          note(`no measurements for ${hit.set} ${hit.label}${cut}`);
        } else {
          const table = inspectNode("table", "ohnb-object-table");
          known.index.columns.forEach((name, i) => {
            const value = row[i];
            if (OBJECT_ID_COLUMNS.has(name) || value === null || value === undefined) return;
            const tr = inspectNode("tr");
            tr.dataset.column = name;
            tr.dataset.value = String(value);
            tr.append(inspectNode("th", "", name), inspectNode("td", "", formatMeasurement(value, known.index.units[name])));
            table.append(tr);
          });
          section.append(table);
        }
      }
      panel.append(section);
    }
  }

  function onMessage(content) {
    if (!content || content.type !== OBJECTS_KIND || content.id !== pendingId) return;
    pendingId = null;
    const at = `${content.well}|${content.field}`;
    if (content.error) fields.set(at, { error: content.error });
    else if (content.none) fields.set(at, { none: content.none });
    else fields.set(at, { index: indexObjectRows(content) });
    while (fields.size > KEPT_OBJECT_FIELDS) fields.delete(fields.keys().next().value);
    if (at === key) render();
  }
  const off = source.onMessage ? source.onMessage(onMessage) : () => {};

  return {
    panel,
    /** A new well or field is shown: forget hover and pin; ask for its rows once. */
    setView(well, field, hasLabels) {
      const next = `${well}|${field}`;
      if (next !== key) {
        key = next;
        hovered = [];
        pinned = null;
        pendingId = null;
        const known = fields.get(key);
        if (known && known.error) fields.delete(key); // an error is asked again on return
      }
      if (hasLabels && source.send && !fields.has(key) && pendingId === null) {
        pendingId = `objects-${nextId++}`;
        source.send({ type: OBJECTS_KIND, id: pendingId, well, field: Number(field) });
      }
      render();
    },
    /** The cursor is over `hits` ([{set, label}]); true when the highlight changes. */
    hover(hits) {
      if (sameObjectHits(hits, hovered)) return false;
      hovered = hits;
      render();
      return !pinned;
    },
    /** A click: pin what is under the cursor, or clear on background. */
    click(hits) {
      pinned = hits.length ? hits : null;
      hovered = hits;
      render();
      return true;
    },
    /** Escape: unpin and empty the panel. */
    clear() {
      const had = Boolean(pinned) || hovered.length > 0;
      pinned = null;
      hovered = [];
      render();
      return had;
    },
    /** The objects to highlight: pinned ones, else hovered ones. */
    targets: () => pinned || hovered,
    destroy() {
      off();
      panel.remove();
    },
  };
}
