//! Terminals in the browser: xterm.js widgets on the stream socket, with render-paced
//! acknowledgements, re-attach after reloads and reconnects, and the phone key row.

mod flow;
pub mod keys;
mod tab;
mod xterm;
pub use xterm::prepare_search;

pub use tab::{Look, Page, Status, TermTab, list};
pub use xterm::{Callbacks, Xterm, copy};
