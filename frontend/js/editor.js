// Glue between the app and Monaco. Monaco is large, so it loads the first time a file is
// opened, through its own AMD loader (xterm.js is loaded as ES modules, so the two never meet).
// This module comes with the page and only names what the app calls; the code behind the names
// (editor-impl.js, beside Monaco's files) comes with Monaco and is bound into them then: the
// app's calls read these bindings when they are made.

let monacoLoading = null;
let implLoading = null;

/// Monaco itself, once (tried again after a failure).
function monacoReady(assets) {
  if (!monacoLoading) {
    monacoLoading = new Promise((resolve, reject) => {
      const base = `${assets}/monaco/vs`;
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = `${base}/editor/editor.main.css`;
      document.head.appendChild(css);
      const script = document.createElement("script");
      script.src = `${base}/loader.js`;
      script.onload = () => {
        window.require.config({ paths: { vs: base } });
        window.require(["vs/editor/editor.main"], () => resolve(), (e) => reject(new Error(`${e}`)));
      };
      script.onerror = () => {
        script.remove();
        css.remove();
        reject(new Error("the editor could not be loaded"));
      };
      document.head.appendChild(script);
    });
    monacoLoading.catch(() => {
      monacoLoading = null;
    });
  }
  return monacoLoading;
}

/// The code behind this module's names, once (tried again after a failure), bound into them.
function implReady(assets) {
  if (!implLoading) {
    implLoading = import(`${assets}/editor-impl.js`).then((impl) => {
      PortaEditor = impl.PortaEditor;
      colorize = impl.colorize;
      setEditorTheme = impl.setEditorTheme;
    });
    implLoading.catch(() => {
      implLoading = null;
    });
  }
  return implLoading;
}

/// Loads Monaco and the code that drives it; resolves when both are ready.
export async function loadMonaco() {
  const assets = document.querySelector('meta[name="porta-assets"]').content;
  await Promise.all([monacoReady(assets), implReady(assets)]);
}

/// One file in Monaco (see editor-impl.js); made only once `loadMonaco` resolved.
export let PortaEditor;

/// Code coloured by Monaco's tokenizer for `lang`, as HTML (Monaco escapes the text).
export let colorize = async (text, lang) => {
  await loadMonaco();
  return colorize(text, lang);
};

/// Monaco's theme; nothing to do before Monaco is here (each editor is made in the current one).
export let setEditorTheme = (_theme) => {};
