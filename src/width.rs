//! How many downloads run at once: a fixed `-j N`, or `-j auto` (the default), which finds the
//! width from what it measures, as TCP finds its window.
//!
//! Every mode takes its downloads through one [`Width`]: a gate that lets a download start
//! only while fewer than the width are running. Under `auto` the width moves:
//!
//! - **Probe.** One download runs alone until its response head arrives (at most
//!   [`PROBE_WAIT`]), so that the first connection tells the protocol before others are opened
//!   (over HTTP/2 they all share it; curl `--parallel` waits for its first connection for the
//!   same reason).
//! - **Slow start.** Then the width starts at [`START_H2`] or [`START_H1`] and grows by one
//!   for every download that ends, which doubles it each round trip, for as long as the files
//!   or bytes completed per second keep rising (by [`GAIN`] over the best epoch so far).
//! - **Steady.** When two epochs in a row bring no gain, the width goes back to the best
//!   epoch's, then probes a quarter wider every few epochs, keeping what pays and undoing what
//!   does not; when the rate falls to half of the best, it narrows by a quarter.
//! - **Push-back.** A 429 or 503, a refused stream or a refused connection halves the width at
//!   once, and it does not grow again (nor halve again for the same burst) for two epochs.
//!
//! The width never passes the politeness cap of the protocol ([`MAX_H1`] connections at once
//! over HTTP/1.1, [`MAX_H2`] streams over HTTP/2, which the server's own stream limit queues
//! further), nor what the process's file descriptors allow; a fixed `-j` above that limit is
//! capped too, and the run says so once.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use reqwest::Version;

use crate::sync::lock;

/// Width of the first round after the probe, over HTTP/2: streams on one connection, as many
/// as servers commonly allow at once (nginx 128, many CDNs 100); past the server's own limit
/// they wait on the connection, at no cost to it.
pub(crate) const START_H2: usize = 128;
/// Width of the first round after the probe, over HTTP/1.1 (a connection each).
pub(crate) const START_H1: usize = 16;
/// Downloads at once over HTTP/1.1 under `auto`: each is a connection to the host (curl
/// `--parallel` opens up to 50, wget2 5, browsers 6 per host). At 32, 1000 small files over a
/// 50 ms path took 2.2 s where curl's 50 took 1.8 s.
pub(crate) const MAX_H1: usize = 64;
/// Downloads at once over HTTP/2 under `auto`: streams, mostly on one connection per host.
pub(crate) const MAX_H2: usize = 256;
/// A rise in files/s or bytes/s that counts as a gain.
const GAIN: f64 = 1.10;
/// How much of the best rate may be lost before the width narrows.
const FALL: f64 = 0.5;
/// Bounds of an epoch, the span over which rates are compared: about one download's time.
const EPOCH_MIN: Duration = Duration::from_millis(25);
const EPOCH_MAX: Duration = Duration::from_secs(2);
/// The longest the probe waits for its response head: a slow first server (or a long path)
/// must not hold the whole run back; past this the climb starts as over HTTP/1.1.
const PROBE_WAIT: Duration = Duration::from_millis(300);
/// How often a waiting gate looks at the clock, so that epochs end without a completion.
const TICK: Duration = Duration::from_millis(50);
/// Epochs without a change before a steady width probes wider.
const STEADY_EPOCHS: u32 = 3;

/// The `-j` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Jobs {
    /// Find the width from what the run measures.
    #[default]
    Auto,
    /// Exactly this many at once (at least 1).
    Fixed(usize),
}

impl Jobs {
    /// `auto`, or a number of at least 1.
    pub(crate) fn parse(text: &str) -> Result<Jobs, String> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Jobs::Auto);
        }
        match text.parse::<usize>() {
            Ok(0) => Err("must be at least 1 (or auto)".to_owned()),
            Ok(n) => Ok(Jobs::Fixed(n)),
            Err(_) => Err(format!("{text:?} is not a number or auto")),
        }
    }
}

impl fmt::Display for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jobs::Auto => f.write_str("auto"),
            Jobs::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// What the width was over a run, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WidthReport {
    pub(crate) jobs: Jobs,
    /// The most downloads that ran at once.
    pub(crate) peak: usize,
    /// The width at the end.
    pub(crate) last: usize,
}

/// The gate every download of a run passes, and (under `auto`) what moves it.
pub(crate) struct Width {
    jobs: Jobs,
    state: Mutex<State>,
    changed: Condvar,
    /// Bytes received by the whole run so far, for bytes/s.
    received: Received,
    /// Told each new width (the live display).
    watcher: OnceLock<Watcher>,
}

/// What is told each new width.
pub(crate) type Watcher = Box<dyn Fn(usize) + Send + Sync>;

/// Reads the bytes the whole run has received so far.
pub(crate) type Received = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A count that stays at nothing: for widths that measure no bytes.
pub(crate) fn nothing_received() -> Received {
    Arc::new(|| 0)
}

struct State {
    running: usize,
    width: usize,
    /// The most downloads at once, so far.
    peak: usize,
    /// No download will ask again (the input has ended).
    closed: bool,
    climb: Option<Climb>,
    /// A fixed width held at one until the first response head (or [`PROBE_WAIT`]): the width
    /// then, and since when it waits.
    probing: Option<(usize, Instant)>,
}

impl Width {
    /// A width of exactly `jobs` downloads (`Auto` climbs), never above `caps.limit`.
    pub(crate) fn new(jobs: Jobs, caps: Caps, received: Received) -> Width {
        let (width, climb) = match jobs {
            Jobs::Fixed(n) => (n.clamp(1, caps.limit.max(1)), None),
            Jobs::Auto => (1, Some(Climb::new(caps, received()))),
        };
        Width {
            jobs,
            state: Mutex::new(State {
                running: 0,
                width,
                peak: 0,
                closed: false,
                climb,
                probing: None,
            }),
            changed: Condvar::new(),
            received,
            watcher: OnceLock::new(),
        }
    }

    /// A fixed width that measures nothing: for tests, and for the parts of a run with a width
    /// of their own.
    pub(crate) fn fixed(n: usize) -> Width {
        Width::new(Jobs::Fixed(n), Caps::unlimited(), nothing_received())
    }

    /// Tells `watcher` the width now and each time it changes (once per width).
    pub(crate) fn watch(&self, watcher: Watcher) {
        watcher(self.current());
        let _ = self.watcher.set(watcher);
    }

    /// A fixed width that first runs one download alone until its response head arrives (at
    /// most [`PROBE_WAIT`]), so that downloads sharing a client share its first HTTP/2
    /// connection instead of each opening one; `auto` always does.
    pub(crate) fn probing(self) -> Width {
        {
            let mut state = self.lock();
            if state.climb.is_none() && state.width > 1 {
                state.probing = Some((state.width, Instant::now()));
                state.width = 1;
            }
        }
        self
    }

    /// Reports `asked` as the `-j` setting (a mode may run a fixed width for `auto`).
    pub(crate) fn asked(mut self, asked: Jobs) -> Width {
        self.jobs = asked;
        self
    }

    /// Whether the width moves with what the run measures (`-j auto`).
    pub(crate) fn climbs(&self) -> bool {
        self.lock().climb.is_some()
    }

    /// The width now.
    pub(crate) fn current(&self) -> usize {
        self.lock().width
    }

    /// The most the width can become.
    pub(crate) fn most(&self) -> usize {
        let state = self.lock();
        match (&state.climb, state.probing) {
            (Some(climb), _) => climb
                .caps
                .h1
                .max(climb.caps.h2)
                .min(climb.caps.limit)
                .max(1),
            (None, Some((wide, _))) => wide,
            (None, None) => state.width,
        }
    }

    /// Waits until a download may start, and counts it as running until its [`Slot`] is
    /// dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Slot {
        let mut state = self.lock();
        while state.running >= state.width {
            state = match self.changed.wait_timeout(state, TICK) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
            self.tick(&mut state);
        }
        state.running += 1;
        Slot {
            width: Arc::clone(self),
            started: Instant::now(),
            used: false,
            ended: false,
        }
    }

    /// Waits until the width is more than `workers`, or no download will ask again; returns
    /// the width then, or `None` once closed. A pool grows its workers with it.
    pub(crate) fn wait_wider(&self, workers: usize) -> Option<usize> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if state.width > workers {
                return Some(state.width);
            }
            state = match self.changed.wait_timeout(state, TICK) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
            self.tick(&mut state);
        }
    }

    /// No download will ask to start again: wakes whoever waits for a wider width.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// A download's first response head arrived over `version`.
    pub(crate) fn responded(&self, version: Version) {
        let mut state = self.lock();
        if let Some((wide, _)) = state.probing.take() {
            self.set(&mut state, wide);
        }
        let width = state.width;
        if let Some(climb) = &mut state.climb {
            let wider = climb.responded(version, width);
            self.set(&mut state, wider);
        }
    }

    /// A download refused by its server gives up its place while it waits to retry, so that
    /// its retry queues behind the width like a new download instead of hitting the server
    /// again with every other refused one.
    pub(crate) fn stand_aside(self: &Arc<Self>) -> Aside {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        self.changed.notify_all();
        Aside {
            width: Some(Arc::clone(self)),
        }
    }

    /// The server pushed back (429, 503, a refused stream or connection).
    pub(crate) fn pushed_back(&self) {
        let mut state = self.lock();
        let (width, running) = (state.width, state.running);
        if let Some(climb) = &mut state.climb {
            let narrower = climb.pushed_back(width, running, Instant::now());
            self.set(&mut state, narrower);
        }
    }

    /// The summary's account of the width.
    pub(crate) fn report(&self) -> WidthReport {
        let state = self.lock();
        WidthReport {
            jobs: self.jobs,
            peak: state.peak.max(1),
            last: state.width,
        }
    }

    fn used(&self) {
        let mut state = self.lock();
        state.peak = state.peak.max(state.running);
    }

    fn ended(&self, took: Duration, used: bool) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        let width = state.width;
        if let Some(climb) = state.climb.as_mut().filter(|_| used) {
            let next = climb.ended(width, took);
            self.set(&mut state, next);
        }
        self.tick(&mut state);
        self.changed.notify_all();
    }

    fn tick(&self, state: &mut State) {
        if let Some((wide, since)) = state.probing {
            if since.elapsed() >= PROBE_WAIT {
                state.probing = None;
                self.set(state, wide);
            }
        }
        let width = state.width;
        let running = state.running;
        if let Some(climb) = &mut state.climb {
            let received = (self.received)();
            let next = climb.tick(width, running, received, Instant::now());
            self.set(state, next);
        }
    }

    fn set(&self, state: &mut State, width: usize) {
        if width != state.width {
            state.width = width.max(1);
            self.changed.notify_all();
            if let Some(watcher) = self.watcher.get() {
                watcher(state.width);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// A running download's place under the width; given back when dropped.
pub(crate) struct Slot {
    width: Arc<Width>,
    started: Instant,
    /// A download took this place (not only a look at the input that found it ended).
    used: bool,
    ended: bool,
}

impl Slot {
    /// A download runs in this place now.
    pub(crate) fn take(&mut self) {
        self.used = true;
        self.started = Instant::now();
        self.width.used();
    }

    /// The download ended (its time feeds the epoch length).
    pub(crate) fn end(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if !std::mem::replace(&mut self.ended, true) {
            self.width.ended(self.started.elapsed(), self.used);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// A place given up by a download waiting to retry ([`Width::stand_aside`]).
pub(crate) struct Aside {
    width: Option<Arc<Width>>,
}

impl Aside {
    /// Waits for a place under the width again.
    pub(crate) async fn rejoin(mut self) {
        let Some(width) = self.width.take() else {
            return;
        };
        loop {
            {
                let mut state = width.lock();
                width.tick(&mut state);
                if state.running < state.width {
                    state.running += 1;
                    return;
                }
            }
            tokio::time::sleep(TICK / 5).await;
        }
    }
}

impl Drop for Aside {
    /// Not rejoined (the download ends, or is stopped): the place is taken back at once, for
    /// its [`Slot`] to give back.
    fn drop(&mut self) {
        if let Some(width) = self.width.take() {
            width.lock().running += 1;
        }
    }
}

/// The ceilings of a width: what the descriptors allow, and under `auto` the politeness caps
/// by protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// Never more than this, whatever `-j` says.
    pub(crate) limit: usize,
    /// Under `auto`, over HTTP/1.1.
    pub(crate) h1: usize,
    /// Under `auto`, over HTTP/2.
    pub(crate) h2: usize,
}

impl Caps {
    pub(crate) fn unlimited() -> Caps {
        Caps {
            limit: usize::MAX,
            h1: MAX_H1,
            h2: MAX_H2,
        }
    }
}

/// `auto`'s state: what it has measured and which phase it is in.
#[derive(Debug)]
struct Climb {
    caps: Caps,
    phase: Phase,
    /// The protocol's cap, once a response told it (HTTP/1.1 wins once seen).
    ceiling: usize,
    epoch: Epoch,
    /// The best epoch so far: (files/s, bytes/s, the width at its end).
    best: Option<Rates>,
    /// Epochs in a row without a gain.
    flat: u32,
    /// Epochs in a row at under [`FALL`] of the best.
    falling: u32,
    /// No growth before this (after a push-back).
    hold_until: Option<Instant>,
    /// Mean time of a download, smoothed: an epoch lasts about this long.
    typical: Option<Duration>,
    /// A steady width's probe wider: the width to go back to, and epochs it has run.
    probe: Option<(usize, u32)>,
    h1_seen: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// One download, until a response head tells the protocol.
    Probe,
    SlowStart,
    Steady,
}

#[derive(Debug)]
struct Epoch {
    started: Instant,
    files: u64,
    received: u64,
}

#[derive(Debug, Clone, Copy)]
struct Rates {
    files: f64,
    bytes: f64,
    width: usize,
}

impl Climb {
    fn new(caps: Caps, received: u64) -> Climb {
        Climb {
            caps,
            phase: Phase::Probe,
            ceiling: caps.h2.min(caps.limit).max(1),
            epoch: Epoch {
                started: Instant::now(),
                files: 0,
                received,
            },
            best: None,
            flat: 0,
            falling: 0,
            hold_until: None,
            typical: None,
            probe: None,
            h1_seen: false,
        }
    }

    fn capped(&self, width: usize) -> usize {
        width.clamp(1, self.ceiling)
    }

    fn responded(&mut self, version: Version, width: usize) -> usize {
        let h1 = version < Version::HTTP_2;
        if h1 && !self.h1_seen {
            self.h1_seen = true;
            self.ceiling = self.caps.h1.min(self.caps.limit).max(1);
        }
        if self.phase == Phase::Probe {
            self.phase = Phase::SlowStart;
            return self.capped(if h1 { START_H1 } else { START_H2 });
        }
        self.capped(width)
    }

    fn pushed_back(&mut self, width: usize, running: usize, now: Instant) -> usize {
        if self.holding(now) {
            // The downloads refused in one burst answer one halving, as TCP halves once per
            // window of losses; but no wider than what the server still serves (the refused
            // ones have stood aside), so that a burst far past its room ends near it.
            return self.capped(width.min(running));
        }
        self.phase = Phase::Steady;
        self.probe = None;
        self.best = None;
        self.flat = 0;
        self.hold_until = Some(now + 2 * self.epoch_length());
        self.capped(width / 2)
    }

    fn ended(&mut self, width: usize, took: Duration) -> usize {
        self.epoch.files += 1;
        self.typical = Some(match self.typical {
            None => took,
            Some(mean) => (mean * 7 + took) / 8,
        });
        if self.phase == Phase::SlowStart && !self.holding(Instant::now()) {
            return self.capped(width + 1);
        }
        self.capped(width)
    }

    fn holding(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|until| now < until)
    }

    fn epoch_length(&self) -> Duration {
        self.typical
            .unwrap_or(EPOCH_MIN)
            .clamp(EPOCH_MIN, EPOCH_MAX)
    }

    /// Ends the epoch when it has lasted long enough, and moves the width by what it shows.
    fn tick(&mut self, width: usize, running: usize, received: u64, now: Instant) -> usize {
        let span = now.saturating_duration_since(self.epoch.started);
        if self.phase == Phase::Probe {
            if span < PROBE_WAIT {
                return width;
            }
            // No answer yet: climb without knowing the protocol.
            self.phase = Phase::SlowStart;
            self.epoch = Epoch {
                started: now,
                files: 0,
                received,
            };
            return self.capped(START_H1);
        }
        if span < self.epoch_length() {
            return width;
        }
        let secs = span.as_secs_f64();
        let rates = Rates {
            files: self.epoch.files as f64 / secs,
            bytes: received.saturating_sub(self.epoch.received) as f64 / secs,
            width,
        };
        let idle = running == 0 && self.epoch.files == 0;
        self.epoch = Epoch {
            started: now,
            files: 0,
            received,
        };
        if idle {
            // Waiting on the input, not on the network: nothing to learn.
            return width;
        }
        self.judge(rates, now)
    }

    fn judge(&mut self, rates: Rates, now: Instant) -> usize {
        let width = rates.width;
        let best = match self.best {
            None => {
                self.best = Some(rates);
                return width;
            }
            Some(best) => best,
        };
        let gained = rates.files > best.files * GAIN || rates.bytes > best.bytes * GAIN;
        if gained {
            self.best = Some(rates);
            self.flat = 0;
            self.falling = 0;
            self.probe = None;
            return width;
        }
        self.flat += 1;
        let fell = rates.files < best.files * FALL && rates.bytes < best.bytes * FALL;
        self.falling = if fell { self.falling + 1 } else { 0 };
        match self.phase {
            Phase::Probe => width,
            Phase::SlowStart => {
                if self.flat < 2 {
                    return width;
                }
                // Growing stopped paying: back to the width of the best epoch.
                self.phase = Phase::Steady;
                self.flat = 0;
                self.capped(best.width)
            }
            Phase::Steady => {
                if self.falling >= 2 {
                    // Fewer files or bytes per second at this width than before: narrow, and
                    // measure afresh from here.
                    self.falling = 0;
                    self.best = None;
                    self.probe = None;
                    return self.capped(width - width / 4);
                }
                if let Some((before, epochs)) = self.probe {
                    if epochs + 1 >= 2 {
                        // The wider width brought nothing: go back.
                        self.probe = None;
                        self.flat = 0;
                        return self.capped(before);
                    }
                    self.probe = Some((before, epochs + 1));
                    return width;
                }
                if self.flat >= STEADY_EPOCHS && !self.holding(now) && width < self.ceiling {
                    self.flat = 0;
                    self.probe = Some((width, 0));
                    return self.capped(width + width.div_ceil(4));
                }
                width
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> Arc<Width> {
        Arc::new(Width::new(
            Jobs::Auto,
            Caps::unlimited(),
            nothing_received(),
        ))
    }

    fn taken(width: &Arc<Width>) -> Slot {
        let mut slot = width.enter();
        slot.take();
        slot
    }

    #[test]
    fn a_look_at_an_ended_input_is_no_download() {
        let width = auto();
        width.responded(Version::HTTP_2);
        width.enter().end();
        assert_eq!(width.current(), START_H2, "no growth");
        assert_eq!(
            width.report().peak,
            1,
            "no download ran: the peak shows at least 1"
        );
        let two = [taken(&width), taken(&width)];
        assert_eq!(width.report().peak, 2);
        drop(two);
    }

    #[test]
    fn jobs_parse_auto_and_numbers() {
        assert_eq!(Jobs::parse("auto"), Ok(Jobs::Auto));
        assert_eq!(Jobs::parse("AUTO"), Ok(Jobs::Auto));
        assert_eq!(Jobs::parse("16"), Ok(Jobs::Fixed(16)));
        assert!(Jobs::parse("0").unwrap_err().contains("at least 1"));
        assert!(Jobs::parse("many").unwrap_err().contains("\"many\""));
        assert_eq!(Jobs::Auto.to_string(), "auto");
        assert_eq!(Jobs::Fixed(8).to_string(), "8");
    }

    #[test]
    fn fixed_width_is_capped_by_the_limit() {
        let caps = Caps {
            limit: 240,
            ..Caps::unlimited()
        };
        let width = Width::new(Jobs::Fixed(100_000), caps, nothing_received());
        assert_eq!(width.current(), 240);
        assert_eq!(Width::fixed(8).current(), 8);
    }

    #[test]
    fn auto_probes_alone_then_starts_by_protocol() {
        let width = auto();
        assert_eq!(
            width.current(),
            1,
            "one download until a response tells the protocol"
        );
        width.responded(Version::HTTP_2);
        assert_eq!(width.current(), START_H2);

        let width = auto();
        width.responded(Version::HTTP_11);
        assert_eq!(width.current(), START_H1);
    }

    #[test]
    fn slow_start_grows_by_one_per_download_up_to_the_protocol_cap() {
        let width = auto();
        width.responded(Version::HTTP_11);
        for _ in 0..100 {
            taken(&width).end();
        }
        assert_eq!(
            width.current(),
            MAX_H1,
            "HTTP/1.1 stops at its connection cap"
        );

        let width = auto();
        width.responded(Version::HTTP_2);
        for _ in 0..1000 {
            taken(&width).end();
        }
        assert_eq!(width.current(), MAX_H2);
        assert_eq!(width.report().peak, 1, "one at a time here");
    }

    #[test]
    fn a_probe_without_an_answer_gives_way() {
        let mut climb = Climb::new(Caps::unlimited(), 0);
        let start = climb.epoch.started;
        assert_eq!(climb.tick(1, 1, 0, start + PROBE_WAIT / 2), 1);
        assert_eq!(climb.tick(1, 1, 0, start + PROBE_WAIT), START_H1);
        assert_eq!(climb.phase, Phase::SlowStart);
    }

    #[test]
    fn http1_seen_lowers_the_cap_of_an_http2_run() {
        let width = auto();
        width.responded(Version::HTTP_2);
        for _ in 0..100 {
            taken(&width).end();
        }
        assert!(width.current() > MAX_H1);
        width.responded(Version::HTTP_11);
        assert_eq!(width.current(), MAX_H1);
    }

    #[test]
    fn push_back_halves_the_width_and_holds_it() {
        let width = auto();
        width.responded(Version::HTTP_2);
        assert_eq!(width.current(), START_H2);
        let running: Vec<Slot> = (0..100).map(|_| taken(&width)).collect();
        width.pushed_back();
        assert_eq!(width.current(), START_H2 / 2);
        width.pushed_back();
        width.pushed_back();
        assert_eq!(
            width.current(),
            START_H2 / 2,
            "a burst of refusals halves once"
        );
        drop(running);
        taken(&width).end();
        assert_eq!(
            width.current(),
            START_H2 / 2,
            "no slow start after a push-back"
        );
        width.pushed_back();
        assert_eq!(
            width.current(),
            1,
            "nor wider than what the server still serves"
        );
        let mut climb = climbing(Phase::Steady);
        let now = Instant::now();
        let mut n = 4;
        for later in 0..4 {
            n = climb.pushed_back(n, 100, now + later * 2 * EPOCH_MAX);
        }
        assert_eq!(n, 1, "refusals after the hold halve again, never below one");
    }

    #[test]
    fn the_descriptor_limit_caps_auto() {
        let caps = Caps {
            limit: 20,
            ..Caps::unlimited()
        };
        let width = Arc::new(Width::new(Jobs::Auto, caps, nothing_received()));
        width.responded(Version::HTTP_2);
        assert_eq!(width.current(), 20);
    }

    fn climbing(phase: Phase) -> Climb {
        let mut climb = Climb::new(Caps::unlimited(), 0);
        climb.phase = phase;
        climb
    }

    fn rates(files: f64, width: usize) -> Rates {
        Rates {
            files,
            bytes: files * 4096.0,
            width,
        }
    }

    #[test]
    fn slow_start_ends_at_the_best_width_when_growth_stops_paying() {
        let mut climb = climbing(Phase::SlowStart);
        let now = Instant::now();
        assert_eq!(climb.judge(rates(100.0, 16), now), 16);
        assert_eq!(climb.judge(rates(200.0, 32), now), 32);
        assert_eq!(climb.judge(rates(400.0, 64), now), 64);
        // 128 in flight, and no more files per second: the server's stream limit, say.
        assert_eq!(climb.judge(rates(405.0, 128), now), 128);
        assert_eq!(climb.judge(rates(402.0, 180), now), 64);
        assert_eq!(climb.phase, Phase::Steady);
    }

    #[test]
    fn steady_probes_wider_and_keeps_only_what_pays() {
        let mut climb = climbing(Phase::Steady);
        let now = Instant::now();
        assert_eq!(climb.judge(rates(400.0, 64), now), 64);
        for _ in 0..STEADY_EPOCHS - 1 {
            assert_eq!(climb.judge(rates(400.0, 64), now), 64);
        }
        assert_eq!(
            climb.judge(rates(400.0, 64), now),
            80,
            "probes a quarter wider"
        );
        assert_eq!(climb.judge(rates(401.0, 80), now), 80);
        assert_eq!(climb.judge(rates(401.0, 80), now), 64, "no gain: back");
        for _ in 0..STEADY_EPOCHS {
            climb.judge(rates(400.0, 64), now);
        }
        assert_eq!(climb.judge(rates(600.0, 80), now), 80, "a gain is kept");
        assert!(climb.probe.is_none());
    }

    #[test]
    fn steady_narrows_when_the_rate_falls() {
        let mut climb = climbing(Phase::Steady);
        let now = Instant::now();
        climb.judge(rates(400.0, 64), now);
        assert_eq!(climb.judge(rates(150.0, 64), now), 64);
        assert_eq!(climb.judge(rates(150.0, 64), now), 48);
    }

    #[test]
    fn a_probing_fixed_width_opens_at_the_first_response() {
        let width = Arc::new(Width::fixed(8).probing());
        assert_eq!((width.current(), width.most()), (1, 8));
        width.responded(Version::HTTP_2);
        assert_eq!(width.current(), 8);
        width.responded(Version::HTTP_11);
        assert_eq!(width.current(), 8, "fixed: the protocol does not move it");
    }

    #[test]
    fn a_refused_download_waits_for_a_place_to_retry() {
        let width = Arc::new(Width::fixed(1));
        let first = taken(&width);
        let aside = width.stand_aside();
        let second = taken(&width);
        let runtime = crate::platform::current_thread_runtime().unwrap();
        let rejoined = runtime.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), aside.rejoin())
                .await
                .is_ok()
        });
        assert!(!rejoined, "no place while the other download runs");
        drop(second);
        let aside = width.stand_aside();
        drop(aside);
        drop(first);
        assert_eq!(width.lock().running, 0, "every place given back once");
    }

    #[test]
    fn a_closed_width_stops_the_wait_for_more_workers() {
        let width = Width::fixed(4);
        assert_eq!(width.wait_wider(2), Some(4));
        width.close();
        assert_eq!(width.wait_wider(4), None);
    }
}
