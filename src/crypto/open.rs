//! Reading a backup that may be encrypted: a plain archive passes through unchanged, an age
//! file is decrypted with the identities given, in a streaming pass (memory bounded by age's
//! 64 KiB chunks and the channel between the decrypting thread and the reader).

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::keys::Identities;
use crate::pipeline::ChannelReader;

/// The first line of every age file (age-encryption.org/v1). A gzip stream (a plain Consul
/// snapshot archive) starts with `1f 8b` instead.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Why an encrypted backup could not be opened. Names recipients by fingerprint only.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the backup is encrypted with age{}; give --age-identity FILE (or CONSUL_SNAPSHOT_AGE_IDENTITY=FILE) with the key of one of its recipients", recipients_suffix(.recipients))]
    NoIdentity { recipients: Vec<String> },
    #[error("none of the identities given ({}) can decrypt the backup{}", given.join(", "), recipients_suffix(.recipients))]
    NoMatchingKey {
        given: Vec<String>,
        recipients: Vec<String>,
    },
    #[error("the backup is not a valid age file: {0}")]
    Invalid(String),
    #[error("reading the backup: {0}")]
    Io(#[from] io::Error),
}

fn recipients_suffix(recipients: &[String]) -> String {
    if recipients.is_empty() {
        String::new()
    } else {
        format!(" to {}", recipients.join(", "))
    }
}

/// Whether `prefix` (the first bytes of a file, at least [`AGE_MAGIC`]'s length when the file
/// is that long) starts an age file.
pub fn is_age(prefix: &[u8]) -> bool {
    prefix.len() >= AGE_MAGIC.len() && prefix.starts_with(AGE_MAGIC)
}

/// Reads the first `AGE_MAGIC.len()` bytes (fewer only at end of file).
fn read_prefix(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(AGE_MAGIC.len());
    r.by_ref()
        .take(AGE_MAGIC.len() as u64)
        .read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// The plaintext of `r`: `r` itself when it is not an age file, else its decryption with
/// `ids`. `recipients` (the fingerprints stored with the backup, if known) make the errors
/// name who can open it.
///
/// Errors: an age file with no identity given, or none of them a recipient; a broken age
/// header. Tampered or truncated ciphertext surfaces later as a read error (`InvalidData`).
pub fn open_read<R: Read + Send + 'static>(
    mut r: R,
    ids: &Identities,
    recipients: &[String],
) -> Result<Box<dyn Read + Send>, OpenError> {
    let prefix = read_prefix(&mut r)?;
    let whole = io::Cursor::new(prefix.clone()).chain(r);
    if !is_age(&prefix) {
        return Ok(Box::new(whole));
    }
    if ids.is_empty() {
        return Err(OpenError::NoIdentity {
            recipients: recipients.to_vec(),
        });
    }
    let decryptor = age::Decryptor::new_buffered(io::BufReader::with_capacity(1 << 16, whole))
        .map_err(|e| OpenError::Invalid(e.to_string()))?;
    match decryptor.decrypt(ids.iter()) {
        Ok(reader) => Ok(Box::new(reader)),
        Err(age::DecryptError::NoMatchingKeys) => Err(OpenError::NoMatchingKey {
            given: ids.fingerprints().to_vec(),
            recipients: recipients.to_vec(),
        }),
        Err(e) => Err(OpenError::Invalid(e.to_string())),
    }
}

/// Plaintext chunks read at a time from a decrypting reader, and queued towards the consumer.
const CHUNK: usize = 256 << 10;
const QUEUE: usize = 8;

/// [`open_read`] for a stream of chunks: a plain archive's chunks pass through as they are;
/// an age file is decrypted on a blocking thread. The header is checked (and its errors
/// returned) before this returns.
pub async fn open_stream(
    body: BoxStream<'static, io::Result<Bytes>>,
    ids: Arc<Identities>,
    recipients: Vec<String>,
) -> Result<BoxStream<'static, io::Result<Bytes>>, OpenError> {
    let (prefix, whole) = peek_magic(body).await?;
    if !is_age(&prefix) {
        return Ok(whole);
    }
    // Ciphertext in through a bounded channel, plaintext out through another.
    let (in_tx, in_rx) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
    let (out_tx, out_rx) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
    let (opened_tx, opened_rx) = oneshot::channel::<Result<(), OpenError>>();
    let feeder = tokio::spawn(async move {
        let mut whole = whole;
        while let Some(item) = whole.next().await {
            if in_tx.send(item).await.is_err() {
                break; // the decrypting side stopped
            }
        }
    });
    tokio::task::spawn_blocking(move || {
        match open_read(ChannelReader::new(in_rx), &ids, &recipients) {
            Ok(reader) => {
                let _ = opened_tx.send(Ok(()));
                pump(reader, &out_tx);
            }
            Err(e) => {
                let _ = opened_tx.send(Err(e));
            }
        }
    });
    match opened_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            feeder.abort();
            return Err(e);
        }
        Err(_) => {
            feeder.abort();
            return Err(OpenError::Io(io::Error::other(
                "the decrypting task stopped",
            )));
        }
    }
    Ok(stream::unfold(
        out_rx,
        |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
    )
    .boxed())
}

/// The first [`AGE_MAGIC`]-length bytes of `body` (fewer if it is shorter), and the whole
/// stream again, those bytes included.
async fn peek_magic(
    body: BoxStream<'static, io::Result<Bytes>>,
) -> io::Result<(Vec<u8>, BoxStream<'static, io::Result<Bytes>>)> {
    // Fused: a stream that ended before the magic's length is not polled again by the chain
    // below (some streams panic when polled after their end).
    let mut body = body.fuse();
    let mut head: Vec<Bytes> = Vec::new();
    let mut seen = 0;
    while seen < AGE_MAGIC.len() {
        match body.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                seen += chunk.len();
                head.push(chunk);
            }
            None => break,
        }
    }
    let prefix: Vec<u8> = head
        .iter()
        .flat_map(|c| c.iter().copied())
        .take(AGE_MAGIC.len())
        .collect();
    Ok((
        prefix,
        stream::iter(head.into_iter().map(Ok)).chain(body).boxed(),
    ))
}

/// Reads the plaintext of `reader` in [`CHUNK`]s into `out` (on a blocking thread) until it
/// ends, fails (the error is sent on) or the receiver is gone.
fn pump(mut reader: impl Read, out: &mpsc::Sender<io::Result<Bytes>>) {
    loop {
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                buf.truncate(n);
                if out.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = out.blocking_send(Err(e));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::{generate_identity, Recipients};

    fn encrypt(plain: &[u8], recipient: &str) -> Vec<u8> {
        let r = Recipients::parse(&[recipient.to_string()], &[]).expect("recipient");
        let mut out = Vec::new();
        let mut w = r
            .encryptor()
            .expect("enc")
            .wrap_output(&mut out)
            .expect("wrap");
        io::Write::write_all(&mut w, plain).expect("write");
        w.finish().expect("finish");
        out
    }

    fn ids(text: &str) -> Identities {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("id");
        std::fs::write(&f, text).expect("write");
        Identities::load(&[f]).expect("load")
    }

    #[test]
    fn plain_passes_through_and_age_decrypts() {
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (id_text, public) = generate_identity();
        let ids = ids(&id_text);
        let mut out = Vec::new();
        open_read(io::Cursor::new(plain.clone()), &ids, &[])
            .expect("plain")
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, plain);
        let sealed = encrypt(&plain, &public);
        assert!(is_age(&sealed));
        out.clear();
        open_read(io::Cursor::new(sealed), &ids, &[])
            .expect("age")
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, plain);
    }

    #[test]
    fn wrong_or_missing_identity_names_the_recipients() {
        let (_, public) = generate_identity();
        let (other, _) = generate_identity();
        let sealed = encrypt(b"secret", &public);
        let hint = vec![crate::crypto::keys::fingerprint(&public)];
        let err = open_read(
            io::Cursor::new(sealed.clone()),
            &Identities::default(),
            &hint,
        )
        .err()
        .expect("no identity");
        assert!(matches!(err, OpenError::NoIdentity { .. }));
        assert!(err.to_string().contains(&hint[0]), "{err}");
        let err = open_read(io::Cursor::new(sealed), &ids(&other), &hint)
            .err()
            .expect("wrong identity");
        assert!(matches!(err, OpenError::NoMatchingKey { .. }), "{err}");
        assert!(err.to_string().contains(&hint[0]), "{err}");
    }

    #[test]
    fn tampered_ciphertext_is_a_read_error() {
        let (id_text, public) = generate_identity();
        let mut sealed = encrypt(&[7u8; 100_000], &public);
        let n = sealed.len();
        sealed[n - 100] ^= 1;
        let mut out = Vec::new();
        let r = open_read(io::Cursor::new(sealed), &ids(&id_text), &[])
            .expect("header fine")
            .read_to_end(&mut out);
        assert!(r.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_decrypt_in_chunks() {
        let plain: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let (id_text, public) = generate_identity();
        let sealed = encrypt(&plain, &public);
        // Split into small uneven chunks, the first shorter than the magic line.
        let chunks: Vec<io::Result<Bytes>> = sealed
            .chunks(5)
            .take(3)
            .chain(sealed[15..].chunks(70_001))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let s = open_stream(
            stream::iter(chunks).boxed(),
            Arc::new(ids(&id_text)),
            vec![],
        )
        .await
        .expect("open");
        let got: Vec<u8> = s.map(|c| c.expect("chunk").to_vec()).concat().await;
        assert_eq!(got, plain);
    }

    #[tokio::test]
    async fn a_stream_shorter_than_the_magic_is_not_polled_past_its_end() {
        // An unfold stream panics when polled after its end: the opener must not do that.
        let short = stream::unfold(Some(Bytes::from_static(b"age-encry")), |x| async move {
            x.map(|b| (Ok::<Bytes, io::Error>(b), None))
        })
        .boxed();
        let mut out = open_stream(short, Arc::new(Identities::default()), Vec::new())
            .await
            .expect("not an age file: passed through");
        let mut got = Vec::new();
        while let Some(chunk) = out.next().await {
            got.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(got, b"age-encry");
    }
}
