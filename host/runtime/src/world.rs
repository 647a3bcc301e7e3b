//! The world as the sandbox sees it: every answer that could differ between
//! two runs goes through here. Live, answers come from the host and are
//! recorded; in replay they come from the recorded tape, and the guest must
//! ask the same questions in the same order; unrecorded, they come from the
//! host and nothing is kept.

use crate::secrets::Masker;
use base64::Engine as _;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use wasmflow_store::{Event, Question, ReplayBundle, Store};

/// The first question a replayed guest asked differently.
#[derive(Clone, Debug, PartialEq, thiserror::Error, serde::Serialize)]
#[error("diverged at event {event}: guest asked {asked}, recorded {recorded}")]
pub struct Divergence {
    /// 1-based position in the recorded event log.
    pub event: usize,
    pub asked: String,
    pub recorded: String,
}

enum Mode {
    Unrecorded,
    /// Large payloads go to `store` as blobs as they are recorded.
    Live {
        recorded: Vec<Event>,
        store: Store,
    },
    Replay {
        tape: Vec<Event>,
        cursor: usize,
    },
}

/// How much a live execution may record: past it the guest is stopped
/// (see `run`), since an answer that cannot be kept would make the record
/// a lie for replay, and keeping them all would let a guest that reads the
/// clock in a loop fill the host's memory.
const RECORDING_LIMIT: usize = 64 << 20;

/// The guest asked more questions than the recording can keep.
#[derive(Debug, thiserror::Error)]
#[error(
    "the execution recorded more than {} MiB of answers (clock reads, random bytes, socket reads, ...) and was stopped",
    RECORDING_LIMIT >> 20
)]
pub(crate) struct RecordingLimitExceeded;

struct State {
    mode: Mode,
    /// Live: an estimate of what `recorded` and the random run hold.
    recorded_bytes: usize,
    /// Live: the limit was reached; nothing more is kept.
    over_limit: bool,
    divergence: Option<Divergence>,
    /// Consecutive random draws of one kind form one event: wasmtime-wasi
    /// draws byte by byte, and a log entry per byte says nothing useful.
    random_run: Option<RandomRun>,
}

struct RandomRun {
    secure: bool,
    /// Replay: the run's bytes.
    bytes: Vec<u8>,
    /// Replay: how much of `bytes` the guest has been given.
    used: usize,
    /// Live: where the run's bytes come from.
    live: Option<LiveStream>,
}

/// Live: a run's bytes are the ChaCha20 keystream under a seed the host's
/// generator drew when the run began (a stream cipher keyed with 256
/// fresh random bits is what a CSPRNG is), so the recording keeps the
/// seed and the length, not the bytes.
struct LiveStream {
    seed: [u8; 32],
    cipher: ChaCha20,
    len: usize,
}

impl LiveStream {
    fn new(seed: [u8; 32]) -> Self {
        Self {
            seed,
            cipher: ChaCha20::new(&seed.into(), &[0u8; 12].into()),
            len: 0,
        }
    }

    fn fill(&mut self, dst: &mut [u8]) {
        dst.fill(0);
        self.cipher.apply_keystream(dst);
        self.len += dst.len();
    }
}

/// The `len` bytes a recorded [`Event::RandomStream`] stands for.
fn keystream(seed: &str, len: usize) -> Option<Vec<u8>> {
    let seed: [u8; 32] = hex::decode(seed).ok()?.try_into().ok()?;
    let mut bytes = vec![0u8; len];
    LiveStream::new(seed).fill(&mut bytes);
    Some(bytes)
}

/// Shared by the sandbox and the hooks that live outside the store.
#[derive(Clone)]
pub(crate) struct World {
    state: Arc<Mutex<State>>,
    /// Replay: where the recorded payloads are read from.
    recorded_blobs: Option<Blobs>,
    /// The execution's secrets: masked in everything recorded.
    masker: Masker,
}

/// Where a replay reads recorded payloads (bodies, program output, file
/// contents) from.
#[derive(Clone)]
pub(crate) enum Blobs {
    Store(Store),
    Bundle(Arc<ReplayBundle>),
}

impl Blobs {
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        match self {
            Blobs::Store(s) => s.get_blob_str(digest).ok().flatten(),
            Blobs::Bundle(b) => b.blob(digest),
        }
    }
}

/// Store `bytes` as a blob of `store` and return its digest. A blob that
/// cannot be stored leaves the event pointing at nothing; a replay then
/// reports it missing rather than guessing.
pub(crate) fn put_blob(store: &Store, bytes: &[u8]) -> String {
    store
        .put_blob(bytes)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| wasmflow_store::Digest::of(bytes).to_string())
}

impl World {
    /// Answers from the host, recorded; payloads go to `store`.
    pub fn live(store: Store) -> Self {
        Self::new(
            Mode::Live {
                recorded: Vec::new(),
                store,
            },
            None,
        )
    }

    /// Answers from `tape`, payloads from `blobs`.
    pub fn replay(tape: Vec<Event>, blobs: Blobs) -> Self {
        Self::new(Mode::Replay { tape, cursor: 0 }, Some(blobs))
    }

    /// Answers from the host, nothing kept.
    pub fn unrecorded() -> Self {
        Self::new(Mode::Unrecorded, None)
    }

    fn new(mode: Mode, recorded_blobs: Option<Blobs>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                mode,
                recorded_bytes: 0,
                over_limit: false,
                divergence: None,
                random_run: None,
            })),
            recorded_blobs,
            masker: Masker::default(),
        }
    }

    /// The same world, masking `masker`'s secrets in what it records.
    pub fn masking(mut self, masker: Masker) -> Self {
        self.masker = masker;
        self
    }

    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Live: keep a payload of an answer (program output, a body) as a
    /// blob, its secrets masked; its digest.
    pub fn put_payload(&self, store: &Store, bytes: &[u8]) -> String {
        put_blob(store, &self.masker.bytes(bytes))
    }

    pub fn is_replay(&self) -> bool {
        matches!(self.state.lock().unwrap().mode, Mode::Replay { .. })
    }

    /// When live, the store that recorded payloads go to: callers build an
    /// event only when there is one to record it in.
    pub fn recording_store(&self) -> Option<Store> {
        match &self.state.lock().unwrap().mode {
            Mode::Live { store, .. } => Some(store.clone()),
            _ => None,
        }
    }

    /// Replay: a recorded payload.
    pub fn recorded_blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.recorded_blobs.as_ref()?.get(digest)
    }

    /// In replay, the recorded answer to `question`, or the divergence;
    /// `None` when live (ask the world, then [`World::record`]).
    pub fn replayed(&self, question: &Question) -> Option<Result<Event, Divergence>> {
        let mut st = self.state.lock().unwrap();
        if let Some(d) = &st.divergence {
            return Some(Err(d.clone()));
        }
        if !matches!(st.mode, Mode::Replay { .. }) {
            return None;
        }
        if let Some(run) = st.random_run.take().filter(|r| r.left() > 0) {
            let event = st.cursor_position();
            return Some(Err(st.diverge(
                event,
                question.to_string(),
                run.describe_left(),
            )));
        }
        let Mode::Replay { tape, cursor } = &mut st.mode else {
            unreachable!("checked above")
        };
        let position = *cursor + 1;
        // The tape holds questions with their secrets masked.
        let same = |e: &Event| {
            let recorded = e.question();
            recorded == *question
                || (!self.masker.is_empty()
                    && self.masker.text(&question.to_string()) == recorded.to_string())
        };
        let answer = match tape.get(*cursor) {
            Some(e) if same(e) => Ok(e.clone()),
            other => Err(describe(other)),
        };
        *cursor += 1;
        let answer =
            answer.map_err(|recorded| st.diverge(position, question.to_string(), recorded));
        Some(answer)
    }

    /// The one way a host function asks the world. In replay: the recorded
    /// answer, which `pick` takes out of its event (a divergence stops the
    /// guest). Live or unrecorded: `None`, and the caller asks the host,
    /// then [`World::record`]s what it got.
    pub fn recorded<T>(
        &self,
        question: &Question,
        pick: impl FnOnce(Event) -> Option<T>,
    ) -> wasmtime::Result<Option<T>> {
        match self.replayed(question) {
            None => Ok(None),
            Some(Err(d)) => Err(wasmtime::Error::new(d)),
            // `replayed` matched the event's question to this one, so
            // `pick` finds its kind; a tape that says otherwise is corrupt.
            Some(Ok(event)) => pick(event).map(Some).ok_or_else(|| {
                wasmtime::format_err!("the recorded event does not answer {question}")
            }),
        }
    }

    pub fn record(&self, event: Event) {
        let event = self.masker.event(event);
        let mut st = self.state.lock().unwrap();
        st.flush_random();
        if !st.within_limit(approx_size(&event)) {
            return;
        }
        if let Mode::Live { recorded, .. } = &mut st.mode {
            recorded.push(event);
        }
    }

    /// Live: count a payload recorded as a blob against the limit too (a
    /// guest streaming without end must not fill the store's disk either);
    /// false when it no longer fits and must not be kept.
    pub fn count_blob(&self, len: usize) -> bool {
        self.state.lock().unwrap().within_limit(len)
    }

    /// Live: whether the recording outgrew [`RECORDING_LIMIT`]; the run
    /// stops the guest when it has.
    pub fn over_limit(&self) -> bool {
        self.state.lock().unwrap().over_limit
    }

    /// Live: fill `dst` from the current run of random draws of this
    /// kind, or a new run seeded by `seed`. `false` when not recording (the
    /// caller draws from the host itself).
    fn live_random(&self, secure: bool, dst: &mut [u8], seed: impl FnOnce() -> [u8; 32]) -> bool {
        let mut st = self.state.lock().unwrap();
        if !matches!(st.mode, Mode::Live { .. }) || st.over_limit {
            return false;
        }
        let same_run = st
            .random_run
            .as_ref()
            .is_some_and(|run| run.secure == secure && run.live.is_some());
        if !same_run {
            st.flush_random();
            // A run costs its event, whatever it draws.
            if !st.within_limit(160) {
                return false;
            }
            st.random_run = Some(RandomRun {
                secure,
                bytes: Vec::new(),
                used: 0,
                live: Some(LiveStream::new(seed())),
            });
        }
        let run = st.random_run.as_mut().expect("a run was just made");
        run.live.as_mut().expect("a live run").fill(dst);
        true
    }

    /// Replay: fill `dst` from the recorded run of random draws. `None`
    /// when live.
    fn replay_random(&self, secure: bool, dst: &mut [u8]) -> Option<Result<(), Divergence>> {
        let mut st = self.state.lock().unwrap();
        if !matches!(st.mode, Mode::Replay { .. }) {
            return None;
        }
        if let Some(d) = &st.divergence {
            return Some(Err(d.clone()));
        }
        let asked = Question::Random {
            secure,
            len: dst.len(),
        };
        let needs_next = match &st.random_run {
            Some(run) => run.secure != secure || run.used == run.bytes.len(),
            None => true,
        };
        if needs_next {
            if let Some(run) = st.random_run.as_ref().filter(|r| r.left() > 0) {
                // Leftover bytes of the other kind: the guest changed course.
                let (event, recorded) = (st.cursor_position(), run.describe_left());
                return Some(Err(st.diverge(event, asked.to_string(), recorded)));
            }
            let Mode::Replay { tape, cursor } = &mut st.mode else {
                unreachable!()
            };
            let position = *cursor + 1;
            let next = match tape.get(*cursor) {
                Some(Event::Random { secure: s, bytes }) if *s == secure => {
                    base64::engine::general_purpose::STANDARD
                        .decode(bytes)
                        .map_err(|_| describe(tape.get(*cursor)))
                }
                Some(Event::RandomStream {
                    secure: s,
                    seed,
                    len,
                }) if *s == secure => {
                    keystream(seed, *len).ok_or_else(|| describe(tape.get(*cursor)))
                }
                other => Err(describe(other)),
            };
            *cursor += 1;
            match next {
                Ok(bytes) => {
                    st.random_run = Some(RandomRun {
                        secure,
                        bytes,
                        used: 0,
                        live: None,
                    })
                }
                Err(recorded) => {
                    return Some(Err(st.diverge(position, asked.to_string(), recorded)))
                }
            }
        }
        let run = st.random_run.as_ref().expect("a run is loaded");
        if run.left() < dst.len() {
            let (event, recorded) = (st.cursor_position(), run.describe_left());
            return Some(Err(st.diverge(event, asked.to_string(), recorded)));
        }
        let run = st.random_run.as_mut().expect("a run is loaded");
        dst.copy_from_slice(&run.bytes[run.used..run.used + dst.len()]);
        run.used += dst.len();
        Some(Ok(()))
    }

    /// The recorded events (live), leaving an empty log behind.
    pub fn take_recorded(&self) -> Vec<Event> {
        let mut st = self.state.lock().unwrap();
        st.flush_random();
        match &mut st.mode {
            Mode::Live { recorded, .. } => std::mem::take(recorded),
            _ => Vec::new(),
        }
    }

    /// After the guest finished: the first divergence, including a guest
    /// that stopped asking before the recorded run did.
    pub fn finish(&self) -> Option<Divergence> {
        let st = self.state.lock().unwrap();
        if let Some(d) = &st.divergence {
            return Some(d.clone());
        }
        if let Some(run) = st.random_run.as_ref().filter(|r| r.left() > 0) {
            return Some(Divergence {
                event: st.cursor_position(),
                asked: "nothing more (the guest finished)".into(),
                recorded: run.describe_left(),
            });
        }
        match &st.mode {
            Mode::Replay { tape, cursor } if *cursor < tape.len() => Some(Divergence {
                event: cursor + 1,
                asked: "nothing more (the guest finished)".into(),
                recorded: tape[*cursor].question().to_string(),
            }),
            _ => None,
        }
    }
}

impl RandomRun {
    fn left(&self) -> usize {
        self.bytes.len() - self.used
    }

    fn describe_left(&self) -> String {
        format!("{} more {} random bytes", self.left(), kind(self.secure))
    }
}

/// How a recorded event reads in a divergence message.
fn describe(event: Option<&Event>) -> String {
    event
        .map(|e| e.question().to_string())
        .unwrap_or_else(|| "nothing (the recorded run had finished asking)".into())
}

/// Roughly what an event costs in memory and in the stored log: a fixed
/// part, plus the payloads kept inline (large ones are blobs already).
fn approx_size(event: &Event) -> usize {
    let strings = |v: &[(String, String)]| v.iter().map(|(a, b)| a.len() + b.len() + 8).sum();
    64 + match event {
        Event::Environment { vars, secrets } => strings(vars) + secrets.len() * 96,
        Event::Key { name, outcome } => {
            name.len()
                + match outcome {
                    wasmflow_store::KeyOutcome::Value(v)
                    | wasmflow_store::KeyOutcome::Denied(v)
                    | wasmflow_store::KeyOutcome::Unavailable(v) => v.len(),
                    _ => 64,
                }
        }
        Event::Directory { files, .. } => strings(files),
        Event::FileOpen { path } => path.len(),
        Event::Random { bytes, .. } => bytes.len(),
        Event::RandomStream { seed, .. } => seed.len() + 16,
        Event::Process { program, args, .. } => {
            program.len() + args.iter().map(|a| a.len() + 4).sum::<usize>() + 160
        }
        Event::Http { url, outcome, .. } => {
            url.len()
                + match outcome {
                    wasmflow_store::HttpOutcome::Response { headers, .. } => strings(headers) + 80,
                    wasmflow_store::HttpOutcome::Error(e) => e.len(),
                }
        }
        Event::NameLookup { name, .. } => name.len() + 64,
        Event::TcpRead {
            outcome: wasmflow_store::ReadOutcome::Data { bytes },
            ..
        } => bytes.len(),
        Event::UdpSend { to, .. } => to.iter().map(|t| t.len() + 4).sum(),
        Event::UdpReceive {
            outcome: wasmflow_store::ReceiveOutcome::Datagrams(ds),
        } => ds.iter().map(|d| d.data.len() + d.from.len() + 24).sum(),
        _ => 32,
    }
}

impl State {
    /// Live: count `size` more recorded bytes; false (and nothing more is
    /// kept from then on) once the limit is passed.
    fn within_limit(&mut self, size: usize) -> bool {
        if !matches!(self.mode, Mode::Live { .. }) {
            return true;
        }
        if self.over_limit {
            return false;
        }
        self.recorded_bytes += size;
        if self.recorded_bytes > RECORDING_LIMIT {
            self.over_limit = true;
            self.random_run = None;
        }
        !self.over_limit
    }

    /// Remember the first divergence, and return it.
    fn diverge(&mut self, event: usize, asked: String, recorded: String) -> Divergence {
        let d = Divergence {
            event,
            asked,
            recorded,
        };
        self.divergence = Some(d.clone());
        d
    }

    fn flush_random(&mut self) {
        let (Some(run), Mode::Live { recorded, .. }) = (self.random_run.take(), &mut self.mode)
        else {
            return;
        };
        if let Some(stream) = run.live {
            recorded.push(Event::RandomStream {
                secure: run.secure,
                seed: hex::encode(stream.seed),
                len: stream.len,
            });
        }
    }

    /// 1-based number of the event being replayed (the last one taken).
    fn cursor_position(&self) -> usize {
        match &self.mode {
            Mode::Replay { cursor, .. } => (*cursor).max(1),
            Mode::Live { recorded, .. } => recorded.len(),
            Mode::Unrecorded => 0,
        }
    }
}

fn kind(secure: bool) -> &'static str {
    if secure {
        "secure"
    } else {
        "insecure"
    }
}

/// `wasi:clocks/wall-clock`, recorded or replayed.
pub(crate) struct WallClock(pub World);

impl wasmtime_wasi::HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        if let Some(answer) = self.0.replayed(&Question::WallClock) {
            return match answer {
                Ok(Event::WallClock {
                    seconds,
                    nanoseconds,
                }) => Duration::new(seconds, nanoseconds),
                _ => Duration::ZERO,
            };
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.0.record(Event::WallClock {
            seconds: now.as_secs(),
            nanoseconds: now.subsec_nanos(),
        });
        now
    }
}

/// `wasi:clocks/monotonic-clock`, recorded or replayed.
pub(crate) struct MonotonicClock {
    pub world: World,
    pub start: Instant,
}

impl wasmtime_wasi::HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        if let Some(answer) = self.world.replayed(&Question::MonotonicClock) {
            return match answer {
                Ok(Event::MonotonicClock { nanoseconds }) => nanoseconds,
                _ => 0,
            };
        }
        let n = self.start.elapsed().as_nanos() as u64;
        self.world.record(Event::MonotonicClock { nanoseconds: n });
        n
    }
}

/// `wasi:random`, recorded or replayed. Every draw is one event, so a
/// guest that draws differently diverges at that draw.
pub(crate) struct RandomSource {
    pub world: World,
    pub secure: bool,
    pub live: Box<dyn wasmtime_wasi::Rng + Send>,
}

impl rand_core::TryRng for RandomSource {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        match self.world.replay_random(self.secure, dst) {
            Some(Ok(())) => {}
            // On divergence the bytes are zeros; the run is reported as
            // diverged whatever the guest does with them.
            Some(Err(_)) => dst.fill(0),
            None => {
                let live = &mut self.live;
                let streamed = self.world.live_random(self.secure, dst, || {
                    let mut seed = [0u8; 32];
                    live.fill_bytes(&mut seed);
                    seed
                });
                if !streamed {
                    self.live.fill_bytes(dst);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod random_tests {
    use super::*;
    use rand_core::TryRng;

    fn source(world: &World, secure: bool) -> RandomSource {
        RandomSource {
            world: world.clone(),
            secure,
            live: wasmtime_wasi::thread_rng(),
        }
    }

    fn draw(src: &mut RandomSource, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        src.try_fill_bytes(&mut b).unwrap();
        b
    }

    #[test]
    fn draws_are_recorded_as_seeded_runs_and_replay_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let world = World::live(store.clone());
        let (mut secure, mut insecure) = (source(&world, true), source(&world, false));
        // Two runs of secure draws around one insecure run.
        let live: Vec<Vec<u8>> = vec![
            draw(&mut secure, 16),
            draw(&mut secure, 9_984),
            draw(&mut insecure, 8),
            draw(&mut secure, 32),
        ];
        let tape = world.take_recorded();
        let lens: Vec<(bool, usize)> = tape
            .iter()
            .map(|e| match e {
                Event::RandomStream { secure, seed, len } => {
                    assert_eq!(seed.len(), 64);
                    (*secure, *len)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(lens, [(true, 10_000), (false, 8), (true, 32)]);
        // Two runs never share a seed; a run is not all zeros.
        assert!(live[1].iter().any(|b| *b != 0));

        let replay = World::replay(tape.clone(), Blobs::Store(store.clone()));
        let (mut secure, mut insecure) = (source(&replay, true), source(&replay, false));
        let replayed = vec![
            draw(&mut secure, 16),
            draw(&mut secure, 9_984),
            draw(&mut insecure, 8),
            draw(&mut secure, 32),
        ];
        assert_eq!(replayed, live);
        assert!(replay.finish().is_none());

        // A guest that draws more than it did diverges, naming the draw.
        let replay = World::replay(tape, Blobs::Store(store));
        let mut secure = source(&replay, true);
        draw(&mut secure, 10_001);
        let d = replay.finish().expect("a divergence");
        assert!(d.asked.contains("10001"), "{}", d.asked);
    }

    #[test]
    fn recordings_that_kept_the_bytes_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = vec![7u8, 1, 2, 3];
        let tape = vec![Event::Random {
            secure: true,
            bytes: base64::engine::general_purpose::STANDARD.encode(&bytes),
        }];
        let replay = World::replay(tape, Blobs::Store(Store::open(dir.path()).unwrap()));
        assert_eq!(draw(&mut source(&replay, true), 4), bytes);
        assert!(replay.finish().is_none());
    }
}
