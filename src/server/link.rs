//! A network path per connection: each direction delayed by half the round trip, the TCP
//! handshake's round trip before the first bytes, and a link rate paced from server to client.
//!
//! [`Link`] stands between an accepted socket and the HTTP (or TLS) code. Two small tasks move
//! the bytes: one reads the socket and stamps each chunk with the time it would have arrived,
//! one writes the server's chunks to the socket when they are due. Both queues are bounded
//! (their senders wait), so a connection holds at most what is in flight, never a whole body.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, Sleep};

use crate::sync::lock;

/// Most bytes the server-to-client direction of one connection holds between the server's
/// writes and their delivery. A path carries at most this much per half round trip: 640 MiB/s
/// at a 50 ms round trip, more than this machine's loopback with TLS delivers, in at most
/// 16 MiB per connection that is actually sending.
const WINDOW: usize = 16 << 20;
/// Most bytes the client-to-server direction holds (requests and HTTP/2 control frames are
/// small; beyond it the socket's own buffer holds the client back).
const READ_AHEAD: usize = 1 << 20;
/// Largest chunk stamped with one time.
const CHUNK: usize = 64 << 10;
/// With a link rate, a chunk is at most this much of the link's time, so the pacing is smooth.
const PACING_SLICE: Duration = Duration::from_millis(5);
/// With a link rate, bytes wait at most about this long to be sent before the server's writes
/// wait (a socket's send buffer, not a whole body).
const SEND_BACKLOG: Duration = Duration::from_millis(50);

/// The path every connection of a server crosses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Network {
    /// Round-trip time: each direction is delayed by half of it, and a connection's first bytes
    /// by its handshake's round trip.
    pub(crate) rtt: Duration,
    /// Bytes/s from server to client on each connection; `None` or `Some(0)`: unlimited.
    pub(crate) link_rate: Option<u64>,
}

impl Network {
    /// Whether connections are served as accepted, with nothing in between.
    pub(crate) fn is_direct(&self) -> bool {
        self.rtt.is_zero() && self.rate().is_none()
    }

    fn rate(&self) -> Option<u64> {
        self.link_rate.filter(|&rate| rate > 0)
    }
}

/// An accepted connection seen through its path: reads return the client's bytes when they
/// would have arrived, writes are delivered to the client when they would arrive there.
/// Writes never wait for the path (they wait only while the queue is full), and flushing is
/// immediate, as with a socket's send buffer.
pub(super) struct Link {
    inbound: Arc<Lane>,
    outbound: Arc<Lane>,
    schedule: Schedule,
    /// Largest chunk one write queues.
    chunk: usize,
    /// The inbound chunk being read, with the time it arrives.
    reading: Option<(Instant, Bytes)>,
    sleep: Pin<Box<Sleep>>,
}

impl Link {
    /// Puts `socket` behind `network`, starting its two tasks on the current runtime.
    /// `accepted` is when the client's connect returned (on loopback, at once).
    pub(super) fn new(socket: TcpStream, network: Network, accepted: Instant) -> Link {
        let one_way = network.rtt / 2;
        let rate = network.rate();
        let (read, write) = socket.into_split();
        let inbound = Arc::new(Lane::new(READ_AHEAD));
        let outbound_capacity = rate.map_or(WINDOW, |rate| {
            let in_flight = one_way + SEND_BACKLOG;
            (rate as f64 * in_flight.as_secs_f64()).clamp(CHUNK as f64, WINDOW as f64) as usize
        });
        let outbound = Arc::new(Lane::new(outbound_capacity));
        // On a real path, the client's first bytes leave when the handshake's SYN-ACK has come
        // back (one round trip) and arrive half a round trip later; the server's first bytes
        // reach the client no sooner than after a round trip more.
        let inbound_schedule = Schedule::new(one_way, accepted + network.rtt + one_way, None);
        let schedule = Schedule::new(one_way, accepted + network.rtt * 2, rate);
        tokio::spawn(receive(read, Arc::clone(&inbound), inbound_schedule));
        tokio::spawn(send(write, Arc::clone(&outbound)));
        let chunk = rate.map_or(CHUNK, |rate| {
            ((rate as f64 * PACING_SLICE.as_secs_f64()) as usize).clamp(1024, CHUNK)
        });
        Link {
            inbound,
            outbound,
            schedule,
            chunk,
            reading: None,
            sleep: Box::pin(tokio::time::sleep_until(accepted)),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // What was written still reaches the client (then the socket is shut down, as the
        // kernel would); what the client sends from now on is dropped.
        self.outbound.end();
        self.inbound.abandon();
    }
}

impl AsyncRead for Link {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some((due, bytes)) = &mut this.reading {
                if *due > Instant::now() {
                    this.sleep.as_mut().reset(*due);
                    ready!(this.sleep.as_mut().poll(cx));
                }
                let n = buf.remaining().min(bytes.len());
                buf.put_slice(&bytes.split_to(n));
                if bytes.is_empty() {
                    this.reading = None;
                }
                return Poll::Ready(Ok(()));
            }
            match ready!(this.inbound.poll_pop(cx)) {
                Some(chunk) => this.reading = Some(chunk),
                // The client closed its side (or the socket failed): end of stream.
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for Link {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.outbound.poll_space(cx))?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut chunk = BytesMut::with_capacity(total.min(this.chunk));
        for buf in bufs {
            let take = (this.chunk - chunk.len()).min(buf.len());
            chunk.extend_from_slice(&buf[..take]);
            if chunk.len() == this.chunk {
                break;
            }
        }
        let n = chunk.len();
        if n > 0 {
            let due = this.schedule.due(n);
            this.outbound.push(due, chunk.freeze());
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outbound.end();
        Poll::Ready(Ok(()))
    }
}

/// When each chunk of one direction arrives at the other end.
struct Schedule {
    one_way: Duration,
    /// Nothing arrives before this (the handshake).
    earliest: Instant,
    rate: Option<u64>,
    /// With a rate: when the link has sent everything queued so far.
    link_free: Instant,
}

impl Schedule {
    fn new(one_way: Duration, earliest: Instant, rate: Option<u64>) -> Schedule {
        Schedule {
            one_way,
            earliest,
            rate,
            link_free: Instant::now(),
        }
    }

    /// The arrival time of `len` bytes handed over now: paced at the rate (no bursts: the
    /// link's idle time is not saved up), then half a round trip on the way.
    fn due(&mut self, len: usize) -> Instant {
        let now = Instant::now();
        let sent = match self.rate {
            None => now,
            Some(rate) => {
                let start = self.link_free.max(now);
                self.link_free = start + Duration::from_secs_f64(len as f64 / rate as f64);
                self.link_free
            }
        };
        (sent + self.one_way).max(self.earliest)
    }
}

/// Reads the client's bytes as they come and queues each chunk with its arrival time.
async fn receive(mut socket: OwnedReadHalf, lane: Arc<Lane>, mut schedule: Schedule) {
    let mut buf = BytesMut::new();
    loop {
        if poll_fn(|cx| lane.poll_space(cx)).await.is_err() {
            break;
        }
        buf.reserve(CHUNK);
        let read = tokio::select! {
            read = socket.read_buf(&mut buf) => read,
            // The connection's reader is gone: stop reading (the socket closes with the sender).
            () = poll_fn(|cx| lane.poll_abandoned(cx)) => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let due = schedule.due(n);
                lane.push(due, buf.split().freeze());
            }
        }
    }
    lane.end();
}

/// Writes the server's chunks to the socket as they come due, then shuts the socket down.
async fn send(mut socket: OwnedWriteHalf, lane: Arc<Lane>) {
    while let Some((due, bytes)) = poll_fn(|cx| lane.poll_pop(cx)).await {
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        if socket.write_all(&bytes).await.is_err() {
            // The client is gone: the server's next write fails, as on a socket.
            lane.abandon();
            return;
        }
    }
    let _ = socket.shutdown().await;
}

/// One direction's queue of chunks and their arrival times, bounded in bytes.
struct Lane {
    state: Mutex<LaneState>,
}

struct LaneState {
    chunks: VecDeque<(Instant, Bytes)>,
    queued: usize,
    capacity: usize,
    /// The sending side is done: after the queued chunks, end of stream.
    ended: bool,
    /// The receiving side is gone: nothing more is queued.
    abandoned: bool,
    receiver: Option<Waker>,
    sender: Option<Waker>,
}

impl Lane {
    fn new(capacity: usize) -> Lane {
        Lane {
            state: Mutex::new(LaneState {
                chunks: VecDeque::new(),
                queued: 0,
                capacity,
                ended: false,
                abandoned: false,
                receiver: None,
                sender: None,
            }),
        }
    }

    /// Ready when a chunk may be queued; an error once the receiver is gone.
    fn poll_space(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = lock(&self.state);
        if state.abandoned {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if state.queued < state.capacity {
            return Poll::Ready(Ok(()));
        }
        state.sender = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ready once the receiver is gone.
    fn poll_abandoned(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if state.abandoned {
            return Poll::Ready(());
        }
        state.sender = Some(cx.waker().clone());
        Poll::Pending
    }

    fn push(&self, due: Instant, bytes: Bytes) {
        let waker = {
            let mut state = lock(&self.state);
            if state.abandoned {
                return;
            }
            state.queued += bytes.len();
            state.chunks.push_back((due, bytes));
            state.receiver.take()
        };
        waker.into_iter().for_each(Waker::wake);
    }

    /// The next chunk; `None` at the end of the stream.
    fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<(Instant, Bytes)>> {
        let mut state = lock(&self.state);
        match state.chunks.pop_front() {
            Some(chunk) => {
                state.queued -= chunk.1.len();
                let waker = state.sender.take();
                drop(state);
                waker.into_iter().for_each(Waker::wake);
                Poll::Ready(Some(chunk))
            }
            None if state.ended => Poll::Ready(None),
            None => {
                state.receiver = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn end(&self) {
        let waker = {
            let mut state = lock(&self.state);
            state.ended = true;
            state.receiver.take()
        };
        waker.into_iter().for_each(Waker::wake);
    }

    fn abandon(&self) {
        let waker = {
            let mut state = lock(&self.state);
            state.abandoned = true;
            state.chunks.clear();
            state.queued = 0;
            state.sender.take()
        };
        waker.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerConfig;
    use crate::server::testing::{expected, get, start};
    use std::io::{Read, Write};
    use std::net::TcpStream as StdTcpStream;
    use std::time::Instant as StdInstant;

    const RTT: Duration = Duration::from_millis(200);

    fn behind(network: Network) -> crate::server::ServerHandle {
        start(ServerConfig {
            network,
            ..ServerConfig::default()
        })
    }

    /// Sends a keep-alive GET for `size` bytes on `stream` and reads its response; returns the
    /// time until the head's first byte and the body.
    fn keep_alive_get(stream: &mut StdTcpStream, name: &str, size: usize) -> (Duration, Vec<u8>) {
        let started = StdInstant::now();
        let head = format!("GET /files/{name}?size={size} HTTP/1.1\r\nHost: test\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send request");
        let mut raw = Vec::new();
        let mut first_byte = None;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buf).expect("read response");
            assert!(n > 0, "connection closed early");
            first_byte.get_or_insert_with(|| started.elapsed());
            raw.extend_from_slice(&buf[..n]);
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n")
                && raw.len() >= split + 4 + size
            {
                assert!(raw.starts_with(b"HTTP/1.1 200"), "{raw:?}");
                let body = raw.split_off(split + 4);
                return (first_byte.expect("a first byte"), body);
            }
        }
    }

    #[test]
    fn a_new_connection_costs_two_round_trips_and_the_next_request_one() {
        let server = behind(Network {
            rtt: RTT,
            link_rate: None,
        });
        let connected = StdInstant::now();
        let mut stream = StdTcpStream::connect(server.addr()).expect("connect");
        let (first, body) = keep_alive_get(&mut stream, "a.bin", 1000);
        assert_eq!(body, expected("a.bin", 0..1000));
        // Handshake, then the request's round trip (connect itself is instant on loopback).
        assert!(connected.elapsed() >= RTT * 2, "{:?}", connected.elapsed());
        assert!(first >= RTT * 2 - Duration::from_millis(5), "{first:?}");
        let (second, body) = keep_alive_get(&mut stream, "b.bin", 1000);
        assert_eq!(body, expected("b.bin", 0..1000));
        assert!(second >= RTT, "{second:?}");
        // A handshake paid again would make it two round trips at least.
        assert!(
            second < RTT * 2,
            "a reused connection paid a handshake: {second:?}"
        );
        assert_eq!(server.stats().connections, 1);
    }

    #[test]
    fn a_large_body_crosses_the_path_whole_and_bounded() {
        let server = behind(Network {
            rtt: Duration::from_millis(20),
            link_rate: None,
        });
        let size = 3 * WINDOW + 12_345;
        let mut stream = StdTcpStream::connect(server.addr()).expect("connect");
        let (_, body) = keep_alive_get(&mut stream, "big.bin", size);
        assert!(
            body == expected("big.bin", 0..size as u64),
            "the body differs"
        );
    }

    #[test]
    fn the_link_rate_caps_each_connection() {
        let server = behind(Network {
            rtt: Duration::from_millis(20),
            link_rate: Some(1_000_000),
        });
        let started = StdInstant::now();
        let reply = get(server.addr(), "/files/slow.bin?size=300000");
        assert_eq!(reply.body, expected("slow.bin", 0..300_000));
        // 300 kB at 1 MB/s: 300 ms on the link, after the two round trips.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300 + 40), "{elapsed:?}");
    }

    #[test]
    fn a_direct_network_is_served_as_accepted() {
        assert!(Network::default().is_direct());
        assert!(
            Network {
                rtt: Duration::ZERO,
                link_rate: Some(0),
            }
            .is_direct()
        );
        assert!(
            !Network {
                rtt: Duration::from_millis(1),
                link_rate: None,
            }
            .is_direct()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_spends_no_saved_up_idle_time() {
        let start = Instant::now();
        let one_way = Duration::from_millis(10);
        let mut schedule = Schedule::new(one_way, start + Duration::from_millis(50), Some(1000));
        // 100 bytes at 1000 B/s take 100 ms, then 10 ms on the way; never before the floor.
        assert_eq!(schedule.due(10), start + Duration::from_millis(50));
        assert_eq!(schedule.due(100), start + Duration::from_millis(120));
        assert_eq!(schedule.due(100), start + Duration::from_millis(220));
        // An idle second is not credited: the next chunk is paced from now.
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = Instant::now();
        assert_eq!(schedule.due(100), now + Duration::from_millis(110));
        let mut unpaced = Schedule::new(one_way, start, None);
        assert_eq!(unpaced.due(1 << 30), now + one_way);
    }
}
