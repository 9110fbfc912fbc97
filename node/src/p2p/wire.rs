//! What peers send each other: the gossip envelope of relayed blocks and transactions, and the
//! sync protocol (status, headers and blocks by height range) with its request-response codec.
//!
//! Blocks, headers and transactions travel in the engine's binary encodings
//! ([`Block::write_to`], [`BlockHeader::write_to`], [`TxData::write_to`]); everything else is
//! fixed-width big-endian.
//!
//! ```text
//! gossip  = u8 version (1) | u64 sent_at (Unix µs) | block or transaction encoding
//! frame   = u32 length | payload                    (one request or response per stream)
//! request = 0x01 status | 0x02 u64 from_height u32 max (headers) | 0x03 u64 from_height u32 max (blocks)
//! status  = [32] genesis | u64 tip_height | [32] tip_hash
//! response = 0x01 status | 0x02 u32 count, count × header (flags 0x01)
//!          | 0x03 u32 count, count × block (flags 0x03)
//! ```
//!
//! Every length is checked against a limit before anything is allocated for it, so a peer
//! cannot make this node buffer more than [`MAX_RESPONSE_BYTES`] per response,
//! [`MAX_REQUEST_BYTES`] per request or [`MAX_GOSSIP_BYTES`] per gossip message.

use std::io;

use bystack_engine::encoding::{DecodeError, Reader};
use bystack_engine::hash::sha3;
use bystack_engine::{Block, BlockHeader, Hash, Transaction, TxData};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The largest block relayed or served, in encoded bytes: Bytom's p2p message cap
/// (22,020,098 hex characters) in raw bytes.
pub const MAX_BLOCK_BYTES: usize = 11_010_049;
/// The largest gossip message: a block and the envelope.
pub const MAX_GOSSIP_BYTES: usize = MAX_BLOCK_BYTES + GOSSIP_HEADER_BYTES;
/// The largest sync request.
pub const MAX_REQUEST_BYTES: usize = 1024;
/// The largest sync response. A block range is cut short to fit (at least one block is sent).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// The most headers one request may ask for.
pub const MAX_HEADERS_PER_REQUEST: u32 = 2048;
/// The most blocks one request may ask for.
pub const MAX_BLOCKS_PER_REQUEST: u32 = 256;
/// The sync protocol's name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/bystack/sync/1");

/// Version byte of the gossip envelope.
const GOSSIP_VERSION: u8 = 1;
/// Version byte and send time.
const GOSSIP_HEADER_BYTES: usize = 9;

/// Why bytes from a peer are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A length prefix or count above its limit.
    #[error("{what} is {got}, the limit is {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The claimed size.
        got: u64,
        /// The limit.
        max: u64,
    },
    /// An unknown message kind or envelope version.
    #[error("unknown {what} tag {tag:#04x}")]
    UnknownTag {
        /// Which tag.
        what: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// The message body does not decode.
    #[error("malformed {what}: {error}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's verdict.
        #[source]
        error: DecodeError,
    },
    /// A structure this node could not encode (a field out of range).
    #[error("cannot encode {what}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
    },
}

impl From<WireError> for io::Error {
    fn from(e: WireError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// A node's chain as it announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The genesis hash: peers of another genesis are refused.
    pub genesis: Hash,
    /// The tip's height.
    pub tip_height: u64,
    /// The tip's hash.
    pub tip_hash: Hash,
}

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    /// "Here is my status, what is yours?"
    Status(Status),
    /// Main-chain headers from a height on.
    Headers {
        /// The first height wanted.
        from_height: u64,
        /// How many at most (≤ [`MAX_HEADERS_PER_REQUEST`]).
        max: u32,
    },
    /// Main-chain blocks from a height on.
    Blocks {
        /// The first height wanted.
        from_height: u64,
        /// How many at most (≤ [`MAX_BLOCKS_PER_REQUEST`]).
        max: u32,
    },
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResponse {
    /// The responder's status.
    Status(Status),
    /// Consecutive main-chain headers (possibly fewer than asked, or none).
    Headers(Vec<BlockHeader>),
    /// Consecutive main-chain blocks (possibly fewer than asked, or none).
    Blocks(Vec<Block>),
}

/// What a gossip message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<T> {
    /// When the sender published it, Unix microseconds (for relay latency).
    pub sent_at_micros: u64,
    /// The block or transaction.
    pub item: T,
}

/// The current time in Unix microseconds.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn envelope(sent_at_micros: u64, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(GOSSIP_HEADER_BYTES + body.len());
    out.push(GOSSIP_VERSION);
    out.extend_from_slice(&sent_at_micros.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Splits a gossip message into its send time and body.
fn open_envelope(data: &[u8]) -> Result<(u64, &[u8]), WireError> {
    if data.len() > MAX_GOSSIP_BYTES {
        return Err(WireError::TooLarge {
            what: "gossip message",
            got: data.len() as u64,
            max: MAX_GOSSIP_BYTES as u64,
        });
    }
    let mut r = Reader::new(data);
    let version = r.read_u8().map_err(decode("gossip envelope"))?;
    if version != GOSSIP_VERSION {
        return Err(WireError::UnknownTag {
            what: "gossip version",
            tag: version,
        });
    }
    let sent = read_u64(&mut r, "gossip envelope")?;
    Ok((sent, r.rest()))
}

/// The gossip message relaying `block`, stamped `sent_at_micros`.
///
/// # Errors
/// [`WireError::Encode`] for a block with out-of-range fields, [`WireError::TooLarge`] above
/// [`MAX_BLOCK_BYTES`].
pub fn encode_block_gossip(block: &Block, sent_at_micros: u64) -> Result<Vec<u8>, WireError> {
    let body = block
        .encode()
        .map_err(|_| WireError::Encode { what: "block" })?;
    check_len("block", body.len(), MAX_BLOCK_BYTES)?;
    Ok(envelope(sent_at_micros, body))
}

/// The gossip message relaying `tx`, stamped `sent_at_micros`.
///
/// # Errors
/// [`WireError::Encode`] for a transaction with out-of-range fields, [`WireError::TooLarge`]
/// above [`MAX_BLOCK_BYTES`].
pub fn encode_tx_gossip(tx: &TxData, sent_at_micros: u64) -> Result<Vec<u8>, WireError> {
    let body = tx.encode().map_err(|_| WireError::Encode {
        what: "transaction",
    })?;
    check_len("transaction", body.len(), MAX_BLOCK_BYTES)?;
    Ok(envelope(sent_at_micros, body))
}

/// Decodes a relayed block.
///
/// # Errors
/// [`WireError`] for an oversized message, an unknown version or a body that is not exactly
/// one block.
pub fn decode_block_gossip(data: &[u8]) -> Result<Envelope<Block>, WireError> {
    let (sent_at_micros, body) = open_envelope(data)?;
    let item = Block::decode(body).map_err(decode("block"))?;
    Ok(Envelope {
        sent_at_micros,
        item,
    })
}

/// Decodes a relayed transaction.
///
/// # Errors
/// [`WireError`] for an oversized message, an unknown version or a body that is not exactly
/// one transaction.
pub fn decode_tx_gossip(data: &[u8]) -> Result<Envelope<Transaction>, WireError> {
    let (sent_at_micros, body) = open_envelope(data)?;
    let item = Transaction::decode(body).map_err(decode("transaction"))?;
    Ok(Envelope {
        sent_at_micros,
        item,
    })
}

/// The gossip message ID: a hash of the body, without the send time, so that a block or
/// transaction published again by another node (with its own time stamp) is a duplicate.
pub fn gossip_message_id(data: &[u8]) -> Vec<u8> {
    let body = data.get(GOSSIP_HEADER_BYTES..).unwrap_or(data);
    sha3(body).as_bytes().to_vec()
}

fn decode(what: &'static str) -> impl Fn(DecodeError) -> WireError {
    move |error| WireError::Decode { what, error }
}

fn check_len(what: &'static str, got: usize, max: usize) -> Result<(), WireError> {
    if got > max {
        return Err(WireError::TooLarge {
            what,
            got: got as u64,
            max: max as u64,
        });
    }
    Ok(())
}

fn read_u64(r: &mut Reader<'_>, what: &'static str) -> Result<u64, WireError> {
    let bytes = r.read_bytes(8).map_err(decode(what))?;
    let mut buf = [0u8; 8];
    buf.copy_from_slice(bytes);
    Ok(u64::from_be_bytes(buf))
}

fn read_u32(r: &mut Reader<'_>, what: &'static str) -> Result<u32, WireError> {
    let bytes = r.read_bytes(4).map_err(decode(what))?;
    let mut buf = [0u8; 4];
    buf.copy_from_slice(bytes);
    Ok(u32::from_be_bytes(buf))
}

const TAG_STATUS: u8 = 0x01;
const TAG_HEADERS: u8 = 0x02;
const TAG_BLOCKS: u8 = 0x03;

fn write_status(out: &mut Vec<u8>, status: &Status) {
    out.extend_from_slice(status.genesis.as_bytes());
    out.extend_from_slice(&status.tip_height.to_be_bytes());
    out.extend_from_slice(status.tip_hash.as_bytes());
}

fn read_status(r: &mut Reader<'_>) -> Result<Status, WireError> {
    let genesis = r.read_hash().map_err(decode("status"))?;
    let tip_height = read_u64(r, "status")?;
    let tip_hash = r.read_hash().map_err(decode("status"))?;
    Ok(Status {
        genesis,
        tip_height,
        tip_hash,
    })
}

impl SyncRequest {
    /// The request's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        match self {
            SyncRequest::Status(status) => {
                out.push(TAG_STATUS);
                write_status(&mut out, status);
            }
            SyncRequest::Headers { from_height, max } => {
                out.push(TAG_HEADERS);
                out.extend_from_slice(&from_height.to_be_bytes());
                out.extend_from_slice(&max.to_be_bytes());
            }
            SyncRequest::Blocks { from_height, max } => {
                out.push(TAG_BLOCKS);
                out.extend_from_slice(&from_height.to_be_bytes());
                out.extend_from_slice(&max.to_be_bytes());
            }
        }
        out
    }

    /// Decodes a request; range sizes above the per-request limits are refused.
    ///
    /// # Errors
    /// [`WireError`] for an unknown kind, a short or long body, or a range above its limit.
    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, WireError> {
        let mut r = Reader::new(bytes);
        let tag = r.read_u8().map_err(decode("request"))?;
        let request = match tag {
            TAG_STATUS => SyncRequest::Status(read_status(&mut r)?),
            TAG_HEADERS | TAG_BLOCKS => {
                let from_height = read_u64(&mut r, "range request")?;
                let max = read_u32(&mut r, "range request")?;
                let (what, limit) = if tag == TAG_HEADERS {
                    ("headers requested", MAX_HEADERS_PER_REQUEST)
                } else {
                    ("blocks requested", MAX_BLOCKS_PER_REQUEST)
                };
                check_len(what, max as usize, limit as usize)?;
                if tag == TAG_HEADERS {
                    SyncRequest::Headers { from_height, max }
                } else {
                    SyncRequest::Blocks { from_height, max }
                }
            }
            tag => {
                return Err(WireError::UnknownTag {
                    what: "request",
                    tag,
                })
            }
        };
        r.finish().map_err(decode("request"))?;
        Ok(request)
    }
}

impl SyncResponse {
    /// The response's encoding.
    ///
    /// # Errors
    /// [`WireError::Encode`] for a header or block with out-of-range fields.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        match self {
            SyncResponse::Status(status) => {
                out.push(TAG_STATUS);
                write_status(&mut out, status);
            }
            SyncResponse::Headers(headers) => {
                out.push(TAG_HEADERS);
                out.extend_from_slice(&count_u32(headers.len()).to_be_bytes());
                for header in headers {
                    header
                        .write_to(&mut out, bystack_engine::block::SERFLAGS_HEADER)
                        .map_err(|_| WireError::Encode { what: "header" })?;
                }
            }
            SyncResponse::Blocks(blocks) => {
                out.push(TAG_BLOCKS);
                out.extend_from_slice(&count_u32(blocks.len()).to_be_bytes());
                for block in blocks {
                    block
                        .write_to(&mut out)
                        .map_err(|_| WireError::Encode { what: "block" })?;
                }
            }
        }
        Ok(out)
    }

    /// Decodes a response; counts above the per-request limits are refused.
    ///
    /// # Errors
    /// [`WireError`] for an unknown kind, a malformed body or a count above its limit.
    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, WireError> {
        let mut r = Reader::new(bytes);
        let tag = r.read_u8().map_err(decode("response"))?;
        let response = match tag {
            TAG_STATUS => SyncResponse::Status(read_status(&mut r)?),
            TAG_HEADERS => {
                let count = read_u32(&mut r, "headers")?;
                check_len(
                    "headers returned",
                    count as usize,
                    MAX_HEADERS_PER_REQUEST as usize,
                )?;
                let mut headers = Vec::new();
                for _ in 0..count {
                    let (header, flags) =
                        BlockHeader::read_from(&mut r).map_err(decode("header"))?;
                    if flags != bystack_engine::block::SERFLAGS_HEADER {
                        return Err(WireError::UnknownTag {
                            what: "header serflags",
                            tag: flags,
                        });
                    }
                    headers.push(header);
                }
                SyncResponse::Headers(headers)
            }
            TAG_BLOCKS => {
                let count = read_u32(&mut r, "blocks")?;
                check_len(
                    "blocks returned",
                    count as usize,
                    MAX_BLOCKS_PER_REQUEST as usize,
                )?;
                let mut blocks = Vec::new();
                for _ in 0..count {
                    let start = r.consumed();
                    let block = Block::read_from(&mut r).map_err(decode("block"))?;
                    check_len("block", r.consumed() - start, MAX_BLOCK_BYTES)?;
                    blocks.push(block);
                }
                SyncResponse::Blocks(blocks)
            }
            tag => {
                return Err(WireError::UnknownTag {
                    what: "response",
                    tag,
                })
            }
        };
        r.finish().map_err(decode("response"))?;
        Ok(response)
    }
}

/// A count that the request limits keep far below `u32::MAX`.
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The request-response codec of [`SYNC_PROTOCOL`]: one length-prefixed frame each way.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncCodec;

async fn read_frame<T>(io: &mut T, max: usize, what: &'static str) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    check_len(what, len, max)?;
    // Read what actually arrives rather than allocating the claimed length up front.
    let mut buf = Vec::new();
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{what} ended after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

async fn write_frame<T>(io: &mut T, payload: &[u8]) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame above 4 GiB"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(payload).await?;
    io.close().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, MAX_REQUEST_BYTES, "request").await?;
        Ok(SyncRequest::decode(&frame)?)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, MAX_RESPONSE_BYTES, "response").await?;
        Ok(SyncResponse::decode(&frame)?)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request.encode()).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response.encode()?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bystack_engine::devnet::{ChainGenerator, GeneratorConfig};

    fn sample_blocks(n: usize) -> Vec<Block> {
        let mut generator = ChainGenerator::new(GeneratorConfig::default());
        generator.generate(n).into_iter().map(|g| g.block).collect()
    }

    fn status() -> Status {
        Status {
            genesis: Hash([7; 32]),
            tip_height: 42,
            tip_hash: Hash([9; 32]),
        }
    }

    #[test]
    fn requests_round_trip() {
        for request in [
            SyncRequest::Status(status()),
            SyncRequest::Headers {
                from_height: 5,
                max: MAX_HEADERS_PER_REQUEST,
            },
            SyncRequest::Blocks {
                from_height: u64::MAX,
                max: 1,
            },
        ] {
            assert_eq!(SyncRequest::decode(&request.encode()), Ok(request));
        }
    }

    #[test]
    fn responses_round_trip() {
        let blocks = sample_blocks(3);
        let headers = blocks.iter().map(|b| b.header.clone()).collect();
        for response in [
            SyncResponse::Status(status()),
            SyncResponse::Headers(headers),
            SyncResponse::Blocks(blocks),
            SyncResponse::Blocks(Vec::new()),
        ] {
            let bytes = response.encode().expect("encodes");
            assert_eq!(SyncResponse::decode(&bytes), Ok(response));
        }
    }

    #[test]
    fn oversized_ranges_are_refused() {
        let request = SyncRequest::Blocks {
            from_height: 1,
            max: MAX_BLOCKS_PER_REQUEST + 1,
        };
        assert!(matches!(
            SyncRequest::decode(&request.encode()),
            Err(WireError::TooLarge { .. })
        ));
        let mut response = vec![TAG_HEADERS];
        response.extend_from_slice(&(MAX_HEADERS_PER_REQUEST + 1).to_be_bytes());
        assert!(matches!(
            SyncResponse::decode(&response),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let block = SyncResponse::Blocks(sample_blocks(1))
            .encode()
            .expect("encodes");
        for cut in 0..block.len() {
            assert!(SyncResponse::decode(&block[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            SyncRequest::decode(&[0x7f]),
            Err(WireError::UnknownTag { tag: 0x7f, .. })
        ));
        let mut trailing = SyncRequest::Status(status()).encode();
        trailing.push(0);
        assert!(SyncRequest::decode(&trailing).is_err());
    }

    #[test]
    fn gossip_round_trips_and_ids_ignore_the_send_time() {
        let block = sample_blocks(1).remove(0);
        let a = encode_block_gossip(&block, 1).expect("encodes");
        let b = encode_block_gossip(&block, 2).expect("encodes");
        assert_eq!(gossip_message_id(&a), gossip_message_id(&b));
        let decoded = decode_block_gossip(&b).expect("decodes");
        assert_eq!(decoded.sent_at_micros, 2);
        assert_eq!(decoded.item, block);
        let mut bad = a.clone();
        bad[0] = 9;
        assert!(matches!(
            decode_block_gossip(&bad),
            Err(WireError::UnknownTag { tag: 9, .. })
        ));
        assert!(decode_tx_gossip(&a).is_err());
    }

    #[test]
    fn frames_above_the_limit_are_refused_before_reading() {
        let mut bytes = ((MAX_REQUEST_BYTES + 1) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let mut io = futures::io::Cursor::new(bytes);
        let result = futures::executor::block_on(read_frame(&mut io, MAX_REQUEST_BYTES, "request"));
        assert_eq!(
            result.map_err(|e| e.kind()),
            Err(io::ErrorKind::InvalidData)
        );
    }
}
