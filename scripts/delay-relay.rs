// A TCP relay that puts an emulated wide-area path in front of a local server: each direction
// of each connection is delayed by half the round trip, and a connection's first bytes by its
// handshake's round trip (as src/server/link.rs does inside `fetchbench serve`), so that any
// server (nginx here) can be measured as if it were RTT away. Standard library only, so that
// `rustc -O` builds it without a crate registry.
//
//   delay-relay LISTEN_ADDR UPSTREAM_ADDR RTT_MS
//
// Per connection and direction, one thread reads and stamps each chunk with the time it would
// arrive; another writes the chunks to the other side when they are due. Chunks are never
// slept on one after another: a chunk waits only for its own time, so the delay costs no
// bandwidth. Each direction holds at most QUEUE_CAP bytes in flight (the reader waits beyond).
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes one direction holds between its read and its delivery: 64 MiB per half round trip
/// is 2.5 GiB/s at 50 ms, more than this machine's loopback with TLS delivers.
const QUEUE_CAP: usize = 64 << 20;
/// Largest read, so one chunk carries one time stamp.
const READ_CHUNK: usize = 256 << 10;

struct Lane {
    state: Mutex<LaneState>,
    changed: Condvar,
}

struct LaneState {
    chunks: VecDeque<(Instant, Vec<u8>)>,
    queued: usize,
    /// The reading side has ended (EOF): after the queued chunks, shut the writing side.
    ended: bool,
    /// The writing side failed: drop everything.
    failed: bool,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            state: Mutex::new(LaneState {
                chunks: VecDeque::new(),
                queued: 0,
                ended: false,
                failed: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Queues a chunk; false once the writer has failed.
    fn push(&self, due: Instant, bytes: Vec<u8>) -> bool {
        let mut state = self.state.lock().unwrap();
        while state.queued >= QUEUE_CAP && !state.failed {
            state = self.changed.wait(state).unwrap();
        }
        if state.failed {
            return false;
        }
        state.queued += bytes.len();
        state.chunks.push_back((due, bytes));
        self.changed.notify_all();
        true
    }

    fn end(&self) {
        self.state.lock().unwrap().ended = true;
        self.changed.notify_all();
    }

    fn fail(&self) {
        let mut state = self.state.lock().unwrap();
        state.failed = true;
        state.chunks.clear();
        state.queued = 0;
        self.changed.notify_all();
    }

    /// The next chunk; None at the end.
    fn pop(&self) -> Option<(Instant, Vec<u8>)> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(chunk) = state.chunks.pop_front() {
                state.queued -= chunk.1.len();
                self.changed.notify_all();
                return Some(chunk);
            }
            if state.ended || state.failed {
                return None;
            }
            state = self.changed.wait(state).unwrap();
        }
    }
}

/// Moves `from`'s bytes to `to`, each chunk delivered at max(read + one_way, earliest).
fn direction(mut from: TcpStream, mut to: TcpStream, one_way: Duration, earliest: Instant) {
    let lane = Arc::new(Lane::new());
    let writer_lane = Arc::clone(&lane);
    let (from_clone, to_clone) = (from.try_clone().ok(), to.try_clone().ok());
    let writer = thread::spawn(move || {
        while let Some((due, bytes)) = writer_lane.pop() {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                writer_lane.fail();
                // Unblock the reader too: the connection is over.
                if let Some(from) = &from_clone {
                    let _ = from.shutdown(Shutdown::Both);
                }
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let due = (Instant::now() + one_way).max(earliest);
                // A large read is queued as it is (no copy), a small one as a copy of its size.
                let chunk = if n >= READ_CHUNK / 4 {
                    let mut full = std::mem::replace(&mut buf, vec![0u8; READ_CHUNK]);
                    full.truncate(n);
                    full
                } else {
                    buf[..n].to_vec()
                };
                if !lane.push(due, chunk) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // A reset: pass it on as the end of the other side's connection.
                if let Some(to) = &to_clone {
                    let _ = to.shutdown(Shutdown::Both);
                }
                lane.fail();
                break;
            }
        }
    }
    lane.end();
    let _ = writer.join();
}

fn relay(client: TcpStream, upstream: &str, rtt: Duration) {
    let accepted = Instant::now();
    let server = match TcpStream::connect(upstream) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("delay-relay: cannot connect to {upstream}: {e}");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let one_way = rtt / 2;
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // The client's first bytes leave once the SYN-ACK is back (one round trip) and arrive
    // half a round trip later; the server's reach the client a round trip after that at the
    // earliest (it answers what it has received).
    let up = thread::spawn(move || direction(client, server, one_way, accepted + rtt + one_way));
    direction(server2, client2, one_way, accepted + rtt * 2);
    let _ = up.join();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: delay-relay LISTEN_ADDR UPSTREAM_ADDR RTT_MS");
        std::process::exit(2);
    }
    let rtt = Duration::from_micros((args[3].parse::<f64>().expect("RTT_MS is a number") * 1000.0) as u64);
    let listener = TcpListener::bind(&args[1]).unwrap_or_else(|e| {
        eprintln!("delay-relay: cannot listen on {}: {e}", args[1]);
        std::process::exit(1);
    });
    let upstream = Arc::new(args[2].clone());
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let upstream = Arc::clone(&upstream);
        thread::spawn(move || relay(client, &upstream, rtt));
    }
}
