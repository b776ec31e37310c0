// openhcs-nb plate viewer: the two state sources the core reads (see the
// interface at the top of plate_viewer.js). Plain ES module, no imports.

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

// Per-well keys the kernel sends as custom messages, not widget state
// (viewer.py, _viewer_wells.py): {type: "wells", full, status, values, errors}.
// A full message replaces the page's copy; any other merges into it.
const WELL_KEYS = ["status", "values", "errors"];

/**
 * A source over an anywidget model (state keys, plus custom messages for the
 * per-well deltas and tiles). Call ready() once the viewer listens: the
 * kernel answers with every well, which a view opened late has missed.
 */
export function modelSource(model) {
  const wells = Object.fromEntries(WELL_KEYS.map((k) => [k, model.get(k) || {}]));
  const listeners = new Map(WELL_KEYS.map((k) => [k, new Set()]));
  const onWells = (content) => {
    if (!content || content.type !== "wells") return;
    for (const key of WELL_KEYS) {
      const part = content[key] || {};
      if (!content.full && !Object.keys(part).length) continue;
      wells[key] = content.full ? { ...part } : { ...wells[key], ...part };
      for (const cb of [...listeners.get(key)]) cb();
    }
  };
  model.on("msg:custom", onWells);
  const canSend = typeof model.send === "function";
  return {
    get: (key) => (listeners.has(key) ? wells[key] : model.get(key)),
    set(key, value) {
      model.set(key, value);
      model.save_changes();
    },
    on(key, cb) {
      if (listeners.has(key)) {
        listeners.get(key).add(cb);
        return () => listeners.get(key).delete(cb);
      }
      const event = `change:${key}`;
      model.on(event, cb);
      return () => model.off(event, cb);
    },
    // A model without send (a page's stand-in) zooms the preview only.
    send: canSend ? (content) => model.send(content) : undefined,
    onMessage(cb) {
      const handler = (content, buffers) => cb(content, buffers);
      model.on("msg:custom", handler);
      return () => model.off("msg:custom", handler);
    },
    /** Ask the kernel for every well (it answers with a full "wells"). */
    ready() {
      if (canSend) model.send({ type: "ready" });
    },
    close() {
      model.off("msg:custom", onWells);
    },
  };
}
