// The builder's "to code" helper: inserts a code cell below the builder's cell.
//
// Contract (openhcs_nb/jupyter/_builder_code.py):
//   state  can_insert: bool  set here on render: this front end can insert cells
//          code: string      the last code sent, shown with a Copy button when
//          show_code: bool   the front end cannot insert cells
//   msg in  {kind: "insert", code: string}
//   msg out {kind: "inserted", index: number} | {kind: "unavailable"}
//
// JupyterLab and Notebook 7 give every widget model their widget manager, whose
// `context.model` is the notebook; cells are inserted through its shared model.
// Elsewhere (VS Code, Colab) there is no such handle and the kernel falls back.

function notebookModel(model) {
  const manager = model.widget_manager;
  const context = manager && manager.context;
  const notebook = context && context.model;
  const shared = notebook && notebook.sharedModel;
  return shared && typeof shared.insertCell === "function" ? shared : null;
}

function cellIndex(el) {
  const cell = el.closest(".jp-Cell");
  if (!cell) return -1;
  const windowed = cell.getAttribute("data-windowed-list-index");
  if (windowed !== null) return Number(windowed);
  const notebook = cell.closest(".jp-Notebook");
  return notebook ? [...notebook.querySelectorAll(".jp-Cell")].indexOf(cell) : -1;
}

function render({ model, el }) {
  el.classList.add("ohnb-code");
  const pre = document.createElement("pre");
  pre.className = "ohnb-code-text";
  pre.style.cssText =
    "max-height:16em;overflow:auto;margin:4px 0;padding:4px;" +
    "background:var(--jp-cell-editor-background,#f7f7f7);" +
    "color:var(--jp-content-font-color1,#000);";
  const copy = document.createElement("button");
  copy.className = "ohnb-code-copy jupyter-button";
  copy.textContent = "Copy";
  copy.addEventListener("click", () => {
    const text = model.get("code");
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
  });
  const box = document.createElement("div");
  box.append(copy, pre);
  el.append(box);

  const show = () => {
    const visible = model.get("show_code") && model.get("code");
    box.style.display = visible ? "" : "none";
    pre.textContent = model.get("code");
  };
  const onMessage = (msg) => {
    if (!msg || msg.kind !== "insert") return;
    const shared = notebookModel(model);
    const index = cellIndex(el);
    if (!shared || index < 0) {
      model.send({ kind: "unavailable" });
      return;
    }
    shared.insertCell(index + 1, { cell_type: "code", source: msg.code });
    model.send({ kind: "inserted", index: index + 1 });
  };
  model.on("change:code", show);
  model.on("change:show_code", show);
  model.on("msg:custom", onMessage);
  show();
  // The view is not in the page yet while it renders: its cell is found when
  // an insert arrives, and a view outside any cell answers "unavailable".
  if (notebookModel(model)) {
    model.set("can_insert", true);
    model.save_changes();
  }
  return () => {
    model.off("change:code", show);
    model.off("change:show_code", show);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
