//! Whole files between the browser and a server: read in pieces, written in one request or
//! as an upload in pieces (each checked against the hash of what was sent), and handed to the
//! browser as a download.

use porta_shared::bridge::{
    FsArchive, FsArchiveClose, FsArchiveRead, FsRead, FsUploadAbort, FsUploadBegin, FsUploadChunk, FsUploadCommit,
    FsWrite, FsWritten,
};
use porta_shared::client::OnServer;
use porta_shared::types::Base64;
use porta_shared::{ErrorBody, ErrorCode};
use sha2::{Digest as _, Sha256};
use wasm_bindgen::prelude::*;

use crate::conn::Conn;

/// Hex SHA-256, as the bridge writes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a whole file; refuses one that grows past `max` bytes while it is read.
pub async fn read_all(conn: &Conn, server: &str, path: &str, max: u64) -> Result<Vec<u8>, ErrorBody> {
    let mut out = Vec::new();
    loop {
        let req = FsRead { path: path.to_owned(), offset: out.len() as u64, limit: None };
        let piece = conn.call(OnServer { server: server.to_owned(), req }).await?;
        out.extend_from_slice(&piece.data.0);
        if out.len() as u64 > max {
            return Err(ErrorBody::new(ErrorCode::TooLarge, format!("{path} is larger than {max} bytes")));
        }
        if piece.eof || piece.data.0.is_empty() {
            return Ok(out);
        }
    }
}

/// Packs a folder on the server as a `.tar.gz` and reads it whole; the archive is dropped on
/// the server afterwards, whatever happens.
pub async fn read_folder_archive(conn: &Conn, server: &str, path: &str) -> Result<Vec<u8>, ErrorBody> {
    let on = |req| OnServer { server: server.to_owned(), req };
    let made = conn.call(on(FsArchive { path: path.to_owned() })).await?;
    let mut out = Vec::with_capacity(made.size as usize);
    let read = async {
        while (out.len() as u64) < made.size {
            let req = FsArchiveRead { archive: made.archive.clone(), offset: out.len() as u64, limit: None };
            let piece = conn.call(OnServer { server: server.to_owned(), req }).await?;
            if piece.data.0.is_empty() {
                break;
            }
            out.extend_from_slice(&piece.data.0);
        }
        Ok::<_, ErrorBody>(())
    }
    .await;
    let close = FsArchiveClose { archive: made.archive };
    let _ = conn.call(OnServer { server: server.to_owned(), req: close }).await;
    read.map(|()| out)
}

/// How a write may go.
#[derive(Debug, Clone, Default)]
pub struct WriteRules {
    /// Refuse (`conflict`) unless the file now has this hash.
    pub expected_sha256: Option<String>,
    /// Refuse (`already_exists`) when the file exists.
    pub create_new: bool,
}

/// Writes `data` as the file's whole content, atomically: in one request when it fits, else
/// as an upload in pieces.
pub async fn write_all(
    conn: &Conn,
    server: &str,
    path: &str,
    data: &[u8],
    rules: WriteRules,
) -> Result<FsWritten, ErrorBody> {
    if data.len() <= FsWrite::MAX_DATA {
        let req = FsWrite {
            path: path.to_owned(),
            data: Base64(data.to_vec()),
            expected_sha256: rules.expected_sha256,
            create_new: rules.create_new,
            mode: None,
        };
        return conn.call(OnServer { server: server.to_owned(), req }).await;
    }
    let size = data.len() as u64;
    upload(conn, server, path, size, rules, async |offset, len| Ok(data[offset as usize..][..len].to_vec()), |_| {})
        .await
}

/// Uploads `size` bytes, read piece by piece with `read(offset, len)`, reporting the bytes
/// sent so far. The bridge checks at the end that it received exactly what was read here
/// (by hash); anything going wrong drops the upload and leaves the target as it was.
pub async fn upload(
    conn: &Conn,
    server: &str,
    path: &str,
    size: u64,
    rules: WriteRules,
    read: impl AsyncFn(u64, usize) -> Result<Vec<u8>, ErrorBody>,
    mut progress: impl FnMut(u64),
) -> Result<FsWritten, ErrorBody> {
    let begin = FsUploadBegin {
        path: path.to_owned(),
        size,
        expected_sha256: rules.expected_sha256,
        create_new: rules.create_new,
        mode: None,
    };
    let upload = conn.call(OnServer { server: server.to_owned(), req: begin }).await?.upload;
    let sent = async {
        let mut hash = Sha256::new();
        let mut offset = 0u64;
        while offset < size {
            let len = (size - offset).min(FsWrite::MAX_DATA as u64) as usize;
            let data = read(offset, len).await?;
            if data.len() != len {
                return Err(ErrorBody::new(ErrorCode::Conflict, "the file changed while it was being uploaded"));
            }
            hash.update(&data);
            let chunk = FsUploadChunk { upload: upload.clone(), offset, data: Base64(data) };
            offset = conn.call(OnServer { server: server.to_owned(), req: chunk }).await?.received;
            progress(offset);
        }
        let commit = FsUploadCommit { upload: upload.clone(), sha256: Some(hex::encode(hash.finalize())) };
        conn.call(OnServer { server: server.to_owned(), req: commit }).await
    }
    .await;
    if sent.is_err() {
        let _ = conn.call(OnServer { server: server.to_owned(), req: FsUploadAbort { upload } }).await;
    }
    sent
}

/// Offers bytes to the person as a file download named `name`.
pub fn download(name: &str, data: &[u8]) -> Result<(), String> {
    let fail = |e: JsValue| format!("the browser refused the download: {e:?}");
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(data));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/octet-stream");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts).map_err(fail)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(fail)?;
    let document = crate::browser::window().document().ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a").map_err(fail)?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // The click has started the download; the URL can go once it has been read.
    leptos::task::spawn_local(async move {
        crate::browser::sleep(60_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

/// Whether bytes are better not shown as text: a NUL early on, or not UTF-8.
pub fn looks_binary(data: &[u8]) -> bool {
    data[..data.len().min(8192)].contains(&0) || std::str::from_utf8(data).is_err()
}

/// The last part of a path.
pub fn file_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_means_nul_or_not_utf8() {
        assert!(!looks_binary(b"fn main() {}\n"));
        assert!(!looks_binary("héllo ✓".as_bytes()));
        assert!(!looks_binary(b""));
        assert!(looks_binary(b"ELF\0\x01"));
        assert!(looks_binary(&[0xff, 0xfe, b'a']));
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name("/home/a/b.rs"), "b.rs");
        assert_eq!(file_name("/home/a/"), "a");
        assert_eq!(file_name("b"), "b");
    }

    #[test]
    fn hashes_match_the_bridge() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
