// omero_openhcs results page: feeds the notebook's plate viewer core
// (createPlateViewer from openhcs_nb/jupyter/static, served joined as
// viewer.js) with a source like anywidget's model: get / set / on.
//
// The page polls state.json (the app relays it from the execution server)
// and passes the version it has, so an unchanged run costs one tiny reply.
// Selecting a well fetches its preview planes as one binary body, with
// their description in the X-OpenHCS-Meta header (never base64).

const POLL_MS = 1000;
const el = document.getElementById("ohcs-viewer");
const progress = document.getElementById("ohcs-progress");
const errorLine = document.getElementById("ohcs-error");
const written = document.getElementById("ohcs-written");
const cancelForm = document.getElementById("ohcs-cancel");

const core = await import(el.dataset.viewerUrl);
const source = core.createMemorySource({
  plate_name: "", rows: [], columns: [], wells: [], fields: 1,
  status: {}, errors: {}, values: {}, measurement: "status", measurements: ["status"],
  selected_well: "", field: 0, show_labels: true, label_mode: "outline",
  message: "", run_state: "", channels: [], image_meta: {}, image_data: null,
  pixel_size: 0,
});
const viewer = core.createPlateViewer(el, source);
let version = "";
let ended = false;
let layoutKnown = false;
let imageFor = "";

function say(text) {
  errorLine.hidden = !text;
  errorLine.textContent = text || "";
}

/** Keep the user's channel settings; add channels the server suggests. */
function mergeChannels(suggested) {
  const known = new Map((source.get("channels") || []).map((c) => [c.name, c]));
  for (const c of suggested || []) if (!known.has(c.name)) known.set(c.name, c);
  return [...known.values()];
}

async function loadWell(well) {
  if (!well || (source.get("status") || {})[well] !== "done") return;
  imageFor = well;
  const reply = await fetch(el.dataset.wellUrl.replace("WELL", encodeURIComponent(well)), {
    credentials: "same-origin",
  });
  if (!reply.ok) {
    const body = await reply.json().catch(() => ({}));
    source.set("message", body.error || `well ${well}: HTTP ${reply.status}`);
    return;
  }
  const meta = JSON.parse(reply.headers.get("X-OpenHCS-Meta") || "{}");
  const data = await reply.arrayBuffer();
  if (imageFor !== well) return; // another well was picked meanwhile
  source.set("channels", mergeChannels(meta.channels));
  source.set("message", meta.planes && meta.planes.length ? "" : `no preview images for ${well}`);
  source.set("image_data", data);
  source.set("image_meta", meta);
}

function apply(state) {
  for (const key of ["plate_name", "rows", "columns", "wells", "fields"]) {
    if (key in state) source.set(key, state[key]);
  }
  source.set("errors", state.errors);
  source.set("values", state.values);
  source.set("measurements", state.measurements);
  source.set("status", state.status);
  source.set("run_state", state.run_state);
  const p = state.progress;
  progress.textContent = `${state.run_state} · ${p.done} done, ${p.failed} failed of ${p.total} wells`;
  ended = state.ended;
  if (ended) {
    written.hidden = false;
    cancelForm.hidden = true;
  }
  // Show the first finished well until the user picks one.
  const selected = source.get("selected_well");
  if (!selected) {
    const first = Object.keys(state.status).find((w) => state.status[w] === "done");
    if (first) source.set("selected_well", first);
  } else if (imageFor !== selected) {
    loadWell(selected);
  }
}

async function poll() {
  const query = new URLSearchParams({ version, layout: layoutKnown ? "0" : "1" });
  try {
    const reply = await fetch(`${el.dataset.stateUrl}?${query}`, { credentials: "same-origin" });
    const body = await reply.json();
    if (!reply.ok) {
      say(body.error || `HTTP ${reply.status}`);
      if (reply.status === 404 || reply.status === 403) return; // not this user's
    } else {
      say("");
      if (body.changed) {
        layoutKnown = true;
        version = body.version;
        apply(body);
      }
    }
  } catch (exc) {
    say(`cannot reach OMERO.web: ${exc}`);
  }
  if (!ended) setTimeout(poll, POLL_MS);
  else window.ohcsEnded = true;
}

source.on("selected_well", () => loadWell(source.get("selected_well")));
window.ohcsViewer = viewer;
window.ohcsSource = source;
poll();
