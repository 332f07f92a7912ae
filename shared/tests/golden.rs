//! Golden tests: the exact JSON of every message. A failure here means a wire-format change,
//! which is a compatibility decision (new tag, or an additive `#[serde(default)]` field), not
//! a test to update casually.

use std::fmt::Debug;

use porta_shared::bridge::{self, *};
use porta_shared::client::{self, *};
use porta_shared::types::*;
use porta_shared::{DecodeError, Envelope, ErrorBody, ErrorCode, Incoming, Message, ProtocolRange, Reply};

#[track_caller]
fn golden<M: Message + Debug + PartialEq>(env: Envelope<M>, json: &str) {
    assert_eq!(env.encode(), json, "encoding changed");
    assert_eq!(Envelope::<M>::decode(json).expect("decodes"), env, "decoding changed");
}

fn req<M: Message>(msg: impl Into<M>) -> Envelope<M> {
    Envelope::request("7", msg)
}

fn info() -> TermInfo {
    TermInfo {
        term: TermId(3),
        shell: "/bin/bash".into(),
        cwd: "/root".into(),
        size: TermSize { cols: 80, rows: 24 },
        pid: Some(4242),
        started_ms: 1_700_000_000_000,
        end: 10,
        start: 0,
        exit: None,
        attached: 1,
        title: None,
    }
}

#[test]
fn handshake_messages() {
    golden::<BridgeHandshake>(
        Envelope::event(Hello {
            protocol: ProtocolRange { min: 1, max: 1 },
            agent: "porta-bridge/0.1.0".into(),
            instance: "abc".into(),
            capabilities: vec!["term".into(), "fs".into()],
        }),
        r#"{"v":1,"type":"hello","body":{"protocol":{"min":1,"max":1},"agent":"porta-bridge/0.1.0","instance":"abc","capabilities":["term","fs"]}}"#,
    );
    golden::<BridgeHandshake>(
        req(Enroll { token: "pet_x".into(), hostname: "box".into() }),
        r#"{"v":1,"id":"7","type":"enroll","body":{"token":"pet_x","hostname":"box"}}"#,
    );
    golden::<HubHandshake>(
        Envelope::event(Welcome {
            protocol: 1,
            agent: "porta/0.1.0".into(),
            server_id: Some("s1".into()),
            heartbeat_ms: 10_000,
        }),
        r#"{"v":1,"type":"welcome","body":{"protocol":1,"agent":"porta/0.1.0","server_id":"s1","heartbeat_ms":10000}}"#,
    );
}

#[test]
fn bridge_terminal_requests() {
    golden::<BridgeRequest>(
        req(bridge::TermOpen {
            shell: Some("/bin/sh".into()),
            cwd: Some("/tmp".into()),
            size: TermSize { cols: 100, rows: 30 },
            env: [("LANG".to_string(), "C.UTF-8".to_string())].into(),
            stream: Some(5),
            ..Default::default()
        }),
        r#"{"v":1,"id":"7","type":"term.open","body":{"shell":"/bin/sh","cwd":"/tmp","size":{"cols":100,"rows":30},"env":{"LANG":"C.UTF-8"},"stream":5}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::TermAttach { term: TermId(3), stream: 9, after: 1024 }),
        r#"{"v":1,"id":"7","type":"term.attach","body":{"term":3,"stream":9,"after":1024}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::TermDetach { stream: 9 }),
        r#"{"v":1,"id":"7","type":"term.detach","body":{"stream":9}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::TermResize { term: TermId(3), size: TermSize { cols: 120, rows: 40 } }),
        r#"{"v":1,"id":"7","type":"term.resize","body":{"term":3,"size":{"cols":120,"rows":40}}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::TermSignal { term: TermId(3), signal: Signal::Int }),
        r#"{"v":1,"id":"7","type":"term.signal","body":{"term":3,"signal":"int"}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::TermClose { term: TermId(3) }),
        r#"{"v":1,"id":"7","type":"term.close","body":{"term":3}}"#,
    );
    golden::<BridgeRequest>(req(TermList {}), r#"{"v":1,"id":"7","type":"term.list","body":{}}"#);
    golden::<BridgeRequest>(
        req(TermRename { term: TermId(3), title: "build".into() }),
        r#"{"v":1,"id":"7","type":"term.rename","body":{"term":3,"title":"build"}}"#,
    );
}

#[test]
fn bridge_exec_fs_and_sys_requests() {
    golden::<BridgeRequest>(
        req(bridge::ExecStart {
            argv: vec!["ls".into(), "-la".into()],
            cwd: Some("/".into()),
            timeout_ms: Some(5000),
            stream: 11,
            ..Default::default()
        }),
        r#"{"v":1,"id":"7","type":"exec.start","body":{"argv":["ls","-la"],"cwd":"/","timeout_ms":5000,"stream":11}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::ExecCancel { stream: 11 }),
        r#"{"v":1,"id":"7","type":"exec.cancel","body":{"stream":11}}"#,
    );
    golden::<BridgeRequest>(
        req(FsList { path: "/etc".into(), hidden: true }),
        r#"{"v":1,"id":"7","type":"fs.list","body":{"path":"/etc","hidden":true}}"#,
    );
    golden::<BridgeRequest>(
        req(FsStat { path: "a.txt".into(), hash: true }),
        r#"{"v":1,"id":"7","type":"fs.stat","body":{"path":"a.txt","hash":true}}"#,
    );
    golden::<BridgeRequest>(
        req(FsRead { path: "a.txt".into(), offset: 10, limit: Some(100) }),
        r#"{"v":1,"id":"7","type":"fs.read","body":{"path":"a.txt","offset":10,"limit":100}}"#,
    );
    golden::<BridgeRequest>(
        req(FsWrite {
            path: "a.txt".into(),
            data: Base64(b"hi\n".to_vec()),
            expected_sha256: Some("00ff".into()),
            create_new: false,
            mode: None,
        }),
        r#"{"v":1,"id":"7","type":"fs.write","body":{"path":"a.txt","data":"aGkK","expected_sha256":"00ff"}}"#,
    );
    golden::<BridgeRequest>(
        req(FsUploadBegin {
            path: "big.iso".into(),
            size: 3_000_000,
            expected_sha256: None,
            create_new: true,
            mode: Some(0o640),
        }),
        r#"{"v":1,"id":"7","type":"fs.upload.begin","body":{"path":"big.iso","size":3000000,"create_new":true,"mode":416}}"#,
    );
    golden::<BridgeRequest>(
        req(FsUploadChunk { upload: "u1".into(), offset: 524288, data: Base64(b"hi\n".to_vec()) }),
        r#"{"v":1,"id":"7","type":"fs.upload.chunk","body":{"upload":"u1","offset":524288,"data":"aGkK"}}"#,
    );
    golden::<BridgeRequest>(
        req(FsUploadCommit { upload: "u1".into(), sha256: Some("00ff".into()) }),
        r#"{"v":1,"id":"7","type":"fs.upload.commit","body":{"upload":"u1","sha256":"00ff"}}"#,
    );
    golden::<BridgeRequest>(
        req(FsUploadAbort { upload: "u1".into() }),
        r#"{"v":1,"id":"7","type":"fs.upload.abort","body":{"upload":"u1"}}"#,
    );
    golden::<BridgeRequest>(
        req(FsFind { path: "src".into(), query: "hndlr".into(), hidden: false, limit: Some(20) }),
        r#"{"v":1,"id":"7","type":"fs.find","body":{"path":"src","query":"hndlr","hidden":false,"limit":20}}"#,
    );
    golden::<BridgeRequest>(
        req(FsSearch {
            path: "".into(),
            pattern: "fn main".into(),
            regex: false,
            case_sensitive: true,
            hidden: false,
            limit: None,
        }),
        r#"{"v":1,"id":"7","type":"fs.search","body":{"path":"","pattern":"fn main","regex":false,"case_sensitive":true,"hidden":false}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::FsWatch { path: "/srv/app".into(), stream: 9 }),
        r#"{"v":1,"id":"7","type":"fs.watch","body":{"path":"/srv/app","stream":9}}"#,
    );
    golden::<BridgeRequest>(
        req(bridge::FsUnwatch { stream: 9 }),
        r#"{"v":1,"id":"7","type":"fs.unwatch","body":{"stream":9}}"#,
    );
    golden::<BridgeEvent>(
        Envelope::event(FsChanged { stream: 9, names: vec!["a.rs".into()], rescan: false }),
        r#"{"v":1,"type":"fs.changed","body":{"stream":9,"names":["a.rs"]}}"#,
    );
    golden::<BridgeRequest>(
        req(GitStatus { path: "/srv/app".into() }),
        r#"{"v":1,"id":"7","type":"git.status","body":{"path":"/srv/app"}}"#,
    );
    golden::<BridgeRequest>(
        req(GitHead { path: "/srv/app/main.rs".into() }),
        r#"{"v":1,"id":"7","type":"git.head","body":{"path":"/srv/app/main.rs"}}"#,
    );
    golden::<BridgeRequest>(
        req(FsMkdir { path: "d/e".into(), parents: true }),
        r#"{"v":1,"id":"7","type":"fs.mkdir","body":{"path":"d/e","parents":true}}"#,
    );
    golden::<BridgeRequest>(
        req(FsRename { from: "a".into(), to: "b".into(), overwrite: false }),
        r#"{"v":1,"id":"7","type":"fs.rename","body":{"from":"a","to":"b","overwrite":false}}"#,
    );
    golden::<BridgeRequest>(
        req(FsDelete { path: "d".into(), recursive: true }),
        r#"{"v":1,"id":"7","type":"fs.delete","body":{"path":"d","recursive":true}}"#,
    );
    golden::<BridgeRequest>(req(SysInfoRequest {}), r#"{"v":1,"id":"7","type":"sys.info","body":{}}"#);
}

#[test]
fn bridge_events() {
    golden::<BridgeEvent>(
        Envelope::event(bridge::TermExited {
            stream: 9,
            term: TermId(3),
            exit: ExitStatus { code: Some(0), signal: None },
        }),
        r#"{"v":1,"type":"term.exited","body":{"stream":9,"term":3,"exit":{"code":0}}}"#,
    );
    golden::<BridgeEvent>(
        Envelope::event(bridge::ExecExited {
            stream: 11,
            exit: ExitStatus { code: None, signal: Some(9) },
            timed_out: true,
            cancelled: false,
        }),
        r#"{"v":1,"type":"exec.exited","body":{"stream":11,"exit":{"signal":9},"timed_out":true}}"#,
    );
}

#[test]
fn client_requests() {
    let server = || "srv".to_string();
    golden::<ClientRequest>(
        req(AccessWatch { server: server() }),
        r#"{"v":1,"id":"7","type":"access.watch","body":{"server":"srv"}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermOpen {
            server: server(),
            shell: None,
            args: vec![],
            cwd: None,
            size: TermSize { cols: 80, rows: 24 },
            env: Env::new(),
            container: None,
        }),
        r#"{"v":1,"id":"7","type":"term.open","body":{"server":"srv","size":{"cols":80,"rows":24}}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermOpen {
            server: server(),
            shell: None,
            args: vec![],
            cwd: None,
            size: TermSize { cols: 80, rows: 24 },
            env: Env::new(),
            container: Some(porta_shared::docker::Console {
                container: "web".into(),
                attach: true,
                ..Default::default()
            }),
        }),
        r#"{"v":1,"id":"7","type":"term.open","body":{"server":"srv","size":{"cols":80,"rows":24},"container":{"container":"web","attach":true}}}"#,
    );
    golden::<ClientRequest>(
        req(OnServer {
            server: server(),
            req: porta_shared::docker::DockerLogs {
                project: Some("shop".into()),
                tail: Some(500),
                follow: true,
                ..Default::default()
            },
        }),
        r#"{"v":1,"id":"7","type":"docker.logs","body":{"server":"srv","containers":[],"project":"shop","tail":500,"follow":true}}"#,
    );
    golden::<ClientRequest>(
        req(OnServer {
            server: server(),
            req: porta_shared::docker::DockerLogsRead { session: "ab".into(), wait_ms: 10_000, max_bytes: None },
        }),
        r#"{"v":1,"id":"7","type":"docker.logs.read","body":{"server":"srv","session":"ab","wait_ms":10000}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermAttach { server: server(), term: TermId(3), after: 77 }),
        r#"{"v":1,"id":"7","type":"term.attach","body":{"server":"srv","term":3,"after":77}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermDetach { stream: 2 }),
        r#"{"v":1,"id":"7","type":"term.detach","body":{"stream":2}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermResize { stream: 2, size: TermSize { cols: 90, rows: 20 } }),
        r#"{"v":1,"id":"7","type":"term.resize","body":{"stream":2,"size":{"cols":90,"rows":20}}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermSignal { stream: 2, signal: Signal::Hup }),
        r#"{"v":1,"id":"7","type":"term.signal","body":{"stream":2,"signal":"hup"}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermClose::Stream { stream: 2 }),
        r#"{"v":1,"id":"7","type":"term.close","body":{"stream":2}}"#,
    );
    golden::<ClientRequest>(
        req(client::TermClose::Term { server: server(), term: TermId(3) }),
        r#"{"v":1,"id":"7","type":"term.close","body":{"server":"srv","term":3}}"#,
    );
    golden::<ClientRequest>(
        req(client::FsWatch { server: server(), path: "/srv/app".into() }),
        r#"{"v":1,"id":"7","type":"fs.watch","body":{"server":"srv","path":"/srv/app"}}"#,
    );
    golden::<ClientRequest>(
        req(OnServer { server: server(), req: TermList {} }),
        r#"{"v":1,"id":"7","type":"term.list","body":{"server":"srv"}}"#,
    );
    golden::<ClientRequest>(
        req(client::ExecStart {
            server: server(),
            argv: vec!["echo hi".into()],
            shell: true,
            cwd: None,
            env: Env::new(),
            timeout_ms: None,
        }),
        r#"{"v":1,"id":"7","type":"exec.start","body":{"server":"srv","argv":["echo hi"],"shell":true}}"#,
    );
    golden::<ClientRequest>(
        req(client::ExecCancel { stream: 4 }),
        r#"{"v":1,"id":"7","type":"exec.cancel","body":{"stream":4}}"#,
    );
    golden::<ClientRequest>(
        req(OnServer { server: server(), req: FsRead { path: "/x".into(), offset: 0, limit: None } }),
        r#"{"v":1,"id":"7","type":"fs.read","body":{"server":"srv","path":"/x","offset":0}}"#,
    );
    golden::<ClientRequest>(
        req(OnServer { server: server(), req: FsDelete { path: "/x".into(), recursive: false } }),
        r#"{"v":1,"id":"7","type":"fs.delete","body":{"server":"srv","path":"/x","recursive":false}}"#,
    );
    golden::<ClientRequest>(
        req(OnServer { server: server(), req: SysInfoRequest {} }),
        r#"{"v":1,"id":"7","type":"sys.info","body":{"server":"srv"}}"#,
    );
    // Every tag of the set decodes from its minimal form or names its missing field.
    for ty in ClientRequest::TYPES {
        let json = format!(r#"{{"v":1,"id":"1","type":"{ty}","body":{{}}}}"#);
        match Envelope::<ClientRequest>::decode(&json) {
            Ok(_) | Err(DecodeError::InvalidBody { .. }) => {}
            Err(e) => panic!("{ty}: {e}"),
        }
    }
}

#[test]
fn client_events() {
    let reason = || ErrorBody::new(ErrorCode::ServerOffline, "server went offline");
    golden::<ClientEvent>(
        Envelope::event(AccessChanged { server: "srv".into(), role: Some("viewer".into()) }),
        r#"{"v":1,"type":"access.changed","body":{"server":"srv","role":"viewer"}}"#,
    );
    golden::<ClientEvent>(
        Envelope::event(AccessChanged { server: "srv".into(), role: None }),
        r#"{"v":1,"type":"access.changed","body":{"server":"srv"}}"#,
    );
    golden::<ClientEvent>(
        Envelope::event(StreamInterrupted { stream: 2, reason: reason() }),
        r#"{"v":1,"type":"stream.interrupted","body":{"stream":2,"reason":{"code":"server_offline","message":"server went offline"}}}"#,
    );
    golden::<ClientEvent>(
        Envelope::event(StreamResumed { stream: 2, from: 100 }),
        r#"{"v":1,"type":"stream.resumed","body":{"stream":2,"from":100}}"#,
    );
    golden::<ClientEvent>(
        Envelope::event(StreamClosed { stream: 2, reason: reason() }),
        r#"{"v":1,"type":"stream.closed","body":{"stream":2,"reason":{"code":"server_offline","message":"server went offline"}}}"#,
    );
    golden::<ClientEvent>(
        Envelope::event(client::TermExited {
            stream: 2,
            term: TermId(3),
            exit: ExitStatus { code: Some(130), signal: None },
        }),
        r#"{"v":1,"type":"term.exited","body":{"stream":2,"term":3,"exit":{"code":130}}}"#,
    );
    golden::<ClientEvent>(
        Envelope::event(client::ExecExited {
            stream: 4,
            exit: ExitStatus { code: Some(1), signal: None },
            timed_out: false,
            cancelled: true,
        }),
        r#"{"v":1,"type":"exec.exited","body":{"stream":4,"exit":{"code":1},"cancelled":true}}"#,
    );
}

#[test]
fn replies() {
    let ok = Reply::ok("7", &TermAttached { info: info(), from: 0 });
    assert_eq!(
        ok,
        r#"{"v":1,"id":"7","type":"ok","body":{"info":{"term":3,"shell":"/bin/bash","cwd":"/root","size":{"cols":80,"rows":24},"pid":4242,"started_ms":1700000000000,"end":10,"start":0,"attached":1},"from":0}}"#
    );
    let Incoming::<BridgeEvent>::Reply(reply) = Incoming::decode(&ok).expect("decodes") else { panic!("not a reply") };
    assert_eq!(reply.id.as_deref(), Some("7"));
    assert_eq!(reply.into_response::<bridge::TermAttach>().expect("ok").info, info());

    let err = Reply::error(Some("8"), &ErrorBody::new(ErrorCode::Conflict, "file changed"));
    assert_eq!(err, r#"{"v":1,"id":"8","type":"error","body":{"code":"conflict","message":"file changed"}}"#);
    let Incoming::<BridgeEvent>::Reply(reply) = Incoming::decode(&err).expect("decodes") else { panic!("not a reply") };
    assert_eq!(reply.result.expect_err("error").code, ErrorCode::Conflict);
}

#[test]
fn refusals_are_typed_and_echo_the_id() {
    let cases: &[(&str, ErrorCode, Option<&str>)] = &[
        ("not json", ErrorCode::BadRequest, None),
        ("[1,2]", ErrorCode::BadRequest, None),
        (r#"{"v":1,"id":"3","type":"no.such","body":{}}"#, ErrorCode::UnknownType, Some("3")),
        (r#"{"v":1,"id":"4","type":"fs.read","body":{"offset":"x"}}"#, ErrorCode::BadRequest, Some("4")),
        (r#"{"v":99,"id":"5","type":"fs.read","body":{}}"#, ErrorCode::UnsupportedVersion, Some("5")),
        (r#"{"v":1,"id":"","type":"fs.read","body":{}}"#, ErrorCode::BadRequest, None),
        (r#"{"v":1,"type":"ok","body":{}}"#, ErrorCode::BadRequest, None),
    ];
    for (json, code, id) in cases {
        let err = Envelope::<BridgeRequest>::decode(json).expect_err(json);
        assert_eq!(err.to_error_body().code, *code, "{json}");
        assert_eq!(err.request_id(), *id, "{json}");
        let reply = err.to_reply();
        assert!(reply.contains(&format!(r#""code":"{}""#, code.as_str())), "{reply}");
    }
    let huge = format!(r#"{{"v":1,"id":"1","type":"fs.read","body":{{"path":"{}"}}}}"#, "a".repeat(1 << 20));
    assert!(matches!(Envelope::<BridgeRequest>::decode(&huge), Err(DecodeError::TooLarge { .. })));
}

#[test]
fn unknown_error_codes_from_newer_peers_decode() {
    let json = r#"{"v":1,"id":"1","type":"error","body":{"code":"quota_exceeded","message":"m"}}"#;
    let Incoming::<BridgeEvent>::Reply(reply) = Incoming::decode(json).expect("decodes") else { panic!("not a reply") };
    assert_eq!(reply.result.expect_err("error").code, ErrorCode::Unknown);
}

#[test]
fn additive_fields_default_when_absent() {
    let env = Envelope::<BridgeRequest>::decode(r#"{"v":1,"id":"1","type":"term.open"}"#).expect("decodes");
    assert_eq!(env.msg, BridgeRequest::TermOpen(bridge::TermOpen::default()));
}
