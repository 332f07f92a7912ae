// Monaco's side of the editor glue (see js/editor.js): fetched with Monaco, the first time a
// file is opened, and bound into editor.js's names then (Monaco is loaded by then).

function themeName(theme) {
  return theme === "light" ? "vs" : "vs-dark";
}

/// Models are named by tab (`porta://<tab>/<path>`): the path's extension picks the language,
/// and two servers' files of the same name never share a model.
function uri(key, path) {
  return monaco.Uri.from({ scheme: "porta", authority: `t${key}`, path: path.startsWith("/") ? path : `/${path}` });
}

/// Code coloured by Monaco's tokenizer for `lang`, as HTML (Monaco escapes the text).
export async function colorize(text, lang) {
  const known = monaco.languages.getLanguages().some((l) => l.id === lang || (l.aliases ?? []).some((a) => a.toLowerCase() === lang));
  return monaco.editor.colorize(text, known ? lang : "plaintext", { tabSize: 4 });
}

export function setEditorTheme(theme) {
  if (window.monaco) monaco.editor.setTheme(themeName(theme));
}

/// One file in Monaco: the editor, its model, and (while comparing) a diff view over it.
export class PortaEditor {
  constructor(parent, key, path, text, theme, fontSize, readOnly, onDirty, onSave) {
    this.parent = parent;
    this.key = key;
    this.path = path;
    this.fontSize = fontSize;
    this.model = monaco.editor.createModel(text, undefined, uri(key, path));
    this.saved = this.model.getAlternativeVersionId();
    this.onDirty = onDirty;
    this.onSave = onSave;
    monaco.editor.setTheme(themeName(theme));
    this.editor = monaco.editor.create(parent, {
      model: this.model,
      automaticLayout: true,
      fontSize,
      readOnly,
      minimap: { enabled: parent.clientWidth > 700 },
      scrollBeyondLastLine: false,
    });
    this.addSave(this.editor);
    this.dirty = false;
    this.model.onDidChangeContent(() => this.report());
    this.diff = null;
    this.original = null;
  }

  /// Ctrl/Cmd+S saves, in this editor and in the editable side of a diff.
  addSave(editor) {
    editor.addAction({
      id: "porta.save",
      label: "Save",
      keybindings: [monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS],
      run: () => this.onSave(),
    });
  }

  report() {
    const dirty = this.model.getAlternativeVersionId() !== this.saved;
    if (dirty !== this.dirty) {
      this.dirty = dirty;
      this.onDirty(dirty);
    }
  }

  language() {
    return this.model.getLanguageId();
  }

  setReadOnly(on) {
    this.editor.updateOptions({ readOnly: on });
  }

  value() {
    return this.model.getValue();
  }

  /// A marker for the content as it is now, to pass to `markSaved` once it is on disk.
  version() {
    return this.model.getAlternativeVersionId();
  }

  markSaved(version) {
    this.saved = version;
    this.report();
  }

  /// Replaces the content as one edit (so undo brings back what was there), and counts it
  /// as saved.
  replace(text) {
    this.model.pushStackElement();
    this.model.pushEditOperations([], [{ range: this.model.getFullModelRange(), text }], () => null);
    this.model.pushStackElement();
    this.markSaved(this.model.getAlternativeVersionId());
  }

  /// The selected text of the editor (empty when nothing is selected).
  selectedText() {
    const selection = this.editor.getSelection();
    return selection ? this.model.getValueInRange(selection) : "";
  }

  /// Puts `text` at the cursor (over the selection), as one undoable edit.
  insert(text) {
    const range = this.editor.getSelection() ?? this.model.getFullModelRange().collapseToEnd();
    this.editor.pushUndoStop();
    this.editor.executeEdits("porta.assistant", [{ range, text, forceMoveMarkers: true }]);
    this.editor.pushUndoStop();
    this.editor.focus();
  }

  /// Sets the content as one undoable edit, leaving it unsaved.
  setText(text) {
    this.model.pushStackElement();
    this.model.pushEditOperations([], [{ range: this.model.getFullModelRange(), text }], () => null);
    this.model.pushStackElement();
  }

  find() {
    const editor = this.diff ? this.diff.getModifiedEditor() : this.editor;
    editor.focus();
    editor.getAction("actions.find").run();
  }

  setFontSize(fontSize) {
    this.fontSize = fontSize;
    this.editor.updateOptions({ fontSize });
    if (this.diff) this.diff.updateOptions({ fontSize });
  }

  focus() {
    (this.diff ? this.diff.getModifiedEditor() : this.editor).focus();
  }

  /// Moves the cursor to a line (1-based) and shows it in the middle.
  goTo(line, column) {
    this.editor.setPosition({ lineNumber: line, column: column || 1 });
    this.editor.revealLineInCenter(line);
    this.editor.focus();
  }

  /// Shows `text` (another version: what is on disk, or at git HEAD) beside this content; the
  /// right side stays editable and is the same content as the editor's.
  compare(host, text) {
    this.closeCompare();
    this.original = monaco.editor.createModel(text, this.model.getLanguageId());
    this.diff = monaco.editor.createDiffEditor(host, {
      automaticLayout: true,
      fontSize: this.fontSize,
      originalEditable: false,
      // Side by side where there is room (Monaco switches to inline below its breakpoint).
      renderSideBySide: true,
      useInlineViewWhenSpaceIsLimited: true,
    });
    this.diff.setModel({ original: this.original, modified: this.model });
    this.addSave(this.diff.getModifiedEditor());
  }

  closeCompare() {
    if (this.diff) {
      this.diff.dispose();
      this.original.dispose();
      this.diff = null;
      this.original = null;
    }
  }

  dispose() {
    this.closeCompare();
    this.editor.dispose();
    this.model.dispose();
  }
}
