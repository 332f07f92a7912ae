//! Protocol versions and their negotiation.
//!
//! The version is bumped only for incompatible changes; optional features are negotiated with
//! capabilities instead (see [`crate::bridge::capabilities`]).

use serde::{Deserialize, Serialize};

/// The newest protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The oldest protocol version this build still speaks.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// An inclusive range of protocol versions a peer speaks, sent in its `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolRange {
    pub min: u16,
    pub max: u16,
}

impl ProtocolRange {
    /// The range this build speaks.
    pub const fn ours() -> Self {
        Self { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION }
    }

    /// The newest version both ranges contain, or `None` when they do not overlap.
    pub fn negotiate(self, peer: ProtocolRange) -> Option<u16> {
        let best = self.max.min(peer.max);
        (best >= self.min.max(peer.min)).then_some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_newest_common_version() {
        let ours = ProtocolRange { min: 1, max: 3 };
        assert_eq!(ours.negotiate(ProtocolRange { min: 2, max: 5 }), Some(3));
        assert_eq!(ours.negotiate(ProtocolRange { min: 1, max: 1 }), Some(1));
    }

    #[test]
    fn refuses_disjoint_ranges() {
        let ours = ProtocolRange { min: 2, max: 3 };
        assert_eq!(ours.negotiate(ProtocolRange { min: 4, max: 9 }), None);
        assert_eq!(ours.negotiate(ProtocolRange { min: 1, max: 1 }), None);
    }
}
