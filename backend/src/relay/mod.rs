//! Reaching bridges from services: one request and its answer, a command and its output
//! ([`command`]), terminal recordings ([`recorder`]), and
//! connections to servers' ports ([`tunnel`]). The sockets themselves are the
//! `streams` transport; the bus between them is `bus`.

pub mod command;
pub mod recorder;
pub mod tunnel;

use std::sync::Arc;
use std::time::Duration;

use crate::bus::Bus;

/// What a service needs to reach bridges: the bus, and how long a bridge may take to answer
/// a request.
#[derive(Clone)]
pub struct Relay {
    pub bus: Arc<dyn Bus>,
    pub answer_within: Duration,
}
