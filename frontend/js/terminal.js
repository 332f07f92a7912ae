// xterm.js behind a few typed calls for the Rust app (see src/terminal/xterm.rs).
//
// Output is written as Uint8Array views straight from the WebSocket's ArrayBuffer (it never
// passes through wasm memory); `onRendered(n)` reports every `n` bytes xterm.js has parsed,
// which is what the app acknowledges to the server. That pacing is the flow control: a flood
// can never queue more than the server's window in this page.

import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";

// Search is fetched when first wanted (the search bar opening), not with the page; a failed
// fetch is tried again next time.
let searchModule;
function loadSearch() {
  searchModule ??= import("@xterm/addon-search").catch((e) => { searchModule = undefined; throw e; });
  return searchModule;
}
export function prepareSearch() {
  loadSearch().catch(() => {});
}

// Links act under a pointer (underlined when hovered, opened when clicked): their add-on is
// fetched when a pointer first comes over a terminal, not with the page.
let linksModule;
function loadLinks() {
  linksModule ??= import("@xterm/addon-web-links").catch((e) => { linksModule = undefined; throw e; });
  return linksModule;
}

const THEMES = {
  dark: {
    background: "#0f1115", foreground: "#d8dee9", cursor: "#e6e6e6", cursorAccent: "#0f1115",
    selectionBackground: "#3b4a66",
    black: "#1c1f26", red: "#ff7b72", green: "#3fb950", yellow: "#d29922", blue: "#58a6ff",
    magenta: "#bc8cff", cyan: "#39c5cf", white: "#b1bac4",
    brightBlack: "#6e7681", brightRed: "#ffa198", brightGreen: "#56d364", brightYellow: "#e3b341",
    brightBlue: "#79c0ff", brightMagenta: "#d2a8ff", brightCyan: "#56d4dd", brightWhite: "#f0f6fc",
  },
  light: {
    background: "#ffffff", foreground: "#1f2328", cursor: "#1f2328", cursorAccent: "#ffffff",
    selectionBackground: "#b6d4fe",
    black: "#24292f", red: "#cf222e", green: "#116329", yellow: "#4d2d00", blue: "#0969da",
    magenta: "#8250df", cyan: "#1b7c83", white: "#6e7781",
    brightBlack: "#57606a", brightRed: "#a40e26", brightGreen: "#1a7f37", brightYellow: "#633c01",
    brightBlue: "#218bff", brightMagenta: "#a475f9", brightCyan: "#3192aa", brightWhite: "#8c959f",
  },
};

const SEARCH = { caseSensitive: false, regex: false, decorations: undefined };
const EMPTY = new Uint8Array(0);

export class PortaTerm {
  // onData(string): keystrokes and pastes; onResize(cols, rows); onRendered(bytes);
  // onShortcut(name): "copy", "paste", "search" from the keyboard.
  constructor(parent, theme, fontSize, onData, onResize, onRendered, onShortcut) {
    this.onRendered = onRendered;
    this.term = new Terminal({
      theme: THEMES[theme] ?? THEMES.dark,
      fontSize,
      fontFamily: 'ui-monospace, "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      scrollback: 10000,
      cursorBlink: true,
      allowProposedApi: true,
      macOptionIsMeta: true,
    });
    this.fitAddon = new FitAddon();
    this.searchAddon = null;
    this.term.loadAddon(this.fitAddon);
    this.disposed = false;
    const withLinks = () => {
      loadLinks().then(({ WebLinksAddon }) => {
        if (this.disposed) return;
        this.term.loadAddon(new WebLinksAddon((event, uri) => {
          event.preventDefault();
          const w = window.open();
          if (w) { w.opener = null; w.location.href = uri; }
        }));
      // Not fetched (the network): tried again at the next pointer.
      }).catch(() => parent.addEventListener("pointerover", withLinks, { once: true }));
    };
    parent.addEventListener("pointerover", withLinks, { once: true });
    this.replaying = 0;
    this.quietDuringReplay();
    this.term.onData(onData);
    this.term.onBinary((s) => onData(s));
    this.term.onResize(({ cols, rows }) => onResize(cols, rows));
    this.term.attachCustomKeyEventHandler((e) => {
      if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey) return true;
      // Ctrl+Shift+P (the command palette) goes on to the page.
      const name = { KeyC: "copy", KeyV: "paste", KeyF: "search", KeyP: "palette" }[e.code];
      if (!name) return true;
      e.preventDefault();
      onShortcut(name);
      return false;
    });
    this.term.open(parent);
    this.parent = parent;
    this.observer = new ResizeObserver(() => this.fitSoon());
    this.observer.observe(parent);
    this.fitSoon();
  }

  // Output written again (after a reload or a reconnect) was answered when it first ran.
  // Its queries must not be answered again: the answers would reach the program as input it
  // never asked for (`^[[?1;2c` in a shell, a stray `y` in vim). Each handler below claims
  // its sequence while replayed output is parsed, and otherwise leaves it to xterm.js.
  quietDuringReplay() {
    const quiet = () => this.replaying > 0;
    const p = this.term.parser;
    const csi = [
      { final: "c" }, { prefix: ">", final: "c" }, { prefix: "=", final: "c" }, // device attributes
      { final: "n" }, { prefix: "?", final: "n" }, // status and cursor position reports
      { intermediates: "$", final: "p" }, { prefix: "?", intermediates: "$", final: "p" }, // mode reports
      { prefix: ">", final: "q" }, // terminal version
      { final: "t" }, // window reports
      { prefix: "?", final: "u" }, // keyboard protocol query
    ];
    for (const id of csi) p.registerCsiHandler(id, quiet);
    for (const id of [{ intermediates: "$", final: "q" }, { intermediates: "+", final: "q" }]) {
      p.registerDcsHandler(id, quiet); // setting and capability queries
    }
    // Colour queries (OSC 4/10/11/12 with `?`) are answered; setting colours is not a query.
    for (const code of [4, 10, 11, 12]) p.registerOscHandler(code, (data) => quiet() && data.includes("?"));
    // A clipboard write (OSC 52) happened when the output first ran. (Bells and title
    // changes have no effect on this page: it does not listen to onBell or onTitleChange.)
    p.registerOscHandler(52, quiet);
  }

  fitSoon() {
    if (this.fitPending) return;
    this.fitPending = true;
    requestAnimationFrame(() => {
      this.fitPending = false;
      this.fit();
    });
  }

  fit() {
    // A hidden pane has no size: keep the last one rather than shrinking to nothing.
    if (!this.term.element || this.parent.clientWidth === 0 || this.parent.clientHeight === 0) return;
    const dims = this.fitAddon.proposeDimensions();
    if (dims && Number.isFinite(dims.cols) && Number.isFinite(dims.rows)) this.fitAddon.fit();
  }

  // `data` is a Uint8Array; `onRendered(data.length)` follows once xterm.js has parsed it.
  // Its first `replayed` bytes are output shown before (see `quietDuringReplay`). xterm.js
  // parses writes in order and calls each one's callback before parsing the next, and the
  // count goes up in the callback of an empty write queued just before the replayed bytes,
  // so exactly those bytes are parsed quietly.
  write(data, replayed) {
    const n = data.length;
    if (replayed > 0) {
      const head = replayed < n ? data.subarray(0, replayed) : data;
      this.term.write(EMPTY, () => this.replaying++);
      this.term.write(head, () => {
        this.replaying--;
        if (head === data) this.onRendered(n);
      });
      if (head === data) return;
      data = data.subarray(replayed);
    }
    this.term.write(data, () => this.onRendered(n));
  }

  // Text the app itself writes (notices); not counted as rendered output.
  writeNotice(text) { this.term.write(text); }

  cols() { return this.term.cols; }
  rows() { return this.term.rows; }
  focus() { this.term.focus(); }
  reset() { this.term.reset(); }
  appCursorKeys() { return this.term.modes.applicationCursorKeysMode; }

  setTheme(theme) { this.term.options.theme = THEMES[theme] ?? THEMES.dark; }
  setFontSize(size) {
    this.term.options.fontSize = size;
    this.fit();
  }

  // A replayed recording keeps the size it was recorded at, whatever the pane's.
  fixedSize(cols, rows) {
    this.observer.disconnect();
    this.fitSoon = () => {};
    this.fit = () => {};
    this.term.options.disableStdin = true;
    this.term.options.cursorBlink = false;
    this.term.resize(cols, rows);
  }

  // Selects the next (or previous) match of `query`; resolves to whether there was one.
  async search(query, backwards) {
    if (!query) return false;
    if (!this.searchAddon) {
      const { SearchAddon } = await loadSearch();
      if (!this.searchAddon) {
        this.searchAddon = new SearchAddon();
        this.term.loadAddon(this.searchAddon);
      }
    }
    return backwards ? this.searchAddon.findPrevious(query, SEARCH) : this.searchAddon.findNext(query, SEARCH);
  }
  clearSearch() {
    this.searchAddon?.clearDecorations();
    this.term.clearSelection();
  }

  selection() { return this.term.getSelection(); }
  // The last `count` lines of the screen and scrollback, as text (trailing blank lines cut).
  lastLines(count) {
    const buffer = this.term.buffer.active;
    const lines = [];
    for (let i = Math.max(0, buffer.length - count); i < buffer.length; i++) {
      lines.push(buffer.getLine(i)?.translateToString(true) ?? "");
    }
    while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
    return lines.join("\n");
  }
  // Pastes through xterm.js so bracketed paste mode is honoured.
  paste(text) { this.term.paste(text); }

  dispose() {
    this.disposed = true;
    // Writes still queued in xterm.js may complete after this; their callbacks must not
    // reach the app, which has let go of this terminal.
    this.onRendered = () => {};
    this.observer.disconnect();
    this.term.dispose();
  }
}

// Copies to the clipboard; resolves to false where the browser refuses.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

// Reads the clipboard; resolves to null where the browser refuses.
export async function readClipboard() {
  try {
    return await navigator.clipboard.readText();
  } catch {
    return null;
  }
}
