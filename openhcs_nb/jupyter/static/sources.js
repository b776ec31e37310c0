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
    // A model without send (a page's stand-in) zooms the preview only.
    send: typeof model.send === "function" ? (content) => model.send(content) : undefined,
    onMessage(cb) {
      const handler = (content, buffers) => cb(content, buffers);
      model.on("msg:custom", handler);
      return () => model.off("msg:custom", handler);
    },
  };
}
