//! Property tests: messages survive encode → decode, and no input panics the decoders.

use porta_shared::bridge::{BridgeRequest, FsRead, FsWrite, TermAttach};
use porta_shared::client::ClientRequest;
use porta_shared::types::{Base64, TermId};
use porta_shared::{Envelope, Incoming};
use proptest::prelude::*;

proptest! {
    #[test]
    fn fs_read_round_trips(path in ".{0,64}", offset in any::<u64>(), limit in proptest::option::of(any::<u64>()), id in "[a-z0-9]{1,64}") {
        let env = Envelope::<BridgeRequest>::request(id, FsRead { path, offset, limit });
        prop_assert_eq!(Envelope::<BridgeRequest>::decode(&env.encode()).expect("round trip"), env);
    }

    #[test]
    fn fs_write_round_trips(path in ".{0,32}", data in proptest::collection::vec(any::<u8>(), 0..512), create_new in any::<bool>(), mode in proptest::option::of(0u32..0o7777)) {
        let env = Envelope::<BridgeRequest>::request("x", FsWrite { path, data: Base64(data), expected_sha256: None, create_new, mode });
        prop_assert_eq!(Envelope::<BridgeRequest>::decode(&env.encode()).expect("round trip"), env);
    }

    #[test]
    fn attach_round_trips(term in any::<u32>(), stream in any::<u32>(), after in any::<u64>()) {
        let env = Envelope::<BridgeRequest>::request("1", TermAttach { term: TermId(term), stream, after });
        prop_assert_eq!(Envelope::<BridgeRequest>::decode(&env.encode()).expect("round trip"), env);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,256}") {
        let _ = Incoming::<BridgeRequest>::decode(&text);
        let _ = Incoming::<ClientRequest>::decode(&text);
    }

    #[test]
    fn arbitrary_envelopes_never_panic(v in any::<u16>(), id in proptest::option::of(".{0,80}"), ty in "[a-z.]{0,12}", body in ".{0,64}") {
        let json = serde_json::json!({"v": v, "id": id, "type": ty, "body": body}).to_string();
        let _ = Incoming::<ClientRequest>::decode(&json);
    }
}
