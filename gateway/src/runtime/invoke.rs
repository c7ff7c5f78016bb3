//! One request through a guest, as a timeline:
//!
//! 1. **store**: a fresh [`Store`] with the tenant's memory limiter and CPU budget;
//! 2. **instantiate**: a new instance from the function's [`FunctionImage`] (pooling allocator,
//!    copy-on-write memory), timed for the instantiation metric;
//! 3. **call**: `wasi:http/incoming-handler.handle` is polled once in the request's task; a
//!    guest that has to wait goes on in a task of its own, so it can keep streaming the body
//!    after the response head is out;
//! 4. **respond**: the head arrives on a oneshot; the body streams from the guest, whose task is
//!    aborted when the body is dropped (the client went away or the response ended).
//!
//! Failures are classified into [`InvokeError`] from what the store saw (which limit was hit)
//! and from the trap.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::guest::{GuestState, InvokeLimits, LaneRelease, LimitHit};
use super::{FunctionImage, InvokeError, Runtime};
use crate::capabilities::Grants;
use crate::capabilities::output::{GuestOutput, OutputCapture};

/// What a guest used, reported when it finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestStats {
    /// Time spent creating the instance.
    pub instantiation: Duration,
    /// The largest linear memory the instance had, in bytes.
    pub memory_peak: usize,
    /// Time from the start of instantiation to the end of the guest's `handle`: time spent
    /// in the guest (and in the host calls it made), not queueing.
    pub execution: Duration,
}

/// Hears about a guest's life: created with the invocation, told the guest's stats when it
/// finishes, told what it wrote to stdout and stderr, and dropped with the guest's instance:
/// when the caller lets go of the response of a guest that returned, else when the guest's task
/// ends (it trapped, or was aborted by a timeout or a client that went away). `()` hears nothing.
pub trait GuestObserver: Send + 'static {
    /// The guest finished (returned or trapped); not called when it was aborted.
    fn guest_finished(&mut self, stats: &GuestStats);

    /// The guest wrote to stdout or stderr. Called once, as the guest's task ends (aborted
    /// ones too), with what it wrote up to [`GUEST_OUTPUT_LIMIT`](super::GUEST_OUTPUT_LIMIT)
    /// bytes; not called when it wrote nothing.
    fn guest_output(&mut self, output: GuestOutput) {
        let _ = output;
    }
}

impl GuestObserver for () {
    fn guest_finished(&mut self, _stats: &GuestStats) {}
}

/// An observer with the capture of its guest's output, which it hands over when the guest's
/// task ends, however it ends.
struct Observed<O: GuestObserver> {
    observer: O,
    output: OutputCapture,
}

impl<O: GuestObserver> Drop for Observed<O> {
    fn drop(&mut self) {
        let output = self.output.take();
        if !output.is_empty() {
            self.observer.guest_output(output);
        }
    }
}

/// A response produced by a guest, with what it cost to start.
#[derive(Debug)]
pub struct Invocation {
    /// The guest's response; its body streams from the still-running guest.
    pub response: http::Response<GuestBody>,
    /// Time spent creating the instance.
    pub instantiation: Duration,
}

/// The body of a guest's response, streamed from the running guest under the response-size
/// cap. Dropping it stops the guest.
pub struct GuestBody {
    inner: HyperOutgoingBody,
    /// Bytes the guest may still send.
    remaining: u64,
    limit: u64,
    /// Held for its `Drop`: the guest task lives as long as its body (and, once the body has
    /// ended, a short grace to return and report).
    guest: AbortOnDrop,
}

/// Why a guest's response body stopped early.
#[derive(Debug, thiserror::Error)]
pub enum GuestBodyError {
    /// The guest failed while writing its body (a trap, or an aborted body).
    #[error("the function's response body failed: {0}")]
    Guest(wasmtime_wasi_http::Error),
    /// The guest sent more than the gateway's response cap.
    #[error("the function's response is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
}

impl std::fmt::Debug for GuestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestBody").finish_non_exhaustive()
    }
}

impl Body for GuestBody {
    type Data = Bytes;
    type Error = GuestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, GuestBodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                if len > this.remaining {
                    this.remaining = 0;
                    return Poll::Ready(Some(Err(GuestBodyError::TooLarge { limit: this.limit })));
                }
                this.remaining -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(GuestBodyError::Guest(e)))),
            Poll::Ready(None) => {
                this.guest.body_ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How long a guest whose response body has ended may take to return from `handle` (and
/// report its stats) before it is stopped.
const RETURN_GRACE: Duration = Duration::from_secs(1);

/// The guest's run, held by its response body: it ended during the first poll, in the request's
/// own task, or it runs on in a task of its own, which is stopped when this is dropped: at once
/// while its response is unfinished (the client went away, a limit stopped it); after
/// [`RETURN_GRACE`] once the body has ended, so a guest on its way out of `handle` returns and
/// reports instead of being cut off.
struct AbortOnDrop {
    run: GuestRun,
    body_ended: bool,
}

enum GuestRun {
    /// Ended without waiting: what it left is dropped with the response.
    Ended(GuestExit),
    /// Waited at least once, so it went on in a task of its own.
    Running(JoinHandle<GuestExit>),
    /// Already taken.
    Taken,
}

impl AbortOnDrop {
    fn new(run: GuestRun) -> AbortOnDrop {
        AbortOnDrop {
            run,
            body_ended: false,
        }
    }

    /// How the guest ended, waiting for its task if it has one.
    async fn exit(&mut self) -> Result<GuestExit, tokio::task::JoinError> {
        match std::mem::replace(&mut self.run, GuestRun::Taken) {
            GuestRun::Ended(exit) => Ok(exit),
            GuestRun::Running(task) => task.await,
            GuestRun::Taken => unreachable!("a guest's exit is taken once"),
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let GuestRun::Running(mut task) = std::mem::replace(&mut self.run, GuestRun::Taken) else {
            return;
        };
        if task.is_finished() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.body_ended => {
                runtime.spawn(async move {
                    if tokio::time::timeout(RETURN_GRACE, &mut task).await.is_err() {
                        task.abort();
                    }
                });
            }
            _ => task.abort(),
        }
    }
}

/// How the guest task ended.
enum GuestExit {
    /// `handle` returned. Its store and observer are handed back rather than dropped in the
    /// task, so that tearing the instance down (resetting its memory, returning its slot: a
    /// quarter of a request's instructions) happens when the proxy lets go of the response,
    /// after the response went to the socket; the concurrency slot goes with them.
    Returned(#[allow(dead_code, reason = "held only to be dropped later")] Retired),
    Failed(InvokeError),
}

/// What a guest that returned leaves behind: its store, then its observer, dropped in that order.
struct Retired {
    _held: Box<dyn Send>,
}

impl Runtime {
    /// Runs `request` through a fresh instance of `image` under `limits`, until the response
    /// head.
    ///
    /// Must be called within a tokio runtime: the guest runs in a task of its own. There is no
    /// wall-clock limit here: the caller bounds the wait (the proxy uses a cheap shared timer
    /// wheel); dropping the returned future, or the response body, stops the guest.
    pub async fn invoke<B>(
        &self,
        image: &FunctionImage,
        limits: &InvokeLimits,
        request: http::Request<B>,
    ) -> Result<Invocation, InvokeError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.invoke_observed(image, limits, &Grants::default(), request, ())
            .await
    }

    /// [`Runtime::invoke`], with what the guest may use and an observer that lives as long as
    /// the guest's task and hears its [`GuestStats`] when it finishes.
    pub async fn invoke_observed<B, O>(
        &self,
        image: &FunctionImage,
        limits: &InvokeLimits,
        grants: &Grants,
        request: http::Request<B>,
        observer: O,
    ) -> Result<Invocation, InvokeError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
        O: GuestObserver,
    {
        let capabilities = grants.prepare();
        let output: OutputCapture = capabilities.output.clone();
        let mut store = Store::new(
            &self.engine,
            GuestState::new(limits, self.settings.epoch_tick, &self.lanes, capabilities),
        );
        let observed = Observed { observer, output };
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| ctx.data_mut().on_tick());

        let scheme = match request.uri().scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        let (req, out) = {
            let mut http = store.data_mut().http();
            let req = http
                .new_incoming_request(scheme, request)
                .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
            let out = http
                .new_response_outparam(head_tx)
                .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
            (req, out)
        };

        let pre = image.pre.clone();
        let lane = store.data().lane_release();
        let (inst_tx, inst_rx) = tokio::sync::oneshot::channel();
        let mut run = Box::pin(ReleaseLaneWhileWaiting::new(lane, async move {
            // Owned by the task as a whole, so its drop sees the guest's task end.
            let mut observed = observed;
            let instantiated = Instant::now();
            let proxy = match pre.instantiate_async(&mut store).await {
                Ok(proxy) => proxy,
                Err(e) => return GuestExit::Failed(classify_instantiate(&e)),
            };
            let instantiation = instantiated.elapsed();
            let _ = inst_tx.send(instantiation);
            let result = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await;
            observed.observer.guest_finished(&GuestStats {
                instantiation,
                memory_peak: store.data().memory.peak,
                execution: instantiated.elapsed(),
            });
            match result {
                Ok(()) => GuestExit::Returned(Retired {
                    _held: Box::new((store, observed)),
                }),
                Err(e) => GuestExit::Failed(classify_trap(store.data().limit_hit(), &e)),
            }
        }));
        // Most guests answer without waiting for anything: run the first poll here, in the
        // request's task, and give the guest a task of its own only if it has to wait (for a
        // host call, a body, or an epoch tick past its time slice). That poll is outside
        // tokio's cooperative budget: the guest yields at its epoch ticks, and what its host
        // calls spend must not leave the request's task without budget to read the response
        // the guest has just written.
        let first = tokio::task::coop::unconstrained(std::future::poll_fn(|cx| {
            Poll::Ready(run.as_mut().poll(cx))
        }))
        .await;
        let mut guest = AbortOnDrop::new(match first {
            Poll::Ready(exit) => GuestRun::Ended(exit),
            Poll::Pending => GuestRun::Running(tokio::spawn(run)),
        });

        let head = head_rx.await;
        let instantiation = inst_rx.await_now();
        match head {
            Ok(Ok(response)) => Ok(Invocation {
                response: response.map(|inner| GuestBody {
                    inner,
                    remaining: limits.response_body,
                    limit: limits.response_body,
                    guest,
                }),
                instantiation,
            }),
            Ok(Err(code)) => Err(InvokeError::GuestError(format!("{code:?}"))),
            // The outparam was dropped without a response: the task has ended or is ending.
            Err(_closed) => match guest.exit().await {
                Ok(GuestExit::Returned(_)) => Err(InvokeError::NoResponse),
                Ok(GuestExit::Failed(e)) => Err(e),
                Err(join) => Err(InvokeError::Trap(format!("the guest task failed: {join}"))),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// A guest's task that gives its long-running lane back whenever it waits: a pending poll
    /// means the guest is in a host call that waits (or queued for a lane), not computing.
    struct ReleaseLaneWhileWaiting<F> {
        lane: LaneRelease,
        #[pin]
        task: F,
    }
}

impl<F> ReleaseLaneWhileWaiting<F> {
    fn new(lane: LaneRelease, task: F) -> Self {
        ReleaseLaneWhileWaiting { lane, task }
    }
}

impl<F: Future> Future for ReleaseLaneWhileWaiting<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = this.task.poll(cx);
        if polled.is_pending() {
            this.lane.release();
        }
        polled
    }
}

trait AwaitNow {
    fn await_now(self) -> Duration;
}

impl AwaitNow for tokio::sync::oneshot::Receiver<Duration> {
    /// The instantiation time if the guest got that far, zero otherwise. Never waits: by the
    /// time the response head (or its failure) is known, instantiation is over.
    fn await_now(mut self) -> Duration {
        self.try_recv().unwrap_or_default()
    }
}

/// An instantiation failure: the pool full (of instances, memories, tables or stacks), by its
/// type, or anything else the component did.
fn classify_instantiate(error: &wasmtime::Error) -> InvokeError {
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        InvokeError::PoolExhausted
    } else {
        InvokeError::Instantiate(format!("{error:#}"))
    }
}

fn classify_trap(limit: LimitHit, error: &wasmtime::Error) -> InvokeError {
    match limit {
        LimitHit::Memory => InvokeError::MemoryLimit,
        LimitHit::Cpu => InvokeError::CpuLimit,
        LimitHit::None => match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => InvokeError::Trap(trap.to_string()),
            None => InvokeError::Trap(format!("{}", error.root_cause())),
        },
    }
}
