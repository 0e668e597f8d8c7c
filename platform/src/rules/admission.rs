//! Admission to the rules engine (issue 10: one tenant's flood must not starve the
//! others). Three bounds, each with a bounded wait:
//!
//! - a tenant's **batch slots** (`limits.event_batches`): event batches it processes at
//!   once on this instance; each holds at most one database connection at a time, so
//!   they bound the tenant's share of the pool. No slot within the wait: 429
//!   `tenant_busy`.
//! - a tenant's **evaluation permits** (`limits.rule_evaluations`): of those batches,
//!   how many run rules at the same moment, i.e. its share of the CPU. No permit within
//!   the wait: 429 `tenant_busy`.
//! - the server's **evaluation threads** (OS threads of their own, made once), shared by
//!   every tenant in FIFO order; a batch holds one for a slice (`bounds::EVAL_SLICE_MS`)
//!   at a time. None within the wait: 503 `server_busy`.
//!
//! The threads come in two lanes of one thread per CPU each. A tenant whose rules kept a
//! thread busy lately (`bounds::HEAVY_BUSY_SECS` of evaluation time, decaying by half
//! every `bounds::BUSY_HALF_LIFE_MS`) runs its slices in the **heavy lane**, whose
//! threads have the lowest OS priority: while it uses its whole share, everyone else's
//! requests and rules take the CPU first. Other tenants' slices run in the **light
//! lane** at normal priority, so a flood never queues or slows them.
//!
//! Both 429 and 503 carry `Retry-After`. Time spent waiting here never counts against a
//! rule's own time budget, which starts on the evaluation thread.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::bounds;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::settings::TenantLimits;

/// Idle tenants' gates are forgotten after this (far longer than any batch lives).
const GATE_IDLE_SECS: u64 = 600;

#[derive(Clone)]
pub struct Admission {
    /// `[light, heavy]`.
    lanes: [Lane; 2],
    gates: moka::sync::Cache<TenantId, Arc<Gate>>,
}

/// Evaluation threads of one priority.
#[derive(Clone)]
struct Lane {
    /// One permit per thread: a holder always finds a thread free.
    threads: Arc<Semaphore>,
    /// Work for the threads, taken in order; they end when it is dropped.
    work: mpsc::Sender<Work>,
}

type Work = Box<dyn FnOnce() + Send>;

/// Which lane a slice runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneKind {
    Light = 0,
    Heavy = 1,
}

/// One tenant's slots and permits, sized by its limits when made.
struct Gate {
    limits: TenantLimits,
    batches: Arc<Semaphore>,
    evaluations: Arc<Semaphore>,
    /// How often its batches found their members changed after evaluating (see
    /// `Admission::lock_first`).
    contention: AtomicU32,
    /// Its recent evaluation time: (seconds, decayed to this instant).
    busy: Mutex<(f64, Instant)>,
}

impl Gate {
    /// Its evaluation time decayed to `now`.
    fn busy_at(&self, now: Instant) -> f64 {
        let (secs, at) = *self.busy.lock().unwrap_or_else(|e| e.into_inner());
        decay(secs, now.saturating_duration_since(at))
    }

    fn add_busy(&self, took: Duration) {
        let now = Instant::now();
        let mut b = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        *b = (decay(b.0, now.saturating_duration_since(b.1)) + took.as_secs_f64(), now);
    }
}

fn decay(secs: f64, after: Duration) -> f64 {
    secs * 0.5f64.powf(after.as_secs_f64() * 1000.0 / bounds::BUSY_HALF_LIFE_MS as f64)
}

/// How a batch of the tenant went, for `Admission::lock_first`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Went {
    /// Evaluated with no lock, and its members were unchanged at the write.
    Clean,
    /// Evaluated with no lock, and another batch had changed its members meanwhile.
    Contended,
    /// Locked its members first.
    Locked,
}

/// A tenant's batch slot, held while its batch is processed.
pub struct BatchSlot {
    _slot: OwnedSemaphorePermit,
}

/// The right to run rules on one thread of a lane for one slice (`Admission::run`).
pub struct EvalPermit {
    _tenant: OwnedSemaphorePermit,
    _thread: OwnedSemaphorePermit,
    lane: LaneKind,
    gate: Arc<Gate>,
}

impl EvalPermit {
    pub fn lane(&self) -> LaneKind {
        self.lane
    }
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }
}

impl Admission {
    /// `threads` evaluation threads per lane, shared by every tenant.
    pub fn new(threads: usize) -> Self {
        Self {
            lanes: [lane("rules", threads, None), lane("rules-heavy", threads, Some(bounds::EVAL_HEAVY_NICE))],
            gates: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(GATE_IDLE_SECS))
                .build(),
        }
    }

    /// Runs `f` on a thread of the permit's lane, holding `permit` until it ends; the time
    /// it takes counts as the tenant's evaluation time. The answer comes back on the
    /// receiver (closed if `f` panicked).
    pub fn run<T: Send + 'static>(
        &self,
        permit: EvalPermit,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<T>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lane = permit.lane as usize;
        let work: Work = Box::new(move || {
            let started = Instant::now();
            let out = f();
            permit.gate.add_busy(started.elapsed());
            drop(permit);
            let _ = tx.send(out);
        });
        self.lanes[lane]
            .work
            .send(work)
            .map_err(|_| Error::Internal(anyhow::anyhow!("the rule evaluation threads have stopped")))?;
        Ok(rx)
    }

    /// The tenant's gate; a new one when its limits changed (batches running under the
    /// old limits finish on the old gate).
    fn gate(&self, tenant: &Tenant) -> Arc<Gate> {
        let limits = tenant.settings.limits;
        if let Some(g) = self.gates.get(&tenant.id)
            && g.limits == limits
        {
            return g;
        }
        let g = Arc::new(Gate {
            limits,
            batches: Arc::new(Semaphore::new(limits.event_batches.max(1) as usize)),
            evaluations: Arc::new(Semaphore::new(limits.rule_evaluations.max(1) as usize)),
            contention: AtomicU32::new(0),
            busy: Mutex::new((0.0, Instant::now())),
        });
        self.gates.insert(tenant.id, g.clone());
        g
    }

    /// Whether the tenant's next batch should lock its members before reading them.
    ///
    /// Batches first evaluate holding no lock and evaluate again at the write if their
    /// members changed meanwhile. When a tenant's concurrent batches keep sharing members
    /// (many batches over few members), that second evaluation waits for the lock of
    /// every batch before it; locking first then does the same work once. A contended
    /// batch adds `CONTENDED_STEP`, any other takes one off; above `LOCK_FIRST_ABOVE` the
    /// tenant's batches lock first, and every few of them try again without (the count
    /// decays), so a tenant goes back once its batches stop sharing members.
    pub fn lock_first(&self, tenant: &Tenant) -> bool {
        self.gate(tenant).contention.load(Ordering::Relaxed) > bounds::LOCK_FIRST_ABOVE
    }

    /// Records how a batch of the tenant went (`lock_first`).
    pub fn record(&self, tenant: &Tenant, went: Went) {
        let gate = self.gate(tenant);
        let _ = gate.contention.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            Some(match went {
                Went::Contended => (c + bounds::CONTENDED_STEP).min(bounds::CONTENTION_MAX),
                Went::Clean | Went::Locked => c.saturating_sub(1),
            })
        });
    }

    /// One of the tenant's batch slots, waiting at most `wait`.
    pub async fn batch(&self, tenant: &Tenant, wait: Duration) -> Result<BatchSlot> {
        let gate = self.gate(tenant);
        let slot = acquire(&gate.batches, wait).await.ok_or_else(|| {
            tenant_busy(format!(
                "this mall already has {} event batches in progress; retry shortly",
                gate.limits.event_batches
            ))
        })?;
        Ok(BatchSlot { _slot: slot })
    }

    /// An evaluation permit of the tenant, then a thread of its lane (heavy when its rules
    /// kept a thread busy lately), each waiting at most `bounds::EVAL_WAIT_MS`.
    pub async fn evaluation(&self, tenant: &Tenant) -> Result<EvalPermit> {
        let wait = Duration::from_millis(bounds::EVAL_WAIT_MS);
        let gate = self.gate(tenant);
        let own = acquire(&gate.evaluations, wait).await.ok_or_else(|| {
            tenant_busy(format!(
                "this mall's rules already run on {} threads; retry shortly",
                gate.limits.rule_evaluations
            ))
        })?;
        let lane =
            if gate.busy_at(Instant::now()) > bounds::HEAVY_BUSY_SECS { LaneKind::Heavy } else { LaneKind::Light };
        let thread = acquire(&self.lanes[lane as usize].threads, wait).await.ok_or_else(|| Error::Unavailable {
            code: "server_busy",
            message: "every rule evaluation thread is busy; retry shortly".into(),
            retry_after_secs: bounds::BUSY_RETRY_AFTER_SECS,
        })?;
        Ok(EvalPermit { _tenant: own, _thread: thread, lane, gate })
    }
}

/// Starts `threads` evaluation threads named `name-<i>`, at OS priority `nice` if given.
fn lane(name: &str, threads: usize, nice: Option<i32>) -> Lane {
    let (work, queue) = mpsc::channel::<Work>();
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for i in 0..threads.max(1) {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
            if let Some(nice) = nice {
                lower_priority(nice);
            }
            loop {
                // The lock is held only while waiting for the next piece of work.
                let next = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok(w) = next else { return };
                // A panic ends that piece of work (its caller sees it), not the thread.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(w));
            }
        });
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::error!(error = %e, "could not start a rule evaluation thread"),
        }
    }
    // As many permits as threads: a permit holder's work never waits in the queue (with
    // none, evaluation answers 503 until restarted).
    Lane { threads: Arc::new(Semaphore::new(started)), work }
}

/// The heavy lane's threads yield the CPU to request handling, the database and the
/// light lane: a tenant using its whole share of evaluation (a rule spinning to its time
/// limit) then slows the other tenants' requests as little as the machine allows.
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    // SAFETY: both calls only read and set the calling thread's scheduling priority
    // (on Linux, PRIO_PROCESS with a thread id applies to that thread alone).
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if result != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the rule threads' priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

async fn acquire(s: &Arc<Semaphore>, wait: Duration) -> Option<OwnedSemaphorePermit> {
    // The semaphores are never closed, so an error cannot happen; treated as a timeout.
    tokio::time::timeout(wait, s.clone().acquire_owned()).await.ok()?.ok()
}

fn tenant_busy(message: String) -> Error {
    Error::Busy { code: "tenant_busy", message, retry_after_secs: bounds::BUSY_RETRY_AFTER_SECS }
}

/// One drain of a mall's outbox at a time on this instance (`pipeline::drain_outbox`).
/// Every request that emits a mall event starts a drain; run at once, they all read the
/// same pending rows and queue on the same members' locks and the pool's connections (a
/// flash sale's redemptions went from 2,000 to 66 a second). A drain waits for the one
/// before it, whose pass took the rows it read and left the later ones to the next.
#[derive(Clone, Default)]
pub struct Drains(Arc<Mutex<std::collections::HashMap<TenantId, Arc<DrainGate>>>>);

#[derive(Default)]
struct DrainGate {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// A drain waits for its turn: a background drain asked for now adds nothing (the
    /// waiting one reads the outbox after its turn comes).
    waiting: std::sync::atomic::AtomicBool,
}

impl Drains {
    fn gate(&self, tenant: TenantId) -> Arc<DrainGate> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(tenant).or_default().clone()
    }

    /// The mall's turn to drain: hold the guard while draining.
    pub async fn turn(&self, tenant: TenantId) -> tokio::sync::OwnedMutexGuard<()> {
        let gate = self.gate(tenant);
        gate.waiting.store(true, Ordering::Release);
        let guard = gate.turn.clone().lock_owned().await;
        gate.waiting.store(false, Ordering::Release);
        guard
    }

    /// As `turn`, or `None` when a drain is already waiting for its turn (it will read
    /// what the caller wrote): for drains in the background, which nobody waits for.
    pub async fn turn_unless_waiting(&self, tenant: TenantId) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let gate = self.gate(tenant);
        if gate.waiting.swap(true, Ordering::AcqRel) {
            return None;
        }
        let guard = gate.turn.clone().lock_owned().await;
        gate.waiting.store(false, Ordering::Release);
        Some(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(limits: TenantLimits) -> Tenant {
        let settings = crate::settings::TenantSettings { limits, ..Default::default() };
        Tenant {
            id: TenantId::new(7),
            slug: "t".into(),
            name: "t".into(),
            schema_name: "t_7".into(),
            cluster: "main".into(),
            status: crate::directory::TenantStatus::Active,
            alliance_id: None,
            schema_version: 1,
            created_at: chrono::Utc::now(),
            settings,
        }
    }

    #[tokio::test]
    async fn a_tenant_beyond_its_slots_waits_then_is_told_to_retry() {
        let a = Admission::new(2);
        let t = tenant(TenantLimits { event_batches: 2, rule_evaluations: 1 });
        let short = Duration::from_millis(20);
        let s1 = a.batch(&t, short).await.unwrap();
        let _s2 = a.batch(&t, short).await.unwrap();
        let e = a.batch(&t, short).await.err().unwrap();
        assert_eq!((e.code(), e.retry_after_secs()), ("tenant_busy", Some(1)));
        // Another tenant is not affected.
        let mut other = tenant(TenantLimits::default());
        other.id = TenantId::new(8);
        a.batch(&other, short).await.unwrap();
        drop(s1);
        a.batch(&t, short).await.unwrap();
    }

    #[tokio::test]
    async fn evaluation_permits_are_per_tenant_then_per_server() {
        let a = Admission::new(2);
        let t = tenant(TenantLimits { event_batches: 4, rule_evaluations: 1 });
        let p = a.evaluation(&t).await.unwrap();
        // The tenant's second evaluation waits for its first.
        let waiting = tokio::time::timeout(Duration::from_millis(30), a.evaluation(&t)).await;
        assert!(waiting.is_err());
        let mut u = tenant(TenantLimits::default());
        u.id = TenantId::new(8);
        let _q = a.evaluation(&u).await.unwrap();
        drop(p);
        a.evaluation(&t).await.unwrap();
    }

    #[tokio::test]
    async fn a_tenant_that_kept_a_thread_busy_runs_in_the_heavy_lane_until_it_cools_down() {
        let a = Admission::new(1);
        let t = tenant(TenantLimits::default());
        let mut quiet = tenant(TenantLimits::default());
        quiet.id = TenantId::new(8);
        let p = a.evaluation(&t).await.unwrap();
        assert_eq!(p.lane(), LaneKind::Light);
        let spin = Duration::from_secs_f64(bounds::HEAVY_BUSY_SECS * 1.5);
        a.run(p, move || std::thread::sleep(spin)).unwrap().await.unwrap();
        let p = a.evaluation(&t).await.unwrap();
        assert_eq!(p.lane(), LaneKind::Heavy);
        // Another tenant is not affected, and finds a light thread while it runs.
        let q = a.evaluation(&quiet).await.unwrap();
        assert_eq!(q.lane(), LaneKind::Light);
        drop((p, q));
        // Its recent time halves every half-life.
        let gate = a.gate(&t);
        let later = Instant::now() + Duration::from_millis(bounds::BUSY_HALF_LIFE_MS * 4);
        assert!(gate.busy_at(later) < bounds::HEAVY_BUSY_SECS, "{}", gate.busy_at(later));
    }

    #[test]
    fn contended_batches_lock_first_then_try_again_without() {
        let a = Admission::new(1);
        let t = tenant(TenantLimits::default());
        assert!(!a.lock_first(&t));
        for _ in 0..3 {
            a.record(&t, Went::Contended);
        }
        assert!(a.lock_first(&t));
        let mut locked = 0;
        while a.lock_first(&t) {
            a.record(&t, Went::Locked);
            locked += 1;
        }
        assert!((1..=bounds::CONTENTION_MAX).contains(&locked), "{locked}");
        a.record(&t, Went::Clean);
        assert!(!a.lock_first(&t));
    }

    #[tokio::test]
    async fn changed_limits_take_effect() {
        let a = Admission::new(1);
        let mut t = tenant(TenantLimits { event_batches: 1, rule_evaluations: 1 });
        let short = Duration::from_millis(10);
        let _s = a.batch(&t, short).await.unwrap();
        assert!(a.batch(&t, short).await.is_err());
        t.settings.limits.event_batches = 3;
        a.batch(&t, short).await.unwrap();
    }
}
